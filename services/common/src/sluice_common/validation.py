"""JSON Schema validation of event data, one schema per event type.

The built-in schemas live in ``schemas/<event type>.json``. Set ``SLUICE_SCHEMA_DIR`` to a directory
of your own ``<event type>.json`` files to replace them. An event whose type has no schema is invalid:
sluice never delivers data it cannot vouch for.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from sluice_common.errors import ConfigError
from sluice_common.schema_compiler import compile_schema

__all__ = ["SchemaRegistry"]

#: Errors reported per invalid event, at most (a huge bad document must not make a huge header).
MAX_ERRORS = 5

_formats = FormatChecker()


def _is_datetime(value: object) -> bool:
    # RFC 3339 needs a date, a time and an offset; fromisoformat parses it (with "Z" since 3.11).
    if not isinstance(value, str):
        return True  # "type" judges non-strings
    if "T" not in value.upper():
        return False
    return datetime.fromisoformat(value).tzinfo is not None


_formats.checks("date-time", raises=ValueError)(_is_datetime)


class SchemaRegistry:
    """Validators for every known event type."""

    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        self._validators = {
            name: Draft202012Validator(schema, format_checker=_formats) for name, schema in schemas.items()
        }
        # Built once per schema: a valid event (nearly every event) costs one fast check, not a
        # jsonschema walk; jsonschema still judges every event the fast check does not accept.
        self._fast = {name: compile_schema(schema, _formats) for name, schema in schemas.items()}

    @classmethod
    def load(cls, directory: str = "") -> SchemaRegistry:
        """The built-in schemas, or those in ``directory`` when it is set.

        Raises:
            ConfigError: the directory is missing, empty, or holds an invalid schema.
        """
        if not directory:
            files = [f for f in resources.files("sluice_common").joinpath("schemas").iterdir() if f.name.endswith(".json")]
            return cls({f.name[: -len(".json")]: json.loads(f.read_text("utf-8")) for f in files})
        path = Path(directory)
        found = sorted(path.glob("*.json")) if path.is_dir() else []
        if not found:
            raise ConfigError("SLUICE_SCHEMA_DIR", directory, "no directory with <event type>.json schema files there")
        schemas = {}
        for file in found:
            try:
                schema = json.loads(file.read_text("utf-8"))
                Draft202012Validator.check_schema(schema)
            except (ValueError, SchemaError) as e:
                raise ConfigError("SLUICE_SCHEMA_DIR", directory, f"{file.name} is not a valid JSON Schema: {e}") from None
            schemas[file.stem] = schema
        return cls(schemas)

    @property
    def event_types(self) -> list[str]:
        """The event types with a schema, sorted."""
        return sorted(self._validators)

    def errors(self, event_type: str, data: object) -> list[str]:
        """Every way ``data`` breaks the schema of ``event_type`` (at most ``MAX_ERRORS``); empty if valid."""
        fast = self._fast.get(event_type)
        if fast is not None and fast(data):
            return []
        validator = self._validators.get(event_type)
        if validator is None:
            return [f"unknown event type {event_type!r}; known types: {', '.join(self.event_types)}"]
        problems = []
        for error in validator.iter_errors(data):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"{where}: {error.message}"[:300])
            if len(problems) == MAX_ERRORS:
                break
        return problems

"""The fast path of validation: fastjsonschema's generated code, for schemas it judges as jsonschema does.

``jsonschema`` walks a schema generically for every document (about 30 µs for a small event here);
fastjsonschema compiles it to plain Python once (a few µs per event). It only ever answers "valid":
when it says no, :class:`~sluice_common.validation.SchemaRegistry` asks ``jsonschema`` for the
errors, so messages are unchanged. The one property that matters is that the fast path never
accepts what ``jsonschema`` (Draft 2020-12) rejects:

- fastjsonschema implements drafts 4, 6 and 7, so only schemas made of keywords that mean the same
  in draft 7 and 2020-12 are compiled (``_PORTABLE`` below; ``items`` only as one schema, not a
  list); a schema with any other keyword anywhere (``$ref``, ``prefixItems``, ``enum``, ...) is not
  compiled at all: :func:`compile_schema` returns None and ``jsonschema`` does it all;
- defaults are never filled in (fastjsonschema would write them into the document);
- every ``format`` that ``jsonschema``'s :class:`~jsonschema.FormatChecker` knows goes to that same
  checker; a format it does not know, it accepts, so whatever fastjsonschema decides there is safe.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import fastjsonschema
from jsonschema import FormatChecker

__all__ = ["Check", "compile_schema"]

#: Returns True only for a document the schema accepts.
Check = Callable[[object], bool]

#: Keywords that only annotate: they never make a document invalid.
_ANNOTATIONS = frozenset({"$comment", "title", "description", "examples", "default", "deprecated", "readOnly",
                          "writeOnly"})
#: Assertions with the same meaning in draft 7 and 2020-12, and the type of value each takes.
_PORTABLE: dict[str, type | tuple[type, ...]] = {
    "type": (str, list), "minimum": (int, float), "maximum": (int, float), "exclusiveMinimum": (int, float),
    "exclusiveMaximum": (int, float), "minLength": int, "maxLength": int, "pattern": str, "format": str,
    "required": list, "minProperties": int, "maxProperties": int,
    "items": (dict, bool), "properties": dict, "additionalProperties": (dict, bool),
}
_SUBSCHEMA = ("items", "additionalProperties")


def compile_schema(schema: object, formats: FormatChecker) -> Check | None:
    """A fast check for ``schema``, or None when it uses anything outside the portable subset."""
    if not isinstance(schema, dict):
        return None
    body = {k: v for k, v in schema.items() if k not in ("$schema", "$id")}  # we say which draft, not it
    if not _portable(body):
        return None
    known = {name: functools.partial(_conforms, formats, name) for name in formats.checkers}
    try:
        validate = fastjsonschema.compile(
            {"$schema": "http://json-schema.org/draft-07/schema#", **body}, formats=known, use_default=False
        )
    except fastjsonschema.JsonSchemaDefinitionException:
        return None  # a schema it cannot compile (an unknown type name, say): jsonschema judges

    def check(document: object) -> bool:
        try:
            validate(document)
        except Exception:  # noqa: BLE001 - any doubt goes to jsonschema, which explains it
            return False
        return True

    return check


def _conforms(formats: FormatChecker, name: str, value: object) -> bool:
    return bool(formats.conforms(value, name))


def _portable(schema: object) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict):
        return False
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        kind = _PORTABLE.get(keyword)
        if kind is None or not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
            return False
        if isinstance(value, dict) and keyword == "properties" and not all(map(_portable, value.values())):
            return False
        if keyword in _SUBSCHEMA and not _portable(value):
            return False
    return True

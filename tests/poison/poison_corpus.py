"""The poison corpus (``corpus/manifest.toml``) as Python objects, for the consumer and ingest tests."""

from __future__ import annotations

import decimal
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CASES", "MAX_BYTES", "Case"]

CORPUS = Path(__file__).resolve().parent / "corpus"
_MANIFEST = tomllib.loads((CORPUS / "manifest.toml").read_text())
#: The size limit the tests run the services with.
MAX_BYTES: int = _MANIFEST["max_bytes"]


@dataclass(frozen=True)
class Case:
    """One hostile input and its expected outcome on each path (None: does not apply)."""

    name: str
    file: str
    publish: str = "file"
    content_type: str = "application/json"
    headers: dict[str, Any] = field(default_factory=dict)
    consumer: dict[str, Any] | None = None
    ingest: dict[str, Any] | None = None
    why: str = ""

    @property
    def body(self) -> bytes:
        """The file's bytes: what POST /events receives."""
        return (CORPUS / self.file).read_bytes()

    @property
    def message(self) -> tuple[str, bytes]:
        """Routing key and body the consumer path publishes."""
        if self.publish == "file":
            return "sensor.reading", self.body
        envelope = json.loads(self.body)
        return envelope["type"], json.dumps(envelope["data"]).encode()


def _amqp_value(value: Any) -> Any:
    """pika encodes no float; a fractional header goes on the wire as an AMQP decimal."""
    if isinstance(value, float):
        return decimal.Decimal(str(value))
    return value


CASES = [
    Case(name=name, **{**spec, "headers": {k: _amqp_value(v) for k, v in spec.get("headers", {}).items()}})
    for name, spec in _MANIFEST["case"].items()
]

"""Events and the AMQP messages that carry them, independent of any client library.

An event as users send it (HTTP ingest, ``sluice publish``)::

    {"type": "sensor.reading", "data": {...}, "id": "optional-uuid"}

On the wire the body is ``data`` as UTF-8 JSON, the routing key and the ``type`` property are the
event type, and ``message_id`` is the event id (a fresh UUID unless the sender gave one, which
makes re-sending the same event idempotent downstream).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sluice_common.errors import PoisonMessage

__all__ = [
    "ATTEMPTS_HEADER",
    "BROKER_HEADERS",
    "CONTENT_TYPE",
    "DEAD_AT_HEADER",
    "ERROR_HEADER",
    "FIRST_SEEN_HEADER",
    "REASON_HEADER",
    "REPLAYS_HEADER",
    "ROUTING_KEY_HEADER",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_HEADER",
    "Delivery",
    "Event",
    "InvalidEvent",
    "OutgoingMessage",
    "decode",
    "encode",
    "event_from_json",
    "utc_now_iso",
]

#: Content type of every body sluice publishes.
CONTENT_TYPE = "application/json"
#: Version of the envelope described in this module.
SCHEMA_VERSION = "1"
#: Header names. They are part of sluice's public contract (README, "Message headers").
SCHEMA_VERSION_HEADER = "x-sluice-schema-version"
ATTEMPTS_HEADER = "x-sluice-attempts"
ROUTING_KEY_HEADER = "x-sluice-routing-key"
FIRST_SEEN_HEADER = "x-sluice-first-seen"
DEAD_AT_HEADER = "x-sluice-dead-at"
REASON_HEADER = "x-sluice-reason"
ERROR_HEADER = "x-sluice-error"
#: Times a message was replayed from the dead-letter queue (``sluice dlq replay``).
REPLAYS_HEADER = "x-sluice-replays"

#: Headers only the broker sets; a copy sluice publishes again must not carry them (4.x ignores client-set x-death).
BROKER_HEADERS = ("x-death", "x-delivery-count", "x-first-death-exchange", "x-first-death-queue",
                  "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason")

#: One encoder for every body: ``json.dumps`` with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

#: Event types are topic routing keys: dot-separated words, no wildcards.
_TYPE_RE = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+){0,9}$")


class InvalidEvent(ValueError):
    """Raised when an event sent to sluice is malformed; ``reasons`` lists every problem."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class Event:
    """One event: its type (the routing key), its data and its unique id."""

    type: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class OutgoingMessage:
    """A message ready to publish. ``exchange=""`` with a queue name as key targets that queue."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, Any]
    content_type: str = CONTENT_TYPE
    type: str | None = None
    timestamp: int | None = None


@dataclass(frozen=True)
class Delivery:
    """A message received from a queue, as the consumer's pipeline sees it."""

    body: bytes
    routing_key: str
    message_id: str | None
    headers: dict[str, Any]
    content_type: str | None
    type: str | None
    timestamp: int | None
    redelivered: bool
    delivery_count: int  # redeliveries counted by a quorum queue (x-delivery-count), 0 on the first

    @property
    def event_type(self) -> str:
        """The event's type: its original routing key, also after a trip through a retry tier."""
        original = self.headers.get(ROUTING_KEY_HEADER)
        if isinstance(original, bytes):
            original = original.decode("utf-8", "replace")
        return original if isinstance(original, str) and original else (self.type or self.routing_key)


def utc_now_iso() -> str:
    """The current time as an ISO 8601 UTC string with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_from_json(obj: object) -> Event:
    """Build an :class:`Event` from one decoded JSON value sent by a user.

    Raises:
        InvalidEvent: with every problem found, not just the first.
    """
    if not isinstance(obj, dict):
        raise InvalidEvent([f"an event must be a JSON object, not {_json_type(obj)}"])
    reasons = []
    event_type, data, event_id = obj.get("type"), obj.get("data"), obj.get("id")
    if not isinstance(event_type, str) or not _TYPE_RE.match(event_type):
        reasons.append("'type' must be a string of dot-separated words, e.g. 'sensor.reading'")
    if not isinstance(data, dict):
        reasons.append(f"'data' must be a JSON object, not {_json_type(data)}")
    if event_id is not None and not (isinstance(event_id, str) and 0 < len(event_id) <= 200):
        reasons.append("'id' must be a non-empty string of at most 200 characters")
    unknown = sorted(set(obj) - {"type", "data", "id"})
    if unknown:
        reasons.append("unknown field(s): " + ", ".join(repr(k) for k in unknown))
    if reasons:
        raise InvalidEvent(reasons)
    assert isinstance(event_type, str) and isinstance(data, dict)
    return Event(type=event_type, data=data, id=event_id or str(uuid.uuid4()))


def encode(event: Event, exchange: str) -> OutgoingMessage:
    """The message that publishes ``event`` to ``exchange``."""
    return OutgoingMessage(
        exchange=exchange,
        routing_key=event.type,
        body=_ENCODER.encode(event.data).encode("utf-8"),
        message_id=event.id,
        headers={SCHEMA_VERSION_HEADER: SCHEMA_VERSION},
        type=event.type,
        timestamp=int(time.time()),
    )


def decode(delivery: Delivery, *, max_bytes: int) -> Event:
    """The event a delivery carries.

    Raises:
        PoisonMessage: reason ``invalid``: too large, wrong content type, not UTF-8, not JSON, too
            deeply nested, or not an object. Such a message can never be processed.
    """
    if len(delivery.body) > max_bytes:
        raise PoisonMessage("invalid", f"body of {len(delivery.body)} bytes exceeds the limit of {max_bytes}")
    if delivery.content_type not in (None, "", CONTENT_TYPE) and not delivery.content_type.startswith(
        CONTENT_TYPE + ";"
    ):
        raise PoisonMessage("invalid", f"content type {delivery.content_type!r} is not {CONTENT_TYPE}")
    try:
        text = delivery.body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PoisonMessage("invalid", f"body is not UTF-8: {e}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise PoisonMessage("invalid", f"body is not JSON: {e}") from None
    except RecursionError:
        raise PoisonMessage("invalid", "JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise PoisonMessage("invalid", f"body must be a JSON object, not {_json_type(data)}")
    return Event(type=delivery.event_type, data=data, id=delivery.message_id or "")


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number"

"""Events and the AMQP messages that carry them, independent of any client library.

An event as users send it (HTTP ingest, ``sluice publish``)::

    {"type": "sensor.reading", "data": {...}, "id": "optional-uuid"}

On the wire the body is ``data`` as UTF-8 JSON, the routing key and the ``type`` property are the
event type, and ``message_id`` is the event id (a fresh UUID unless the sender gave one, which
makes re-sending the same event idempotent downstream).
"""

from __future__ import annotations

import json
import math
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
    "GROUP_HEADER",
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
    "is_event_type",
    "parse_json",
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
GROUP_HEADER = "x-sluice-group"
#: Times a message was replayed from the dead-letter queue (``sluice dlq replay``).
REPLAYS_HEADER = "x-sluice-replays"

#: Headers only the broker sets; a copy sluice publishes again must not carry them (4.x ignores client-set x-death).
BROKER_HEADERS = ("x-death", "x-delivery-count", "x-first-death-exchange", "x-first-death-queue",
                  "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason")

#: Deepest nesting of arrays and objects accepted in a body. Real events are shallow; a limit of our
#: own makes a hostile document fail the same way on every Python (whose parser limits differ).
MAX_JSON_DEPTH = 64

#: One encoder for every body: ``json.dumps`` with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

#: Event types are topic routing keys: dot-separated words, no wildcards.
_TYPE_RE = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+){0,9}$")
#: Longest event type and id, in UTF-8 bytes: both travel in AMQP short strings (255 bytes at most),
#: and one that does not fit could never be published.
MAX_TYPE_BYTES = 200
MAX_ID_BYTES = 200


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
        """The event's type: its original routing key, also after a trip through a retry tier.

        A ``x-sluice-routing-key`` that is not an event type is ignored here (see
        :attr:`forged_routing_key`): it must never end up in a routing key or property of a copy.
        """
        original = self._routing_key_header
        return original if original and is_event_type(original) else (self.type or self.routing_key)

    @property
    def forged_routing_key(self) -> bool:
        """True when ``x-sluice-routing-key`` is present but not an event type (forged or corrupted)."""
        original = self._routing_key_header
        return original is not None and not is_event_type(original)

    @property
    def _routing_key_header(self) -> str | None:
        original = self.headers.get(ROUTING_KEY_HEADER)
        if isinstance(original, bytes):
            original = original.decode("utf-8", "replace")
        if original is None:
            return None
        return original if isinstance(original, str) else repr(original)


def is_event_type(value: str) -> bool:
    """True for a valid event type: dot-separated words of letters, digits, ``_`` and ``-``, at most
    10 words and :data:`MAX_TYPE_BYTES` characters."""
    return len(value) <= MAX_TYPE_BYTES and _TYPE_RE.match(value) is not None


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
    if not isinstance(event_type, str) or not is_event_type(event_type):
        reasons.append(f"'type' must be a string of dot-separated words, e.g. 'sensor.reading', of at most "
                       f"{MAX_TYPE_BYTES} characters")
    if not isinstance(data, dict):
        reasons.append(f"'data' must be a JSON object, not {_json_type(data)}")
    if event_id is not None and not (isinstance(event_id, str) and 0 < len(event_id.encode("utf-8", "replace"))
                                     <= MAX_ID_BYTES):
        reasons.append(f"'id' must be a non-empty string of at most {MAX_ID_BYTES} bytes in UTF-8")
    unknown = sorted(set(obj) - {"type", "data", "id"})
    if unknown:
        reasons.append("unknown field(s): " + ", ".join(repr(k) for k in unknown))
    if reasons:
        raise InvalidEvent(reasons)
    assert isinstance(event_type, str) and isinstance(data, dict)
    return Event(type=event_type, data=data, id=event_id or str(uuid.uuid4()))


def parse_json(body: bytes) -> object:
    """Decode a UTF-8 JSON document strictly: no ``NaN``/``Infinity``, no number that overflows a
    float, at most :data:`MAX_JSON_DEPTH` levels of nesting.

    Raises:
        ValueError: with a one-line reason (``body is not UTF-8: ...``, ``body is not JSON: ...``,
            ``JSON is nested too deeply ...``).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"body is not UTF-8: {e}") from None
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise ValueError(f"JSON is nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    except ValueError as e:  # JSONDecodeError, our own rejections, and ints over Python's digit limit
        raise ValueError(f"body is not JSON: {e}") from None
    # Nesting deeper than the limit needs more opening brackets than the limit: most bodies skip the walk.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth_exceeds(value, MAX_JSON_DEPTH):
        raise ValueError(f"JSON is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return value


def _reject_constant(name: str) -> object:
    # Python accepts NaN and Infinity, but they are not JSON: a sink or client downstream would choke.
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]!r} is too large")
    return value


#: One strict decoder for every body (``json.loads`` with options builds a new decoder per call).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _depth_exceeds(value: object, limit: int) -> bool:
    """True when arrays and objects nest more than ``limit`` levels (iterative: no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


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
        data = parse_json(delivery.body)
    except ValueError as e:
        raise PoisonMessage("invalid", str(e)) from None
    if not isinstance(data, dict):
        raise PoisonMessage("invalid", f"body must be a JSON object, not {_json_type(data)}")
    return Event(type=delivery.event_type, data=data, id=delivery.message_id or "")


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number"

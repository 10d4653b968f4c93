"""The HTTP ingest API: ``POST /events`` with one JSON event or an array of them.

Answers (JSON bodies):

- 202 ``{"accepted": n, "ids": [...]}`` only once the broker confirmed every event;
- 400 ``{"error": ..., "reasons": [...]}`` for malformed input (nothing is published);
- 401 without the bearer token, when ``SLUICE_INGEST_TOKEN_FILE`` is set (``auth.py``);
- 413 above ``SLUICE_INGEST_MAX_BYTES`` (checked by the HTTP server before reading the body);
- 415 for a missing content type or one other than JSON;
- 429 with ``Retry-After`` above ``SLUICE_INGEST_RATE_LIMIT`` (``ratelimit.py``);
- 503 with ``Retry-After`` when the broker is unreachable, blocks publishing, or did not confirm.

A batch is all or nothing for validation; on a broker failure the answer lists which ids were
confirmed, so a client can resend only the others (or all: sending an ``id`` makes it idempotent).
"""

from __future__ import annotations

import logging

from sluice_common.envelope import InvalidEvent, OutgoingMessage, event_from_json, parse_json
from sluice_common.httpserver import Response, json_response
from sluice_producer.publisher import EventPublisher

__all__ = ["IngestRoute"]

#: Most events one request may carry.
MAX_EVENTS_PER_REQUEST = 1000
#: Seconds a client should wait before retrying after a 503.
RETRY_AFTER_S = "5"


class IngestRoute:
    """The ``POST /events`` handler."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher
        self._log = logging.getLogger("sluice.ingest")

    def __call__(self, headers: dict[str, str], body: bytes) -> Response:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            shown = repr(content_type[:100]) if content_type else "missing"
            return json_response(415, {"error": f"content type must be application/json, not {shown}"})
        try:
            document = parse_json(body)
        except ValueError as e:
            return _invalid([str(e)])
        items = document if isinstance(document, list) else [document]
        if not items:
            return _invalid(["the array holds no events"])
        if len(items) > MAX_EVENTS_PER_REQUEST:
            return _invalid([f"{len(items)} events in one request; at most {MAX_EVENTS_PER_REQUEST}"])
        messages: list[OutgoingMessage] = []
        reasons: list[str] = []
        for index, item in enumerate(items):
            prefix = f"event {index}: " if isinstance(document, list) else ""
            try:
                messages.append(self._publisher.check(event_from_json(item)))
            except InvalidEvent as e:
                reasons.extend(prefix + r for r in e.reasons)
        if reasons:
            return _invalid(reasons)
        if not self._publisher.ready:
            state = "blocks publishing (resource alarm)" if self._publisher.publisher.blocked else "is not reachable"
            return _unavailable(f"the broker {state}")
        results = self._publisher.publish(messages)
        failed = [r for r in results if not r.confirmed]
        if failed:
            self._log.warning("%d of %d ingested event(s) not confirmed: %s", len(failed), len(results), failed[0].error)
            return _unavailable(
                "the broker did not confirm every event",
                confirmed=[r.event_id for r in results if r.confirmed],
                failed={r.event_id: str(r.error) for r in failed},
            )
        return json_response(202, {"accepted": len(results), "ids": [r.event_id for r in results]})


def _invalid(reasons: list[str]) -> Response:
    return json_response(400, {"error": "invalid events; nothing was published", "reasons": reasons[:50]})


def _unavailable(error: str, **detail: object) -> Response:
    return json_response(503, {"error": error, **detail}, **{"Retry-After": RETRY_AFTER_S})

"""What happens to one delivery: decode → validate → processors → sink → a decision.

The pipeline touches no broker and no metrics: it returns a :class:`Decision` and the worker carries
it out (ack, or forward to a retry tier or the dead-letter queue, then ack).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sluice_common.config import Settings
from sluice_common.envelope import (
    ATTEMPTS_HEADER,
    BROKER_HEADERS,
    DEAD_AT_HEADER,
    ERROR_HEADER,
    FIRST_SEEN_HEADER,
    GROUP_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    Delivery,
    OutgoingMessage,
    decode,
    utc_now_iso,
)
from sluice_common.errors import PoisonMessage
from sluice_common.topology import GroupTopology
from sluice_common.validation import SchemaRegistry
from sluice_consumer.processors import ProcessingError, Processor
from sluice_consumer.retry import DeadLetter, RetryPolicy, parse_attempts
from sluice_consumer.sinks import Sink, SinkError

__all__ = ["Decision", "Pipeline"]

#: Longest ``x-sluice-error`` value; the full error is in the consumer's log.
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Decision:
    """The outcome of one delivery.

    ``outcome`` is ``acked``, ``retried`` or ``dead_lettered``; ``forward`` is the message to
    publish before acking (None for ``acked``); ``reason`` and ``error`` explain a failure.
    """

    outcome: str
    forward: OutgoingMessage | None = None
    reason: str | None = None
    error: str | None = None
    attempts: int = 0


class Pipeline:
    """Processes deliveries of one consumer group.

    Parameters:
        topology: the group's queues (where retries and dead letters go).
        schemas: JSON Schemas by event type.
        sink: where valid events are delivered.
        policy: retry or dead-letter after a failure.
        processors: steps run in order between validation and the sink.
        max_bytes: larger bodies are invalid.
        delivery_limit: a delivery redelivered this many times (quorum ``x-delivery-count``) is
            dead-lettered before processing: consumers keep dying on it. 0 disables the check.
    """

    def __init__(
        self,
        topology: GroupTopology,
        *,
        schemas: SchemaRegistry,
        sink: Sink,
        policy: RetryPolicy,
        processors: Sequence[Processor] = (),
        max_bytes: int,
        delivery_limit: int = 0,
    ) -> None:
        self._topology = topology
        self._schemas = schemas
        self._sink = sink
        self._policy = policy
        self._processors = tuple(processors)
        self._max_bytes = max_bytes
        self._delivery_limit = delivery_limit
        self._log = logging.getLogger("sluice.pipeline")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        topology: GroupTopology,
        *,
        schemas: SchemaRegistry,
        sink: Sink,
        processors: Sequence[Processor] = (),
    ) -> Pipeline:
        """The pipeline a consumer runs with ``settings`` (retry policy, size and delivery limits)."""
        return cls(
            topology,
            schemas=schemas,
            sink=sink,
            processors=processors,
            policy=RetryPolicy(max_attempts=settings.topology.max_attempts),
            max_bytes=settings.max_message_bytes,
            delivery_limit=settings.topology.delivery_limit if settings.topology.queue_type == "quorum" else 0,
        )

    def handle(self, delivery: Delivery) -> Decision:
        """Process one delivery and decide its fate. Never raises."""
        try:
            attempts_before = parse_attempts(delivery.headers.get(ATTEMPTS_HEADER))
        except ValueError as e:
            return self._dead_letter(delivery, "invalid", str(e), attempts=0)
        if delivery.forged_routing_key:
            error = f"{ROUTING_KEY_HEADER} is not an event type: {delivery.headers[ROUTING_KEY_HEADER]!r:.80}"
            return self._dead_letter(delivery, "invalid", error, attempts=attempts_before)
        if self._delivery_limit and delivery.delivery_count >= self._delivery_limit:
            error = f"delivered {delivery.delivery_count + 1} times without being settled: consumers crash on it"
            return self._dead_letter(delivery, "delivery_limit", error, attempts=attempts_before)
        try:
            event = decode(delivery, max_bytes=self._max_bytes)
            problems = self._schemas.errors(event.type, event.data)
            if problems:
                raise PoisonMessage("invalid", "schema violation: " + "; ".join(problems))
            for processor in self._processors:
                event = processor.process(event)
            self._sink.deliver(event)
        except PoisonMessage as e:
            return self._dead_letter(delivery, e.reason, e.detail, attempts=attempts_before + 1)
        except (SinkError, ProcessingError) as e:
            return self._failed(delivery, attempts_before, str(e), retryable=e.retryable)
        except Exception as e:  # a bug or an unforeseen failure: retrying is the safe default
            self._log.exception("Unexpected error processing a message.", extra={"message_id": delivery.message_id})
            return self._failed(delivery, attempts_before, f"{type(e).__name__}: {e}", retryable=True)
        return Decision("acked", attempts=attempts_before + 1)

    def _failed(self, delivery: Delivery, attempts_before: int, error: str, *, retryable: bool) -> Decision:
        decision = self._policy.decide(attempts_before=attempts_before, retryable=retryable)
        if isinstance(decision, DeadLetter):
            return self._dead_letter(delivery, decision.reason, error, attempts=decision.attempts)
        tier = self._topology.retry_queue(decision.attempts)
        headers = _forward_headers(delivery, decision.attempts)
        message = _forward(delivery, tier.name, headers)
        return Decision("retried", message, reason="retry", error=error, attempts=decision.attempts)

    def _dead_letter(self, delivery: Delivery, reason: str, error: str, *, attempts: int) -> Decision:
        headers = _forward_headers(delivery, attempts)
        headers.update(
            {
                REASON_HEADER: reason,
                ERROR_HEADER: error[:MAX_ERROR_CHARS],
                DEAD_AT_HEADER: utc_now_iso(),
                GROUP_HEADER: self._topology.group,
            }
        )
        message = _forward(delivery, self._topology.dead.name, headers)
        return Decision("dead_lettered", message, reason=reason, error=error, attempts=attempts)


def _forward_headers(delivery: Delivery, attempts: int) -> dict[str, Any]:
    headers = {k: v for k, v in delivery.headers.items() if k not in BROKER_HEADERS}
    headers[ATTEMPTS_HEADER] = attempts
    headers[ROUTING_KEY_HEADER] = delivery.event_type
    headers.setdefault(FIRST_SEEN_HEADER, utc_now_iso())
    return headers


def _forward(delivery: Delivery, queue: str, headers: dict[str, Any]) -> OutgoingMessage:
    """A copy of the delivery addressed to ``queue`` through the default exchange."""
    return OutgoingMessage(
        exchange="",
        routing_key=queue,
        body=delivery.body,
        message_id=delivery.message_id or "",
        headers=headers,
        content_type=delivery.content_type or "",
        type=delivery.event_type,
        timestamp=delivery.timestamp,
    )

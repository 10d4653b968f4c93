"""Validates events and publishes them with confirms: what every source of the producer calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sluice_common import metrics
from sluice_common.amqp import Publisher
from sluice_common.config import Settings
from sluice_common.envelope import Event, InvalidEvent, OutgoingMessage, encode
from sluice_common.errors import PublishError
from sluice_common.validation import SchemaRegistry

__all__ = ["EventPublisher", "PublishResult"]


@dataclass(frozen=True)
class PublishResult:
    """What happened to one event: confirmed, or the error that stopped it."""

    event_id: str
    error: PublishError | None = None

    @property
    def confirmed(self) -> bool:
        return self.error is None


class EventPublisher:
    """Validates events against their schemas and publishes them to the events exchange."""

    def __init__(self, settings: Settings, *, schemas: SchemaRegistry, name: str = "sluice-producer") -> None:
        self._exchange = settings.topology.exchange
        self._timeout_s = settings.producer.publish_timeout_s
        self._max_bytes = settings.max_message_bytes
        self._schemas = schemas
        self.publisher = Publisher(
            settings.amqp,
            exchange=self._exchange,
            max_outstanding=settings.producer.max_outstanding,
            name=name,
            observer=metrics.MetricsObserver(),
        )

    def start(self) -> None:
        """Connect in the background."""
        self.publisher.start()

    def stop(self) -> None:
        """Close the connection."""
        self.publisher.stop()

    @property
    def ready(self) -> bool:
        """Connected, exchange declared, not blocked by a broker alarm, and confirms still coming."""
        return self.publisher.ready and not self.publisher.blocked and not self.publisher.stalled

    def check(self, event: Event) -> OutgoingMessage:
        """The message for a valid event.

        Raises:
            InvalidEvent: the event breaks its schema or is too large.
        """
        problems = self._schemas.errors(event.type, event.data)
        if problems:
            raise InvalidEvent(problems)
        message = encode(event, self._exchange)
        if len(message.body) > self._max_bytes:
            raise InvalidEvent([f"data of {len(message.body)} bytes exceeds the limit of {self._max_bytes}"])
        return message

    def publish(self, messages: Sequence[OutgoingMessage], *, timeout: float | None = None) -> list[PublishResult]:
        """Publish checked messages and wait for their confirms (at most ``timeout``, default the setting)."""
        errors = self.publisher.publish_and_wait(messages, timeout=timeout or self._timeout_s)
        return [PublishResult(m.message_id, e) for m, e in zip(messages, errors, strict=True)]

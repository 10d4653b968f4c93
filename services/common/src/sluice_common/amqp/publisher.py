"""The :class:`Publisher`: publisher confirms, a bounded window of unconfirmed messages, republishing."""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import SelectConnection

from sluice_common.amqp.confirms import PublishBatch, _Window
from sluice_common.amqp.messages import _UNENCODABLE, _properties
from sluice_common.amqp.session import UNAVAILABLE_RUNBOOK, AmqpObserver, _Session, describe
from sluice_common.config import AmqpSettings
from sluice_common.envelope import OutgoingMessage
from sluice_common.errors import PublishError

__all__ = ["PublishBatch", "Publisher"]

#: Seconds without any confirm, while messages wait for one, after which publishing counts as stalled.
CONFIRM_STALL_S = 30.0
#: Routing keys whose first returned message a :class:`Publisher` logs as a warning (the rest at DEBUG).
RETURN_LOG_KEYS = 100


class _Pending:
    """A message on its way: waiting to be published, then for its confirm."""

    __slots__ = ("message", "batch", "index", "published_at")

    def __init__(self, message: OutgoingMessage, batch: PublishBatch, index: int) -> None:
        self.message, self.batch, self.index = message, batch, index
        self.published_at = 0.0


class Publisher(_Session):
    """Publishes with confirms from any thread; each call's messages are settled in a :class:`PublishBatch`.

    Usage::

        publisher = Publisher(settings.amqp, exchange="sluice.events", max_outstanding=1000)
        publisher.start()
        errors = publisher.publish_and_wait([encode(event, "sluice.events")], timeout=10)
        errors[0]   # None once confirmed, else the PublishError
    """

    def __init__(
        self,
        settings: AmqpSettings,
        *,
        exchange: str,
        max_outstanding: int = 1000,
        name: str = "sluice-producer",
        observer: AmqpObserver | None = None,
    ) -> None:
        super().__init__(settings, name=name, observer=observer)
        self._exchange = exchange
        self._window = _Window(max_outstanding)
        self._queue: collections.deque[_Pending] = collections.deque()  # waiting to be published
        self._unconfirmed: dict[int, _Pending] = {}  # by delivery tag, in publish order
        self._returned: collections.Counter[str] = collections.Counter()  # message ids returned, not yet acked
        self._returned_keys: set[str] = set()  # routing keys whose return was logged on this connection
        self._channel: Any = None
        self._next_tag = 1
        self._drain_scheduled = threading.Event()
        self.ready = False
        #: True while the broker blocks publishing (memory or disk alarm).
        self.blocked = False
        #: True while messages wait for a confirm that has not come for ``CONFIRM_STALL_S``.
        self.stalled = False
        self._last_confirm = time.monotonic()

    def publish(self, messages: Sequence[OutgoingMessage], *, timeout: float = 10.0) -> PublishBatch:
        """Queue messages for publishing; returns their batch, settled as the broker confirms them.

        Blocks while ``max_outstanding`` messages are unconfirmed, for at most ``timeout`` seconds.
        A message is settled as ``None`` once the broker confirmed it, otherwise as a
        :class:`PublishError` (``nacked``, ``returned``, ``invalid``, or ``timeout`` when the window
        stayed full).
        """
        deadline = time.monotonic() + timeout
        batch = PublishBatch(len(messages))
        queue, total, slots = self._queue, len(messages), 0
        for index, message in enumerate(messages):
            if not slots:
                slots = self._window.take(total - index, time.monotonic())  # free ones only
                if not slots:
                    # The window is full. What this batch queued so far must go out now: its confirms
                    # are what frees the window (a batch larger than the window would wait for itself).
                    self._schedule_drain()
                    slots = self._window.take(total - index, deadline)
            if not slots:
                batch._settle(index, PublishError("timeout", "too many messages are waiting for a confirm"))
            else:
                slots -= 1
                queue.append(_Pending(message, batch, index))
        self._schedule_drain()
        return batch

    @property
    def outstanding(self) -> int:
        """Messages waiting to be published or for their confirm (at most ``max_outstanding``)."""
        return len(self._queue) + len(self._unconfirmed)

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled.is_set():
            self._drain_scheduled.set()
            if not self._call(self._drain):
                self._drain_scheduled.clear()  # not connected: _on_ready drains

    def publish_and_wait(self, messages: Sequence[OutgoingMessage], *, timeout: float) -> list[PublishError | None]:
        """Publish and wait for every confirm: ``None`` per confirmed message, else its error.

        Unconfirmed messages still queued when the time is up are withdrawn, so a caller that
        reports a failure never has the message published behind its back.
        """
        deadline = time.monotonic() + timeout
        batch = self.publish(messages, timeout=timeout)
        if not batch.wait(max(deadline - time.monotonic(), 0)):
            batch.withdraw(PublishError("timeout", f"no confirm within {timeout:g}s"))
        return batch.errors()

    # -- the I/O thread ----------------------------------------------------------------------

    def _on_connected(self, connection: SelectConnection) -> None:
        connection.add_on_connection_blocked_callback(self._on_blocked)
        connection.add_on_connection_unblocked_callback(self._on_unblocked)
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=lambda _frame: self._on_confirm_mode())

    def _on_confirm_mode(self) -> None:
        self._channel.exchange_declare(
            exchange=self._exchange, exchange_type="topic", durable=True, callback=lambda _frame: self._on_ready()
        )

    def _on_ready(self) -> None:
        self._next_tag = 1
        self._last_confirm = time.monotonic()
        self.ready = True
        self._log.info("Ready to publish to exchange %r.", self._exchange)
        self._drain()

    def _drain(self) -> None:
        self._drain_scheduled.clear()
        if not self.ready or self.blocked:
            return
        channel, now = self._channel, time.monotonic()
        while self._queue:
            pending = self._queue.popleft()
            if pending.batch.withdrawn:
                self._window.give_back(1)  # withdrawn by a caller that gave up waiting
                continue
            message = pending.message
            try:
                channel.basic_publish(
                    message.exchange, message.routing_key, message.body, _properties(message), mandatory=True
                )
            except _UNENCODABLE as e:
                # Nothing was sent: this message can never be, and must not block the ones behind it.
                self._log.warning("Message %r cannot be encoded in AMQP: %s.", message.message_id[:80], describe(e))
                self._window.give_back(1)
                pending.batch._settle(pending.index, PublishError("invalid", f"cannot be encoded in AMQP: {describe(e)}"))
                continue
            except pika.exceptions.AMQPError as e:
                self._log.warning("Publish failed: %s; will publish again after reconnecting.", describe(e))
                self._queue.appendleft(pending)
                return
            pending.published_at = now
            self._unconfirmed[self._next_tag] = pending
            self._next_tag += 1

    def _on_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        # basic.return precedes the message's basic.ack: remember it and settle it on the ack.
        self._returned[properties.message_id] += 1
        # One line per routing key and connection: a key with no queue bound returns every message,
        # and each one is already counted (outcome "returned") and failed to its caller.
        level = logging.DEBUG
        if method.routing_key not in self._returned_keys and len(self._returned_keys) < RETURN_LOG_KEYS:
            self._returned_keys.add(method.routing_key)
            level = logging.WARNING
        self._log.log(
            level,
            "Message returned by the broker: %s (routing key %r); further returns of this routing key are "
            "logged at DEBUG level.",
            method.reply_text,
            method.routing_key,
            extra={"message_id": properties.message_id},
        )

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nacked = isinstance(method, pika.spec.Basic.Nack)
        tags = [method.delivery_tag]
        if method.multiple:
            # Tags grow in publish order, and so does the dict: stop at the first one not confirmed.
            tags = list(itertools.takewhile(lambda t: t <= method.delivery_tag, self._unconfirmed))
        now = self._last_confirm = time.monotonic()
        if self.stalled:
            self.stalled = False
            self._observer.on_publish_stalled(False)
            self._log.info("The broker confirms publishes again.")
        settled = 0
        for tag in tags:
            pending = self._unconfirmed.pop(tag, None)
            if pending is None:
                continue
            message_id = pending.message.message_id
            if nacked:
                outcome, error = "nacked", PublishError("nacked", "the broker could not take the message")
            elif self._returned and self._returned[message_id]:
                self._returned[message_id] -= 1
                if not self._returned[message_id]:
                    del self._returned[message_id]
                outcome = "returned"
                error = PublishError("returned", f"no queue is bound for routing key {pending.message.routing_key!r}")
            else:
                outcome, error = "confirmed", None
            self._observer.on_publish(outcome, now - pending.published_at)
            settled += 1
            pending.batch._settle(pending.index, error)
        self._window.give_back(settled)

    def _on_blocked(self, _connection: Any, frame: Any) -> None:
        self.blocked = True
        self._observer.on_blocked(True)
        self._log.warning("The broker blocks publishing: %s.", getattr(frame.method, "reason", "resource alarm"))

    def _on_unblocked(self, _connection: Any, _frame: Any) -> None:
        self.blocked = False
        self._observer.on_blocked(False)
        self._log.info("The broker accepts publishing again.")
        self._drain()

    def _on_tick(self) -> None:
        if self.stalled or not self._unconfirmed:
            return
        oldest = next(iter(self._unconfirmed.values()))
        waited = time.monotonic() - max(oldest.published_at, self._last_confirm)
        if waited < CONFIRM_STALL_S:
            return
        # Confirms of a quorum queue come from its leader: none at all means a queue the messages
        # are routed to does not answer (a lost Raft member after a crash, say), not a slow broker.
        self.stalled = True
        self._observer.on_publish_stalled(True)
        keys = sorted({p.message.routing_key for p in self._unconfirmed.values()})
        self._log.error(
            "No confirm from the broker for %.0fs while %d message(s) wait for one (routing keys %s of "
            "exchange %r): a queue they are routed to does not answer. Runbook: %s.",
            waited, len(self._unconfirmed), ", ".join(keys[:5]),
            self._exchange, UNAVAILABLE_RUNBOOK,
        )

    def _on_disconnected(self) -> None:
        # Everything not confirmed goes out again, in its original order, on the next connection.
        self.ready = False
        if self.blocked:
            self.blocked = False
            self._observer.on_blocked(False)
        if self._unconfirmed:
            self._log.warning("%d unconfirmed message(s) will be published again.", len(self._unconfirmed))
        self._queue.extendleft(reversed(self._unconfirmed.values()))
        self._unconfirmed.clear()
        self._returned.clear()
        self._returned_keys.clear()
        self._channel = None


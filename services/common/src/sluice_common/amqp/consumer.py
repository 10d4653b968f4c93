"""The :class:`Consumer`: declares a group's topology, consumes, settles deliveries from any thread."""

from __future__ import annotations

import collections
import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import SelectConnection

from sluice_common.amqp.messages import _UNENCODABLE, _delivery, _properties
from sluice_common.amqp.session import UNAVAILABLE_RUNBOOK, AmqpObserver, _Session, broker_version, describe
from sluice_common.config import AmqpSettings
from sluice_common.envelope import Delivery, OutgoingMessage
from sluice_common.topology import GroupTopology

__all__ = ["Consumer", "DeliveryHandle"]

#: AMQP reply code for a failure inside the broker: a quorum queue that does not answer, say.
INTERNAL_ERROR = 541
#: Seconds a consumer waits for its topology declaration and ``basic.consume`` to be answered
#: before the attempt counts as failed and it reconnects (RabbitMQ itself gives up after 60 s).
SUBSCRIBE_TIMEOUT_S = 30.0
#: Failed attempts in a row on one queue after which that queue counts as unavailable.
UNAVAILABLE_AFTER_FAILURES = 2


def _declare_queue(channel: Any, name: str, arguments: dict[str, Any], cb: Callable[[Any], None]) -> None:
    channel.queue_declare(name, durable=True, arguments=arguments, callback=cb)


def _bind(channel: Any, queue: str, exchange: str, key: str, cb: Callable[[Any], None]) -> None:
    channel.queue_bind(queue, exchange, key, callback=cb)


@dataclass(frozen=True)
class DeliveryHandle:
    """Identifies one delivery for settling; only valid on the connection that delivered it."""

    generation: int
    tag: int


@dataclass(frozen=True)
class _Settlement:
    handle: DeliveryHandle
    forward: OutgoingMessage | None  # publish this (confirmed) before acking; None: just ack


class Consumer(_Session):
    """Consumes a group's work queue and settles deliveries from any thread.

    ``on_delivery(delivery, handle)`` runs on the I/O thread and must return quickly (hand the
    work to a pool). Settle each delivery exactly once with :meth:`ack` or :meth:`forward`; one
    not settled before the connection closes goes back to the queue.

    A queue that fails every attempt (the broker answers ``541 INTERNAL_ERROR``, or nothing within
    ``SUBSCRIBE_TIMEOUT_S``) :data:`UNAVAILABLE_AFTER_FAILURES` times in a row is reported in
    ``unavailable``, logged with its runbook and passed to the observer. A ``basic.cancel`` from the
    broker (queue deleted, consumer timeout) makes the consumer subscribe again, never sit idle.
    """

    def __init__(
        self,
        settings: AmqpSettings,
        topology: GroupTopology,
        *,
        prefetch: int,
        on_delivery: Callable[[Delivery, DeliveryHandle], None],
        queue_poll_s: float = 5.0,
        name: str = "sluice-consumer",
        observer: AmqpObserver | None = None,
    ) -> None:
        super().__init__(settings, name=name, observer=observer)
        self._topology = topology
        self._prefetch = prefetch
        self._on_delivery = on_delivery
        self._queue_poll_s = queue_poll_s
        self._generation = 0
        self._consume_channel: Any = None
        self._publish_channel: Any = None
        self._consumer_tag: str | None = None
        self._outstanding: collections.deque[int] = collections.deque()  # unsettled tags, arrival order
        self._settlements: collections.deque[_Settlement] = collections.deque()
        self._settle_scheduled = threading.Event()
        self._forwards: dict[int, DeliveryHandle] = {}  # publish tag -> delivery to ack on confirm
        self._next_publish_tag = 1
        self._paused = False
        self._awaiting: list[str] = []  # queues with a declare or consume sent and not yet answered
        self._failures: collections.Counter[str] = collections.Counter()  # failed attempts in a row
        #: Queues that failed every attempt lately; empty when all answer.
        self.unavailable: set[str] = set()
        self.ready = False
        for spec in topology.queues:
            self._observer.on_queue_unavailable(spec.name, False)  # a series per queue from the start

    @property
    def settling(self) -> int:
        """Settlements requested but not yet done (acks queued, forwards awaiting their confirm)."""
        return len(self._settlements) + len(self._forwards)

    def ack(self, handle: DeliveryHandle) -> None:
        """Acknowledge a delivery (thread-safe)."""
        self._settle(_Settlement(handle, None))

    def forward(self, handle: DeliveryHandle, message: OutgoingMessage) -> None:
        """Publish ``message`` with a confirm, then ack the delivery (thread-safe).

        If the broker nacks the publish, the delivery is requeued instead: it is never dropped.
        """
        self._settle(_Settlement(handle, message))

    def stop_consuming(self) -> None:
        """Ask the broker to stop sending deliveries; settling goes on (thread-safe)."""
        self._paused = True
        self._call(self._cancel)

    # -- the I/O thread ----------------------------------------------------------------------

    def _settle(self, settlement: _Settlement) -> None:
        self._settlements.append(settlement)
        if not self._settle_scheduled.is_set():
            self._settle_scheduled.set()
            if not self._call(self._apply_settlements):
                # No connection: this delivery is redelivered anyway. The flag must not stay set,
                # or no settlement would ever be scheduled again on the next connection.
                self._settle_scheduled.clear()

    def _on_connected(self, connection: SelectConnection) -> None:
        self._generation += 1
        connection.ioloop.call_later(SUBSCRIBE_TIMEOUT_S, functools.partial(self._check_subscribed, self._generation))
        connection.channel(on_open_callback=self._on_publish_channel_open)

    def _check_subscribed(self, generation: int) -> None:
        """Give up on a connection whose declarations or ``basic.consume`` got no answer in time."""
        if generation != self._generation or self.ready or self._paused or self._stopping.is_set():
            return
        self._queue_failed(self._oldest_awaiting(), f"no answer within {SUBSCRIBE_TIMEOUT_S:g}s")
        self._close_connection()

    def _sent(self, queue: str, callback: Callable[[Any], None], *, proves: bool = True) -> Callable[[Any], None]:
        """Track an operation on ``queue`` until the broker answers it; then run ``callback``.

        ``proves``: the answer shows that the queue works. A declaration does not: the broker answers
        it from its metadata, even for a quorum queue whose replica is lost.
        """
        self._awaiting.append(queue)

        def answered(frame: Any) -> None:
            if queue in self._awaiting:
                self._awaiting.remove(queue)
            if proves:
                self._queue_answered(queue)
            callback(frame)

        return answered

    def _oldest_awaiting(self) -> str:
        """The queue whose operation has waited longest for an answer: the one a failure is charged to."""
        return self._awaiting[0] if self._awaiting else self._topology.work.name

    def _queue_failed(self, queue: str, reason: str) -> None:
        self._failures[queue] += 1
        failures = self._failures[queue]
        if failures < UNAVAILABLE_AFTER_FAILURES or queue in self.unavailable:
            self._log.warning("Queue %r failed (%s), attempt %d in a row.", queue, reason, failures)
            return
        self.unavailable.add(queue)
        self._observer.on_queue_unavailable(queue, True)
        self._log.error(
            "Queue %r does not work: %d attempts in a row failed, the last with %s. The broker may have "
            "lost the queue's replica (a node killed right after the queue was declared). Runbook: %s.",
            queue, failures, reason, UNAVAILABLE_RUNBOOK,
        )

    def _queue_answered(self, queue: str) -> None:
        self._failures.pop(queue, None)
        if queue in self.unavailable:
            self.unavailable.discard(queue)
            self._observer.on_queue_unavailable(queue, False)
            self._log.info("Queue %r answers again.", queue)

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if isinstance(reason, pika.exceptions.ChannelClosedByBroker) and reason.reply_code == INTERNAL_ERROR:
            self._queue_failed(self._oldest_awaiting(), describe(reason))
        super()._on_channel_closed(channel, reason)

    def _on_broker_cancel(self, frame: Any) -> None:
        """The broker ended our subscription: subscribe again on a new connection."""
        queue = self._topology.work.name
        self.ready = False
        self._observer.on_consumer_cancelled(queue)
        if self._stopping.is_set() or self._paused:
            return
        self._log.warning(
            "The broker cancelled consumption of %r (queue deleted, or a delivery outlived the consumer "
            "timeout); subscribing again.", queue,
        )
        # A new connection re-declares the topology (a deleted queue comes back) and consumes again;
        # deliveries still unsettled are redelivered, as after any reconnect.
        self._close_connection()

    def _on_publish_channel_open(self, channel: Any) -> None:
        self._publish_channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(ack_nack_callback=self._on_forward_confirm, callback=lambda _f: self._declare())

    def _declare(self) -> None:
        """Declare exchange, queues and bindings in order; each step's callback starts the next."""
        assert self._connection is not None
        topology = self._topology.for_broker(broker_version(self._connection.server_properties))
        channel = self._publish_channel
        steps: list[Callable[[Callable[[Any], None]], None]] = [
            lambda cb: channel.exchange_declare(topology.exchange, "topic", durable=True, callback=cb)
        ]
        for spec in topology.queues:
            steps.append(functools.partial(self._declare_tracked, channel, spec.name, spec.arguments))
        for key in topology.binding_keys:
            steps.append(functools.partial(_bind, channel, topology.work.name, topology.exchange, key))
        _chain(steps, done=self._open_consume_channel)

    def _declare_tracked(self, channel: Any, name: str, arguments: dict[str, Any], cb: Callable[[Any], None]) -> None:
        _declare_queue(channel, name, arguments, self._sent(name, cb, proves=False))

    def _open_consume_channel(self) -> None:
        self._log.info(
            "Topology of group %r declared: %s.", self._topology.group, ", ".join(q.name for q in self._topology.queues)
        )
        assert self._connection is not None
        self._connection.channel(on_open_callback=self._on_consume_channel_open)

    def _on_consume_channel_open(self, channel: Any) -> None:
        self._consume_channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_cancel_callback(self._on_broker_cancel)
        channel.basic_qos(prefetch_count=self._prefetch, callback=lambda _f: self._consume())

    def _consume(self) -> None:
        if self._paused:
            return
        queue = self._topology.work.name
        self._consumer_tag = self._consume_channel.basic_consume(
            queue, self._on_message, callback=self._sent(queue, lambda _f: self._on_consuming())
        )

    def _on_consuming(self) -> None:
        self.ready = True
        self._log.info("Consuming from %r with prefetch %d.", self._topology.work.name, self._prefetch)
        self._poll_queues()

    def _cancel(self) -> None:
        if self._consume_channel is not None and self._consumer_tag is not None and self._consume_channel.is_open:
            self._consume_channel.basic_cancel(self._consumer_tag)
        self._consumer_tag = None
        self.ready = False

    def _on_message(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        delivery = _delivery(method, properties, body)
        self._outstanding.append(method.delivery_tag)
        self._on_delivery(delivery, DeliveryHandle(self._generation, method.delivery_tag))

    def _apply_settlements(self) -> None:
        self._settle_scheduled.clear()
        acked: set[int] = set()
        channel = self._consume_channel
        while self._settlements:
            settlement = self._settlements.popleft()
            if settlement.handle.generation != self._generation or channel is None or not channel.is_open:
                continue  # delivered on a connection that is gone: the broker redelivers it
            if settlement.forward is None:
                acked.add(settlement.handle.tag)
                continue
            message = settlement.forward
            try:
                self._publish_channel.basic_publish(
                    message.exchange, message.routing_key, message.body, _properties(message)
                )
            except _UNENCODABLE as e:
                # The copy cannot be encoded, so it is never sent: reject the original instead, and the
                # broker dead-letters it to the same dead-letter queue (the work queue's DLX).
                self._log.warning("Forward cannot be encoded (%s); the broker dead-letters the delivery.", describe(e))
                channel.basic_nack(settlement.handle.tag, requeue=False)
                self._outstanding.remove(settlement.handle.tag)
                continue
            except pika.exceptions.AMQPError as e:
                self._log.warning("Forward failed: %s; the delivery will be redelivered.", describe(e))
                continue
            self._forwards[self._next_publish_tag] = settlement.handle
            self._next_publish_tag += 1
        self._ack_many(acked)

    def _on_forward_confirm(self, frame: Any) -> None:
        method = frame.method
        tags = [method.delivery_tag]
        if method.multiple:
            tags = [t for t in self._forwards if t <= method.delivery_tag]
        handles = [h for h in (self._forwards.pop(t, None) for t in tags) if h is not None]
        if isinstance(method, pika.spec.Basic.Nack):
            for handle in handles:
                self._log.warning("The broker nacked a forwarded message; its delivery goes back to the queue.")
                self._consume_channel.basic_nack(handle.tag, requeue=True)
                self._outstanding.remove(handle.tag)
            return
        self._ack_many({h.tag for h in handles if h.generation == self._generation})

    def _ack_many(self, tags: set[int]) -> None:
        """Ack the longest settled prefix with one ``multiple`` ack, the rest one by one."""
        if not tags:
            return
        channel, last = self._consume_channel, None
        while self._outstanding and self._outstanding[0] in tags:
            last = self._outstanding.popleft()
            tags.discard(last)
        if last is not None:
            channel.basic_ack(last, multiple=True)
        for tag in tags:
            channel.basic_ack(tag)
            self._outstanding.remove(tag)

    def _poll_queues(self) -> None:
        """Read each queue's depth with a passive declare, then again every ``queue_poll_s``."""
        channel = self._publish_channel
        if channel is None or not channel.is_open:
            return
        for spec in self._topology.queues:
            channel.queue_declare(spec.name, passive=True, callback=self._sent(spec.name, self._on_queue_stats))
        assert self._connection is not None
        self._connection.ioloop.call_later(self._queue_poll_s, self._poll_queues)

    def _on_queue_stats(self, frame: Any) -> None:
        method = frame.method
        self._observer.on_queue_stats(method.queue, method.message_count, method.consumer_count)

    def _on_disconnected(self) -> None:
        self.ready = False
        self._awaiting.clear()
        # A settlement scheduled on the loop that just stopped never ran: schedule afresh next time.
        self._settle_scheduled.clear()
        self._consume_channel = self._publish_channel = None
        self._consumer_tag = None
        self._outstanding.clear()
        self._forwards.clear()
        self._next_publish_tag = 1


def _chain(steps: Iterable[Callable[[Callable[[Any], None]], None]], *, done: Callable[[], None]) -> None:
    """Run asynchronous steps one after another: each gets a callback that starts the next."""
    remaining = list(steps)

    def next_step(_frame: Any = None) -> None:
        if remaining:
            remaining.pop(0)(next_step)
        else:
            done()

    next_step()

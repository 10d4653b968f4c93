"""The :class:`QueueClient`: a blocking connection for operator tools (browse, publish, ack, purge)."""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pika
import pika.exceptions

from sluice_common.amqp.messages import _delivery, _properties
from sluice_common.amqp.parameters import connection_parameters
from sluice_common.amqp.session import describe
from sluice_common.config import AmqpSettings, redact_url
from sluice_common.envelope import Delivery, OutgoingMessage
from sluice_common.errors import BrokerError, PublishError

__all__ = ["QueueClient"]

#: AMQP reply code for a queue that does not exist.
NOT_FOUND = 404
#: How long a :class:`QueueClient` waits while the broker blocks publishing before it gives up.
BLOCKED_TIMEOUT_S = 60.0


class QueueClient:
    """A blocking, single-threaded session for short-lived operator tools (``sluice dlq``).

    Unlike :class:`Publisher` and :class:`Consumer` it does not reconnect: a tool that loses its
    connection stops, and every message it had received but not acknowledged goes back to its
    queue. That is what makes its operations safe to interrupt at any point.

    Usage::

        with QueueClient(settings.amqp) as client:
            for delivery, tag in client.browse("sluice.default.dead", prefetch=100, idle_s=1.0):
                client.publish(copy_of(delivery))   # returns once confirmed, else PublishError
                client.ack(tag)

    Raises:
        BrokerError: on connecting, and from any operation whose connection or channel failed.
    """

    def __init__(self, settings: AmqpSettings, *, name: str = "sluice-cli") -> None:
        self._url = redact_url(settings.url)
        params = connection_parameters(settings, name)
        # A broker in a resource alarm blocks publishers; a tool gives up rather than hang forever.
        params.blocked_connection_timeout = BLOCKED_TIMEOUT_S
        try:
            self._connection = pika.BlockingConnection(params)
            self._publish_channel = self._connection.channel()
            self._publish_channel.confirm_delivery()
        except pika.exceptions.AMQPError as e:
            raise BrokerError(f"cannot use the broker at {self._url}: {describe(e)}") from None
        self._browse_channel: Any = None
        self._browse_tag = ""
        self._browse_last = 0  # delivery tag of the last message the browse received

    def __enter__(self) -> QueueClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def depth(self, queue: str) -> int:
        """Ready messages in ``queue`` (a passive declare: it must exist)."""
        with self._mapped(f"queue {queue!r}"):
            channel = self._connection.channel()
            try:
                return int(channel.queue_declare(queue, passive=True).method.message_count)
            finally:
                if channel.is_open:
                    channel.close()
        raise AssertionError("unreachable")  # pragma: no cover - _mapped re-raises

    def browse(self, queue: str, *, prefetch: int, idle_s: float) -> Iterator[tuple[Delivery, int]]:
        """Receive ``queue``'s messages in order without removing them; yields each with its tag.

        At most ``prefetch`` (1-65535) of them are held unacknowledged at once. The iteration ends
        after ``idle_s`` seconds without a message, or when the caller stops it; either way the
        messages not acknowledged with :meth:`ack` go back to the queue, in their order.
        """
        self.release()
        received: collections.deque[tuple[Any, Any, bytes]] = collections.deque()
        with self._mapped(f"queue {queue!r}"):
            self._browse_channel = channel = self._connection.channel()
            channel.basic_qos(prefetch_count=prefetch)
            self._browse_last = 0

            def on_message(_channel: Any, method: Any, properties: Any, body: bytes) -> None:
                self._browse_last = method.delivery_tag
                received.append((method, properties, body))

            self._browse_tag = channel.basic_consume(queue, on_message)
        try:
            while True:
                if not received:
                    self._wait_for(received, idle_s)
                    if not received:
                        return
                    continue
                method, properties, body = received.popleft()
                yield _delivery(method, properties, body), method.delivery_tag
        finally:
            self.release()

    def _wait_for(self, received: collections.deque[Any], timeout: float) -> None:
        """Answer the broker until a delivery arrives in ``received`` or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        with self._mapped("receiving"):
            while not received and (remaining := deadline - time.monotonic()) > 0:
                # Returns early on any event (a delivery, but also a confirm or a close-ok).
                self._connection.process_data_events(time_limit=remaining)

    def ack(self, tag: int) -> None:
        """Acknowledge (remove) one browsed message."""
        with self._mapped("ack"):
            self._browse_channel.basic_ack(tag)

    def publish(self, message: OutgoingMessage) -> None:
        """Publish one persistent, mandatory message and return once the broker confirmed it.

        Raises:
            PublishError: ``returned`` (no queue for its routing key) or ``nacked``.
        """
        try:
            self._publish_channel.basic_publish(
                message.exchange, message.routing_key, message.body, _properties(message), mandatory=True
            )
        except pika.exceptions.UnroutableError:
            raise PublishError(
                "returned", f"no queue is bound to exchange {message.exchange!r} for {message.routing_key!r}"
            ) from None
        except pika.exceptions.NackError:
            raise PublishError("nacked", "the broker could not take the message") from None
        except pika.exceptions.AMQPError as e:
            raise BrokerError(f"publishing failed: {describe(e)}") from None

    def purge(self, queue: str) -> int:
        """Delete every ready message of ``queue``; returns how many there were."""
        with self._mapped(f"queue {queue!r}"):
            return int(self._publish_channel.queue_purge(queue).method.message_count)
        raise AssertionError("unreachable")  # pragma: no cover - _mapped re-raises

    def sleep(self, seconds: float) -> None:
        """Wait while still answering the broker (heartbeats); use instead of ``time.sleep``."""
        with self._mapped("sleep"):
            self._connection.sleep(seconds)

    def release(self) -> None:
        """Return every browsed, unacknowledged message to its queue (by closing the browse channel)."""
        channel, self._browse_channel = self._browse_channel, None
        if channel is not None and channel.is_open:
            # Every message received goes back with one nack (multiple, requeue), in delivery order; on
            # RabbitMQ 4.3 leaving them to the channel's close let two of them trade places, now and
            # then. Then cancel and close, which returns any the broker had sent but we had not read.
            # (pika's ``consume()`` generator would reject the ones it buffered one by one, and scramble them.)
            try:
                if self._browse_last:
                    channel.basic_nack(self._browse_last, multiple=True, requeue=True)
                channel.basic_cancel(self._browse_tag)
                channel.close()
            except pika.exceptions.AMQPError:
                pass  # the connection is gone: the broker returns the messages anyway

    def close(self) -> None:
        """Close the connection; unacknowledged messages go back to their queues."""
        self.release()
        if self._connection.is_open:
            try:
                self._connection.close()
            except pika.exceptions.AMQPError:
                pass

    @contextlib.contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """Turn pika's failures into :class:`BrokerError`; a 404 says which queue is missing."""
        try:
            yield
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code == NOT_FOUND:
                raise BrokerError(f"{what} does not exist") from None
            raise BrokerError(f"{what}: {describe(e)}") from None
        except pika.exceptions.AMQPError as e:
            raise BrokerError(f"{what}: {describe(e)}") from None

"""The AMQP client: the only module that imports pika.

Two sessions, each owning one connection and one I/O thread that runs pika's ``SelectConnection``
loop. pika is not thread-safe, so every channel operation runs on that thread; other threads hand
work over with ``ioloop.add_callback_threadsafe``. Because the loop never runs user code, heartbeats
keep flowing however long a handler takes.

- :class:`Publisher`: publisher confirms always on, persistent messages, ``mandatory`` with
  returns reported, a bounded window of unconfirmed messages, and republishing of everything
  unconfirmed after a reconnect (a duplicate is possible, a loss is not).
- :class:`Consumer`: declares a group's topology, consumes with a prefetch, hands each delivery to a
  callback, and settles it later from any thread: ack, or forward (publish to a retry tier or the
  dead-letter queue, wait for the confirm, then ack; a crash in between duplicates, never loses).
- :class:`QueueClient`: a blocking session for operator tools: browse a queue without removing
  from it, publish one message at a time with a confirm, ack, purge.

Both reconnect with capped exponential backoff. pika's failures never leave this module: they are
logged, turned into state (``connected``, ``ready``) or raised as :mod:`sluice_common.errors`.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import logging
import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import SelectConnection
from pika.adapters.utils import connection_workflow

from sluice_common.config import AmqpSettings, redact_url
from sluice_common.envelope import Delivery, OutgoingMessage
from sluice_common.errors import BrokerError, ConfigError, PublishError, TopologyConflict
from sluice_common.topology import GroupTopology

__all__ = ["AmqpObserver", "Consumer", "DeliveryHandle", "Publisher", "QueueClient", "broker_version", "compute_backoff"]

#: First and longest pause between reconnection attempts, in seconds.
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
#: The I/O thread counts as alive while its loop ticked this recently (see ``alive``).
STALL_AFTER_S = 30.0
#: AMQP reply code for a declaration whose arguments differ from the existing object's.
PRECONDITION_FAILED = 406
#: Most bytes joined into one ``send()``; see :func:`coalesce_writes`.
COALESCE_BYTES = 128 * 1024
#: AMQP reply code for a queue that does not exist.
NOT_FOUND = 404
#: AMQP reply code for a failure inside the broker: a quorum queue that does not answer, say.
INTERNAL_ERROR = 541
#: Seconds a consumer waits for its topology declaration and ``basic.consume`` to be answered
#: before the attempt counts as failed and it reconnects (RabbitMQ itself gives up after 60 s).
SUBSCRIBE_TIMEOUT_S = 30.0
#: Failed attempts in a row on one queue after which that queue counts as unavailable.
UNAVAILABLE_AFTER_FAILURES = 2
#: Seconds without any confirm, while messages wait for one, after which publishing counts as stalled.
CONFIRM_STALL_S = 30.0
#: Where the log points an operator at a queue that no longer works.
UNAVAILABLE_RUNBOOK = "docs/runbooks.md#sluicequeueunavailable"
#: How long a :class:`QueueClient` waits while the broker blocks publishing before it gives up.
BLOCKED_TIMEOUT_S = 60.0
#: Routing keys whose first returned message a :class:`Publisher` logs as a warning (the rest at DEBUG).
RETURN_LOG_KEYS = 100
#: Raised by pika while encoding a message, before anything is sent: the message itself is at fault.
_UNENCODABLE = (pika.exceptions.ShortStringTooLong, pika.exceptions.UnsupportedAMQPFieldException, struct.error)


def _declare_queue(channel: Any, name: str, arguments: dict[str, Any], cb: Callable[[Any], None]) -> None:
    channel.queue_declare(name, durable=True, arguments=arguments, callback=cb)


def _bind(channel: Any, queue: str, exchange: str, key: str, cb: Callable[[Any], None]) -> None:
    channel.queue_bind(queue, exchange, key, callback=cb)


def broker_version(server_properties: dict[str, Any]) -> str:
    """The RabbitMQ version a connection's server properties announce (``""`` when absent)."""
    version = server_properties.get("version", "")
    return version.decode(errors="replace") if isinstance(version, bytes) else str(version)


def compute_backoff(attempt: int, *, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before reconnection attempt ``attempt`` (1-based): doubling, capped, jittered.

    ``rand`` returns a number in [0, 1); pass ``lambda: 0.5`` for a deterministic delay.
    """
    ceiling = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2.0 ** max(attempt - 1, 0))
    return ceiling / 2 + ceiling / 2 * rand()  # "equal jitter": never less than half the ceiling


class AmqpObserver:
    """Hooks the sessions call on their I/O thread. ``metrics.py`` implements them; all are no-ops here."""

    def on_connection(self, connected: bool) -> None:
        """The connection opened or closed."""

    def on_publish(self, outcome: str, seconds: float) -> None:
        """A publish ended as ``confirmed``, ``nacked`` or ``returned`` after ``seconds``."""

    def on_queue_stats(self, queue: str, messages: int, consumers: int) -> None:
        """A queue's ready-message and consumer counts were read from the broker."""

    def on_blocked(self, blocked: bool) -> None:
        """The broker started (True) or stopped (False) blocking this connection's publishes."""

    def on_queue_unavailable(self, queue: str, unavailable: bool) -> None:
        """A queue started (True) or stopped (False) failing every attempt to declare or consume it."""

    def on_consumer_cancelled(self, queue: str) -> None:
        """The broker cancelled this consumer (the queue was deleted, or a delivery timed out)."""

    def on_publish_stalled(self, stalled: bool) -> None:
        """Confirms stopped (True) or resumed (False) while messages were waiting for one."""


def connection_parameters(settings: AmqpSettings, name: str) -> pika.URLParameters:
    """pika parameters for the broker, with TLS set up from the settings' files."""
    params = pika.URLParameters(settings.url)
    params.heartbeat = settings.heartbeat_s
    params.connection_attempts = 1  # the session's own loop retries, with backoff
    params.socket_timeout = 10
    params.client_properties = {"connection_name": f"{name}@{socket.gethostname()}"}
    if settings.url.startswith("amqps://"):
        params.ssl_options = pika.SSLOptions(tls_context(settings), server_hostname=params.host)
    return params


def tls_context(settings: AmqpSettings) -> ssl.SSLContext:
    """A client TLS context that verifies the broker's certificate and host name.

    Trusts ``ca_file`` when set, else the system's CAs; presents ``cert_file``/``key_file`` when set.

    Raises:
        ConfigError: a file is not a PEM certificate or key (or the key does not match the
            certificate); the message names the variable.
    """
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (ssl.SSLError, OSError) as e:
            raise ConfigError("SLUICE_AMQP_CA_FILE", settings.ca_file, f"not a PEM CA bundle ({e})") from None
    if settings.cert_file:
        try:
            context.load_cert_chain(settings.cert_file, settings.key_file)
        except (ssl.SSLError, OSError) as e:
            raise ConfigError(
                "SLUICE_AMQP_CERT_FILE", settings.cert_file, f"certificate and SLUICE_AMQP_KEY_FILE do not load ({e})"
            ) from None
    return context


def describe(error: BaseException | None) -> str:
    """A one-line, credential-free account of a pika failure."""
    text = _describe(error)
    if "CERTIFICATE_REQUIRED" in text:  # the broker's TLS alert, wrapped in pika's stream errors
        return "TLS: the broker requires a client certificate; set SLUICE_AMQP_CERT_FILE and SLUICE_AMQP_KEY_FILE"
    return text


def _describe(error: BaseException | None) -> str:
    # pika's connection workflow wraps the real cause: a list of attempts, each wrapping one error.
    if isinstance(error, connection_workflow.AMQPConnectionWorkflowFailed) and error.exceptions:
        return _describe(error.exceptions[-1])
    if isinstance(error, connection_workflow.AMQPConnectorPhaseErrorBase):
        return _describe(error.exception)
    if isinstance(error, pika.exceptions.ProbableAuthenticationError):
        return "authentication failed: check the user name and password"
    if isinstance(error, pika.exceptions.ProbableAccessDeniedError):
        return "access denied: the user may not use this virtual host"
    if isinstance(error, (pika.exceptions.ConnectionClosed, pika.exceptions.ChannelClosed)):
        return f"{error.reply_code} {error.reply_text}"
    if isinstance(error, pika.exceptions.AMQPConnectionError) and error.args:
        inner = error.args[0]
        return _describe(inner) if isinstance(inner, BaseException) else str(inner)
    if isinstance(error, ssl.SSLCertVerificationError):  # before SSLError, its base class
        return (f"TLS certificate of the broker not trusted: {error.verify_message}; "
                "check SLUICE_AMQP_CA_FILE and the host name in SLUICE_AMQP_URL")
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed: {error.reason or error}"
    return f"{type(error).__name__}: {error}" if error else "unknown reason"


def coalesce_writes(connection: Any) -> bool:
    """Let a plaintext connection send many frames per ``send()`` call; True if it now does.

    pika queues each frame (three per published message, one per ack) as a buffer of its own and
    sends the buffers one syscall each: a third of a producer's CPU. Joining the queued buffers,
    up to ``COALESCE_BYTES``, before pika sends them puts the same bytes on the wire in the same
    order with far fewer syscalls. TLS connections are left alone: after a partial TLS write,
    OpenSSL wants the retry made with the same buffer. Relies on pika 1.x transport internals and
    does nothing where they differ.
    """
    transport = getattr(connection, "_transport", None)
    buffers = getattr(transport, "_tx_buffers", None)
    produce = getattr(transport, "_produce", None)
    if not isinstance(buffers, collections.deque) or produce is None or connection.params.ssl_options is not None:
        return False

    def coalescing_produce() -> None:
        if len(buffers) > 1:
            head, size = [], 0
            while buffers and size < COALESCE_BYTES:
                chunk = buffers.popleft()
                head.append(chunk)
                size += len(chunk)
            buffers.appendleft(b"".join(head))
        produce()

    transport._produce = coalescing_produce  # type: ignore[union-attr]
    return True


class _Session:
    """One connection, its I/O thread, and reconnection with backoff. Subclasses open channels."""

    def __init__(self, settings: AmqpSettings, *, name: str, observer: AmqpObserver | None) -> None:
        self._params = connection_parameters(settings, name)
        self._url = redact_url(settings.url)
        self._name = name
        self._observer = observer or AmqpObserver()
        self._log = logging.getLogger(f"sluice.amqp.{type(self).__name__}")
        self._connection: SelectConnection | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-io", daemon=True)
        self._last_tick = time.monotonic()
        self.connected = False
        #: Set when the broker refused our topology: retrying cannot help, the service must exit.
        self.fatal_error: Exception | None = None

    # -- life cycle, called from any thread ------------------------------------------------

    def start(self) -> None:
        """Start the I/O thread; it connects and keeps reconnecting until :meth:`stop`."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and wait for the I/O thread to end."""
        self._stopping.set()
        self._call(self._close_connection)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """The I/O thread runs and its loop ticked recently (liveness)."""
        return self._thread.is_alive() and time.monotonic() - self._last_tick < STALL_AFTER_S

    def _call(self, fn: Callable[[], None]) -> bool:
        """Run ``fn`` on the I/O thread; False when there is no connection to run it on."""
        connection = self._connection
        if connection is None or connection.is_closed:
            return False
        try:
            connection.ioloop.add_callback_threadsafe(fn)
        except (pika.exceptions.AMQPError, RuntimeError, OSError, AttributeError):
            return False  # the loop closed in between; the next connection starts afresh
        return True

    # -- the I/O thread ----------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set() and self.fatal_error is None:
            self._last_tick = time.monotonic()
            self._connection = SelectConnection(
                self._params,
                on_open_callback=self._on_connection_open,
                on_open_error_callback=self._on_connection_error,
                on_close_callback=self._on_connection_closed,
            )
            self._connection.ioloop.call_later(1.0, self._tick)
            self._connection.ioloop.start()
            was_connected, self.connected = self.connected, False
            self._connection.ioloop.close()
            self._connection = None
            self._on_disconnected()
            if self._stopping.is_set() or self.fatal_error is not None:
                break
            attempt = 1 if was_connected else attempt + 1
            delay = compute_backoff(attempt)
            self._log.info("Reconnecting to %s in %.1fs (attempt %d).", self._url, delay, attempt)
            while delay > 0 and not self._stopping.wait(min(delay, 1.0)):
                self._last_tick = time.monotonic()
                delay -= 1.0
        self._log.info("Connection loop of %s has ended.", self._name)

    def _tick(self) -> None:
        self._last_tick = time.monotonic()
        if self._connection is not None and not self._connection.is_closed:
            self._on_tick()
            self._connection.ioloop.call_later(1.0, self._tick)

    def _on_connection_open(self, connection: SelectConnection) -> None:
        coalesce_writes(connection)
        self.connected = True
        self._observer.on_connection(True)
        self._log.info("Connected to %s.", self._url)
        if self._stopping.is_set():
            connection.close()
            return
        self._on_connected(connection)

    def _on_connection_error(self, connection: SelectConnection, error: BaseException) -> None:
        self._log.warning("Could not connect to %s: %s.", self._url, describe(error))
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: SelectConnection, reason: BaseException) -> None:
        if self.connected:
            self._observer.on_connection(False)
        level = logging.INFO if self._stopping.is_set() else logging.WARNING
        self._log.log(level, "Connection to %s closed: %s.", self._url, describe(reason))
        connection.ioloop.stop()

    def _close_connection(self) -> None:
        connection = self._connection
        if connection is not None and not (connection.is_closing or connection.is_closed):
            connection.close()

    def _fail(self, error: Exception) -> None:
        """Give up for good: record why and close; the service reads ``fatal_error`` and exits."""
        self._log.error("%s", error)
        self.fatal_error = error
        self._close_connection()

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        """A channel closed under us: close the connection too, so that everything restarts cleanly."""
        # 406 also closes a channel whose delivery outlived the consumer timeout: only "inequivalent
        # arg" means that a declaration differs from what exists.
        if (isinstance(reason, pika.exceptions.ChannelClosedByBroker) and reason.reply_code == PRECONDITION_FAILED
                and "inequivalent arg" in reason.reply_text):
            self._fail(TopologyConflict(
                f"the broker refused a declaration: {reason.reply_text}. The queue or exchange exists with other "
                "arguments (declared by an earlier sluice or with other SLUICE_TOPOLOGY_* / SLUICE_RETRY_* "
                "settings): drain and delete it, or choose another SLUICE_TOPOLOGY_PREFIX"
            ))
            return
        if not self._stopping.is_set():
            self._log.warning("Channel %s closed: %s; reconnecting.", channel.channel_number, describe(reason))
        self._close_connection()

    # -- subclass hooks ------------------------------------------------------------------------

    def _on_connected(self, connection: SelectConnection) -> None:
        raise NotImplementedError

    def _on_disconnected(self) -> None:
        """Runs on the I/O thread after a connection ended and before the next one."""

    def _on_tick(self) -> None:
        """Runs on the I/O thread about once a second while connected."""


class _Window:
    """Slots for unconfirmed messages, taken and given back many at a time (a semaphore takes one)."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._changed = threading.Condition()

    def take(self, wanted: int, deadline: float) -> int:
        """Wait until a slot is free or ``deadline`` (monotonic) passes; take up to ``wanted``, return how many."""
        with self._changed:
            while not self._free:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return 0
                self._changed.wait(remaining)
            taken = min(wanted, self._free)
            self._free -= taken
            return taken

    def give_back(self, count: int) -> None:
        if count:
            with self._changed:
                self._free += count
                self._changed.notify_all()


@dataclass
class _Pending:
    message: OutgoingMessage
    future: Future[None]
    published_at: float = 0.0


def _properties(message: OutgoingMessage) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=message.content_type,
        delivery_mode=2,  # persistent
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        headers=message.headers,
    )


class Publisher(_Session):
    """Publishes with confirms from any thread; each message gets a future that resolves on its confirm.

    Usage::

        publisher = Publisher(settings.amqp, exchange="sluice.events", max_outstanding=1000)
        publisher.start()
        futures = publisher.publish([encode(event, "sluice.events")])
        futures[0].result(timeout=10)   # None once confirmed, else PublishError
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

    def publish(self, messages: Sequence[OutgoingMessage], *, timeout: float = 10.0) -> list[Future[None]]:
        """Queue messages for publishing; returns one future per message, in order.

        Blocks while ``max_outstanding`` messages are unconfirmed, for at most ``timeout`` seconds.
        A future's result is ``None`` once the broker confirmed the message; otherwise it raises
        :class:`PublishError` (``nacked``, ``returned``, or ``timeout`` when the window stayed full).
        """
        deadline = time.monotonic() + timeout
        futures: list[Future[None]] = []
        slots = 0
        for message in messages:
            future: Future[None] = Future()
            if not slots:
                slots = self._window.take(len(messages) - len(futures), time.monotonic())  # free ones only
                if not slots:
                    # The window is full. What this batch queued so far must go out now: its confirms
                    # are what frees the window (a batch larger than the window would wait for itself).
                    self._schedule_drain()
                    slots = self._window.take(len(messages) - len(futures), deadline)
            if not slots:
                future.set_exception(PublishError("timeout", "too many messages are waiting for a confirm"))
            else:
                slots -= 1
                self._queue.append(_Pending(message, future))
            futures.append(future)
        self._schedule_drain()
        return futures

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
        futures = self.publish(messages, timeout=timeout)
        results: list[PublishError | None] = []
        for future in futures:
            try:
                future.result(timeout=max(deadline - time.monotonic(), 0))
                results.append(None)
            except PublishError as e:
                results.append(e)
            except TimeoutError:
                future.cancel()
                results.append(PublishError("timeout", f"no confirm within {timeout:g}s"))
        return results

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
            if pending.future.cancelled():
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
                _resolve(pending.future, PublishError("invalid", f"cannot be encoded in AMQP: {describe(e)}"))
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
            _resolve(pending.future, error)
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


def _resolve(future: Future[None], error: PublishError | None) -> None:
    """Settle a publish future, unless its caller already withdrew it."""
    try:
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
    except InvalidStateError:
        pass  # cancelled after it was published: the caller already reported it as not confirmed


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


def _delivery(method: Any, properties: Any, body: bytes) -> Delivery:
    headers = dict(properties.headers or {})
    # Any client can set x-delivery-count: RabbitMQ 4.0 passes it through on a first delivery and
    # only writes its own count on redeliveries. Trusting a forged one would dead-letter a good event.
    count = headers.get("x-delivery-count", 0) if method.redelivered else 0
    return Delivery(
        body=body,
        routing_key=method.routing_key,
        message_id=properties.message_id,
        headers=headers,
        content_type=properties.content_type,
        type=properties.type,
        timestamp=properties.timestamp,
        redelivered=method.redelivered,
        delivery_count=count if isinstance(count, int) else 0,
    )

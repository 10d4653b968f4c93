"""The reconnecting session that :class:`Publisher` and :class:`Consumer` build on.

One connection and one I/O thread running pika's ``SelectConnection`` loop, reconnection with
capped exponential backoff, the observer hooks the sessions call, and the credential-free
description of pika's failures that every log line and error uses.
"""

from __future__ import annotations

import collections
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import SelectConnection
from pika.adapters.utils import connection_workflow

from sluice_common.amqp.parameters import connection_parameters
from sluice_common.config import AmqpSettings, redact_url
from sluice_common.errors import TopologyConflict

__all__ = ["AmqpObserver", "broker_version", "coalesce_writes", "compute_backoff", "describe"]

#: First and longest pause between reconnection attempts, in seconds.
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 30.0
#: The I/O thread counts as alive while its loop ticked this recently (see ``alive``).
STALL_AFTER_S = 30.0
#: AMQP reply code for a declaration whose arguments differ from the existing object's.
PRECONDITION_FAILED = 406
#: Most bytes joined into one ``send()``; see :func:`coalesce_writes`.
COALESCE_BYTES = 128 * 1024
#: Where the log points an operator at a queue that no longer works.
UNAVAILABLE_RUNBOOK = "docs/runbooks.md#sluicequeueunavailable"


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

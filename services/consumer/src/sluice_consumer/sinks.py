"""Sinks: where a consumer delivers each event once it is valid and processed.

Extension point: subclass :class:`Sink`, implement ``deliver``, and raise :class:`SinkError` with
``retryable=True`` for failures worth retrying later (the message goes to the next retry tier) or
``retryable=False`` for failures that will never succeed (the message is dead-lettered as
``rejected``). Any other exception counts as retryable. ``deliver`` runs on worker threads, so a
sink must be thread-safe. Register it in :func:`build_sink`.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import requests

from sluice_common.config import SinkSettings
from sluice_common.envelope import Event

__all__ = ["FileSink", "HttpSink", "LogSink", "NullSink", "Sink", "SinkError", "build_sink", "event_document"]

#: HTTP statuses that mean "try again later"; any other failing status is permanent.
RETRYABLE_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


class SinkError(Exception):
    """Raised by a sink that could not deliver an event; ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sink:
    """Delivers events somewhere. ``name`` labels the processing-time metric."""

    name = "sink"

    def deliver(self, event: Event) -> None:
        """Deliver one event, or raise :class:`SinkError`."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; called once at shutdown."""


def event_document(event: Event) -> dict[str, Any]:
    """The JSON document sinks write: the event's id, type and data."""
    return {"id": event.id, "type": event.type, "data": event.data}


class NullSink(Sink):
    """Accepts every event and does nothing: for benchmarks and dry runs."""

    name = "null"

    def deliver(self, event: Event) -> None:
        pass


class LogSink(Sink):
    """Writes each event as a log line."""

    name = "log"

    def __init__(self) -> None:
        self._log = logging.getLogger("sluice.sink")

    def deliver(self, event: Event) -> None:
        self._log.info("Delivered %s event.", event.type, extra={"message_id": event.id, "event_type": event.type})


class FileSink(Sink):
    """Appends each event as one JSON line to a file, flushed before the message is acked."""

    name = "file"

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the process's life

    def deliver(self, event: Event) -> None:
        line = json.dumps(event_document(event), separators=(",", ":"), ensure_ascii=False) + "\n"
        try:
            with self._lock:
                self._file.write(line)
                self._file.flush()
        except OSError as e:
            raise SinkError(f"could not write to the sink file: {e}", retryable=True) from e

    def close(self) -> None:
        with self._lock:
            self._file.close()


class HttpSink(Sink):
    """POSTs each event as JSON to a webhook, with the message id as ``Idempotency-Key``.

    A status in ``success_codes`` delivers; 408, 425, 429 and 5xx, timeouts and connection errors
    are retried; any other status rejects the event for good.
    """

    name = "http"

    def __init__(self, url: str, *, timeout_s: float, success_codes: frozenset[int]) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._success_codes = success_codes
        self._local = threading.local()  # one connection pool per worker thread

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def deliver(self, event: Event) -> None:
        try:
            response = self._session().post(
                self._url,
                json=event_document(event),
                headers={"Idempotency-Key": event.id, "X-Sluice-Event-Type": event.type},
                timeout=self._timeout_s,
            )
        except requests.Timeout:
            raise SinkError(f"webhook timed out after {self._timeout_s:g}s", retryable=True) from None
        except requests.RequestException as e:
            raise SinkError(f"webhook unreachable: {type(e).__name__}", retryable=True) from None
        status = response.status_code
        if status in self._success_codes:
            return
        detail = response.text[:200].strip()
        raise SinkError(f"webhook answered {status}: {detail}", retryable=status in RETRYABLE_STATUSES)


def build_sink(settings: SinkSettings) -> Sink:
    """The sink the settings name."""
    if settings.kind == "http":
        return HttpSink(settings.url, timeout_s=settings.timeout_s, success_codes=settings.success_codes)
    if settings.kind == "file":
        return FileSink(settings.path)
    if settings.kind == "null":
        return NullSink()
    return LogSink()

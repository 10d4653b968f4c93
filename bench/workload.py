"""What every contender sends and measures: the message, the stamps in it, and the child's report."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

_Run = TypeVar("_Run")

__all__ = ["READING", "BODY", "Meter", "Report", "Tally", "median_run", "paced_chunks", "stamp", "stamp_age"]

#: The event every contender moves: a valid ``sensor.reading`` (sluice validates it against its schema).
READING: dict[str, Any] = {
    "sensor_id": "s-1",
    "metric": "temperature",
    "value": 21.5,
    "unit": "celsius",
    "recorded_at": "2026-11-25T10:00:00Z",
}
BODY = json.dumps(READING, separators=(",", ":")).encode()
#: Messages published per chunk: producers stamp a chunk's messages when they hand it over.
CHUNK = 500


def stamp(seq: int) -> str:
    """A message id carrying the wall-clock time of its publish, for publish-to-sink latency."""
    return f"{seq}@{time.time():.6f}"


def stamp_age(message_id: str | None) -> float | None:
    """Seconds since the message with this id was published; None for an unstamped id."""
    if not message_id or "@" not in message_id:
        return None
    return time.time() - float(message_id.rsplit("@", 1)[1])


def paced_chunks(n: int, rate: float | None, chunk: int = CHUNK) -> Iterator[range]:
    """Sequence numbers 0..n-1 in chunks; with ``rate`` (msgs/s), each chunk waits for its turn.

    Paced chunks are small (10 ms of messages) so that stamps stay close to the publish.
    """
    if rate:
        chunk = max(1, int(rate / 100))
    started = time.perf_counter()
    for first in range(0, n, chunk):
        if rate:
            delay = started + first / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        yield range(first, min(first + chunk, n))


def median_run(runs: Sequence[_Run], key: Callable[[_Run], float]) -> _Run:
    """The run whose ``key`` is the median (the lower of the two middle ones for an even count)."""
    return sorted(runs, key=key)[(len(runs) - 1) // 2]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


@dataclass
class Report:
    """What one contender process measured: messages moved, the window, CPU and memory."""

    contender: str
    role: str  # "producer" or "consumer"
    messages: int
    started: float  # wall clock (time.time()) at the first message
    finished: float  # wall clock at the last message
    cpu_s: float  # CPU seconds between those two moments, all threads
    rss_mib: float  # peak resident set size of the process
    latencies: list[float] = field(default_factory=list)  # publish-to-sink seconds (stamped messages)


class Meter:
    """Brackets the measured window: ``begin`` at the first message, ``end`` after the last."""

    def __init__(self, contender: str, role: str) -> None:
        self.contender, self.role = contender, role
        self.started = 0.0
        self._cpu = 0.0
        self.finished = 0.0

    def begin(self) -> None:
        if not self.started:
            self.started, self._cpu = time.time(), _cpu_seconds()

    def end(self) -> None:
        self.finished = time.time()

    def report(self, messages: int, latencies: list[float] | None = None) -> Report:
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return Report(self.contender, self.role, messages, self.started, self.finished or time.time(),
                      _cpu_seconds() - self._cpu, rss_kib / 1024, latencies or [])


class _Counter(Protocol):
    value: int

    def get_lock(self) -> Any: ...


class _Flag(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Tally:
    """Counts messages across all consumer processes of a run; the one that reaches ``expected`` says done.

    Each consumer calls :meth:`add` once per message it has fully handled (after its ack or sink).
    """

    def __init__(self, counter: _Counter, done: _Flag, expected: int, ready: _Counter) -> None:
        self._counter, self.done, self.expected, self._ready = counter, done, expected, ready

    def ready(self) -> None:
        """Say this consumer is consuming (end-to-end runs start publishing once all are)."""
        with self._ready.get_lock():
            self._ready.value += 1

    @property
    def ready_count(self) -> int:
        return int(self._ready.value)

    def add(self, count: int = 1) -> bool:
        """Count ``count`` more messages; True once every expected message has been counted."""
        with self._counter.get_lock():
            self._counter.value += count
            reached = self._counter.value >= self.expected
        if reached:
            self.done.set()
        return reached

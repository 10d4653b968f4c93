"""What ``sluice publish`` tells its user: a progress line while it runs, and a summary at the end.

No broker here: :class:`Tally` counts what the command saw, :class:`Progress` redraws one line on
a terminal, and a :class:`Summary` renders as text for people or as JSON for CI.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["FIRST_FAILURES", "REASONS", "Failure", "Progress", "Summary", "Tally", "progress_line"]

#: Why an event was not confirmed, by the reason ``--json`` reports, with its wording for people.
#: The broker's reasons are the outcomes of :class:`sluice_common.errors.PublishError`.
REASONS = {
    "invalid_json": "not valid JSON",
    "invalid_event": "not an event (type, data or id missing or of the wrong kind)",
    "schema_violation": "breaks its type's schema or the size limit",
    "invalid": "cannot be encoded in AMQP",
    "returned": "unroutable: no queue is bound for its routing key",
    "nacked": "nacked by the broker",
    "timeout": "not confirmed in time",
}
#: Failed events the summary names one by one; the others are only counted.
FIRST_FAILURES = 5
#: Shortest pause between two redraws of the progress line, in seconds (at most 10 a second).
REDRAW_INTERVAL_S = 0.1
#: ANSI "erase to the end of the line".
_ERASE = "\x1b[K"


@dataclass(frozen=True)
class Failure:
    """One event that was not confirmed: where it was, why, and the error in full."""

    line: int
    event_id: str | None
    reason: str
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "id": self.event_id, "reason": self.reason, "error": self.error}

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (id {self.event_id})" if self.event_id else "")
        return f"{where}: {self.error}"


@dataclass(frozen=True)
class Summary:
    """The outcome of one run of ``sluice publish``; ``--json`` prints :meth:`as_dict`."""

    published: int
    confirmed: int
    failed: int
    by_reason: dict[str, int]
    first_failures: tuple[Failure, ...]
    seconds: float

    @property
    def rate(self) -> float:
        """Events handled (confirmed or failed) per second."""
        return (self.confirmed + self.failed) / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "published": self.published,
            "confirmed": self.confirmed,
            "failed": self.failed,
            "by_reason": dict(self.by_reason),
            "first_failures": [f.as_dict() for f in self.first_failures],
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
        }

    def as_text(self) -> str:
        total = self.confirmed + self.failed
        lines = [f"sluice publish: {self.confirmed:,} of {total:,} event(s) confirmed, {self.failed:,} failed, "
                 f"in {self.seconds:.1f}s ({self.rate:,.0f} events/s)."]
        for reason, count in sorted(self.by_reason.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"  {count:>9,}  {REASONS.get(reason, reason)} [{reason}]")
        if self.first_failures:
            shown = len(self.first_failures)
            lines.append(f"The first {shown} failure(s):" if shown < self.failed else "Failures:")
            lines.extend(f"  {failure}" for failure in self.first_failures)
        return "\n".join(lines)


@dataclass
class Tally:
    """Counts of one run: events sent, confirmed, and failed by reason, keeping the first few failures."""

    keep: int = FIRST_FAILURES
    clock: Callable[[], float] = time.monotonic
    published: int = 0
    confirmed: int = 0
    by_reason: collections.Counter[str] = field(default_factory=collections.Counter)
    first_failures: list[Failure] = field(default_factory=list)
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def failed(self) -> int:
        return sum(self.by_reason.values())

    @property
    def done(self) -> int:
        """Events with an outcome: confirmed or failed."""
        return self.confirmed + self.failed

    def fail(self, reason: str, error: str, *, line: int, event_id: str | None = None) -> None:
        """Count one failed event; the first ``keep`` are kept whole for the summary."""
        self.by_reason[reason] += 1
        if len(self.first_failures) < self.keep:
            self.first_failures.append(Failure(line, event_id, reason, error))

    def elapsed(self) -> float:
        return self.clock() - self.started

    def summary(self) -> Summary:
        # Invalid lines are found before the broker answers for earlier ones: list them in file order.
        first = tuple(sorted(self.first_failures, key=lambda f: f.line))
        return Summary(self.published, self.confirmed, self.failed, dict(self.by_reason), first, self.elapsed())


def progress_line(done: int, total: int | None, failed: int, seconds: float) -> str:
    """The text of the progress line: ``12,000/50,000 (24%)  9,512/s  3 failed``."""
    rate = done / seconds if seconds > 0 else 0.0
    count = f"{done:,}/{total:,} ({100 * done // total}%)" if total else f"{done:,} events"
    return f"{count}  {rate:,.0f}/s  {failed:,} failed"


class Progress:
    """One line on a terminal, redrawn at most every ``REDRAW_INTERVAL_S``; nothing off a terminal."""

    def __init__(self, stream: TextIO, total: int | None, *, enabled: bool | None = None) -> None:
        self._stream = stream
        self._total = total
        self.enabled = stream.isatty() if enabled is None else enabled
        self._last: float | None = None
        self._drawn = False

    def update(self, tally: Tally, *, force: bool = False) -> None:
        """Redraw the line, unless it was redrawn less than ``REDRAW_INTERVAL_S`` ago."""
        if not self.enabled:
            return
        now = tally.clock()
        if not force and self._last is not None and now - self._last < REDRAW_INTERVAL_S:
            return
        self._last = now
        text = progress_line(tally.done, self._total, tally.failed, now - tally.started)
        self._stream.write(f"\r{text}{_ERASE}")
        self._stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Erase the line, so that whatever is written next starts at the left margin."""
        if self._drawn:
            self._stream.write(f"\r{_ERASE}")
            self._stream.flush()
            self._drawn = False
            self._last = None  # redraw at the next update

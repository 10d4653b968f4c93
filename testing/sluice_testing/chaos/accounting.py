"""Where every confirmed event ended: the chaos suite's accounting, with no I/O of its own.

The promise under test: each event the producer confirmed ends in exactly one of {delivered to the
sink at least once, in the dead-letter queue}. Duplicates are allowed (at-least-once) but counted.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Accounting", "Ledger", "account", "recovery_seconds"]


@dataclass
class Ledger:
    """What the load sent: ids the producer confirmed, ids it did not, ids the sink will refuse.

    Thread-safe: the load records from its own thread while the round reads.
    """

    confirmed: set[str] = field(default_factory=set)
    unconfirmed: set[str] = field(default_factory=set)
    #: Ids the sink answers 422 for: they must end in the dead-letter queue, not the sink.
    doomed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, *, confirmed: Iterable[str] = (), unconfirmed: Iterable[str] = ()) -> None:
        with self._lock:
            self.confirmed.update(confirmed)
            self.unconfirmed.update(unconfirmed)

    def snapshot(self) -> tuple[frozenset[str], frozenset[str]]:
        """(confirmed, unconfirmed) at this moment."""
        with self._lock:
            return frozenset(self.confirmed), frozenset(self.unconfirmed)


@dataclass(frozen=True)
class Accounting:
    """The outcome of one round.

    ``lost``: confirmed ids neither delivered nor dead-lettered (must be empty).
    ``in_both``: ids delivered *and* dead-lettered (breaks "exactly one"; must be empty).
    ``misrouted``: good ids dead-lettered or doomed ids delivered (must be empty).
    ``unknown``: ids seen that the load never sent (must be empty).
    ``duplicates``: copies beyond the first: repeated deliveries, repeated dead letters, and
    copies still queued after every id had settled.
    """

    events: int
    unconfirmed: int
    delivered: int
    dead_lettered: int
    lost: frozenset[str]
    in_both: frozenset[str]
    misrouted: frozenset[str]
    unknown: frozenset[str]
    duplicates: int

    @property
    def sound(self) -> bool:
        """No loss and every id in exactly one place."""
        return not (self.lost or self.in_both or self.misrouted or self.unknown)

    def explain(self) -> str:
        """A one-paragraph account for a failed assertion."""
        def some(ids: frozenset[str]) -> str:
            return f"{len(ids)} {sorted(ids)[:10]}"

        return (f"{self.events} confirmed ({self.unconfirmed} not): {self.delivered} delivered, {self.dead_lettered} dead-lettered; "
                f"lost {some(self.lost)}, in both {some(self.in_both)}, misrouted {some(self.misrouted)}, "
                f"unknown {some(self.unknown)}, duplicates {self.duplicates}")


def account(ledger: Ledger, *, delivered: Counter[str], dead: Sequence[str], queued: Sequence[str] = ()) -> Accounting:
    """Compare what the producer confirmed with what the sink received and the dead-letter queue holds.

    Parameters:
        delivered: successful sink deliveries per id.
        dead: message ids drained from the dead-letter queue (one entry per message).
        queued: message ids left in the work and retry queues once the round settled.
    """
    confirmed, unconfirmed = ledger.snapshot()
    dead_count = Counter(dead)
    reached = set(delivered) | set(dead_count)
    return Accounting(
        events=len(confirmed),
        unconfirmed=len(unconfirmed),
        delivered=len(confirmed & set(delivered)),
        dead_lettered=len(confirmed & set(dead_count)),
        lost=frozenset(confirmed - reached),
        in_both=frozenset(set(delivered) & set(dead_count)),
        misrouted=frozenset((set(dead_count) - ledger.doomed) | (set(delivered) & ledger.doomed)),
        unknown=frozenset(reached - confirmed - unconfirmed),
        duplicates=sum(n - 1 for n in delivered.values()) + sum(n - 1 for n in dead_count.values()) + len(queued),
    )


def recovery_seconds(times: Sequence[float], fault_at: float, *, baseline_s: float = 3.0, window_s: float = 1.0,
                     share: float = 0.5, step_s: float = 0.1) -> float | None:
    """Seconds from ``fault_at`` until throughput is back at ``share`` of its rate before the fault.

    ``times`` are the sorted moments of successful deliveries. The rate before is measured over
    ``baseline_s`` before the fault; afterwards, over windows of ``window_s`` starting every
    ``step_s``. The result is the first delivery of the first window at that rate (0.0 when the
    fault did not dent throughput), or None if throughput never recovered within ``times``, or if there was
    no throughput before the fault to compare with.
    """
    before = bisect.bisect_left(times, fault_at) - bisect.bisect_left(times, fault_at - baseline_s)
    if before == 0:
        return None
    needed = share * before / baseline_s * window_s
    start = fault_at
    while start + window_s <= (times[-1] if times else fault_at):
        in_window = bisect.bisect_left(times, start + window_s) - bisect.bisect_left(times, start)
        if in_window >= needed:
            return round(times[bisect.bisect_left(times, start)] - fault_at, 1)
        start += step_s
    return None

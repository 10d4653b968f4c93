"""A source of synthetic events at a steady rate, for a fixed count or until stopped."""

from __future__ import annotations

import logging
import random
import threading
import time

from sluice_common.amqp import PublishBatch
from sluice_common.envelope import Event
from sluice_producer.publisher import EventPublisher
from sluice_producer.sources.base import Source
from sluice_producer.sources.synthetic import make_event

__all__ = ["Generator"]

#: How often the generator wakes up to publish the events due since the last time.
TICK_S = 0.02
#: Most events published in one tick.
MAX_BATCH = 1000
#: How far behind its schedule the generator may fall (the broker pushed back: a full window or a
#: resource alarm) before it drops the backlog and resumes at its rate instead of bursting to catch up.
MAX_LAG_S = 1.0
#: How often it logs its progress.
PROGRESS_EVERY_S = 10.0


class Generator(Source):
    """Publishes ``rate`` synthetic events per second, mixing ``kinds``, ``count`` in all (0: no end).

    It never waits for a confirm before publishing more; the publisher's window of unconfirmed
    messages is what slows it down when the broker lags or blocks. After such a stall it resumes
    at ``rate`` rather than publishing the events it missed in a burst: backpressure slows it down.
    """

    name = "generator"

    def __init__(self, *, rate: float, count: int, kinds: tuple[str, ...], rng: random.Random | None = None) -> None:
        self._rate = rate
        self._count = count
        self._kinds = kinds
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.published = self.confirmed = self.failed = 0
        self._log = logging.getLogger("sluice.generator")

    def run(self, publisher: EventPublisher, stop: threading.Event) -> None:
        started = last_progress = time.monotonic()
        pending: list[PublishBatch] = []
        while not stop.is_set() and not (self._count and self.published >= self._count):
            now = time.monotonic()
            due = int((now - started) * self._rate) - self.published
            allowed_lag = max(int(self._rate * MAX_LAG_S), 1)
            if due > allowed_lag:
                skipped = due - allowed_lag
                started += skipped / self._rate
                due = int((now - started) * self._rate) - self.published
                self._log.warning("Generator slowed down by backpressure: %d event(s) behind schedule, "
                                  "resuming at %g/s.", skipped, self._rate)
            if self._count:
                due = min(due, self._count - self.published)
            due = min(due, MAX_BATCH)  # after a stall, catch up gradually rather than all at once
            if due > 0:
                batch = [publisher.check(self._event(self.published + i)) for i in range(due)]
                published = publisher.publisher.publish(batch, timeout=3600)
                published.add_done_callback(self._on_done)
                pending.append(published)
                self.published += due
            if now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                self._progress()
            pending = [b for b in pending if not b.done]
            stop.wait(TICK_S)
        for published in pending:  # a fixed count ends when every message has its outcome
            while not published.wait(0.05) and not stop.is_set():
                pass
        self._progress()

    def _event(self, n: int) -> Event:
        return make_event(self._kinds[n % len(self._kinds)], self._rng, n)

    def _on_done(self, published: PublishBatch) -> None:
        errors = published.errors()
        failed = [e for e in errors if e is not None]
        with self._lock:
            self.confirmed += len(errors) - len(failed)
            self.failed += len(failed)
        not_returned = [e for e in failed if e.outcome != "returned"]
        if not_returned:
            self._log.warning("%d generated event(s) not confirmed: %s", len(not_returned), not_returned[0])

    def _progress(self) -> None:
        self._log.info(
            "Generator: %d published, %d confirmed, %d failed.", self.published, self.confirmed, self.failed
        )

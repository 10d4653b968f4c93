"""What a :class:`~sluice_common.amqp.Publisher` keeps per call: the window of unconfirmed messages,
and the :class:`PublishBatch` in which the broker's confirms settle a call's messages.

A batch, not a future per message: a ``concurrent.futures.Future`` builds a condition and a lock
when it is created and takes them again to resolve, which the producer's profile showed as a
quarter of its time. One batch per call shares one lock and one event among its messages, and
its caller wakes once, when the last of them is settled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sluice_common.errors import PublishError

__all__ = ["PublishBatch"]


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


#: The outcome of a message the broker has not answered for yet.
_UNSETTLED = PublishError("unsettled", "no confirm yet")


class PublishBatch:
    """The outcome of the messages of one :meth:`Publisher.publish` call, in their order.

    Each message is settled once: ``None`` when the broker confirmed it, else a
    :class:`PublishError` (``nacked``, ``returned``, ``invalid``, or ``timeout``). Usage::

        batch = publisher.publish(messages, timeout=10)
        if not batch.wait(10):
            batch.withdraw(PublishError("timeout", "no confirm within 10s"))
        for message, error in zip(messages, batch.errors()): ...
    """

    __slots__ = ("_errors", "_unsettled", "_lock", "_finished", "_done", "_callbacks", "withdrawn")

    def __init__(self, size: int) -> None:
        self._errors: list[PublishError | None] = [_UNSETTLED] * size
        self._unsettled = size
        self._lock = threading.Lock()
        self._finished = False  # decided under _lock, so that _finish runs once
        self._done = threading.Event()
        self._callbacks: list[Callable[[PublishBatch], None]] = []
        #: True once the caller gave up: its messages not yet published are never published.
        self.withdrawn = False
        if not size:
            self._finished = True
            self._done.set()

    def __len__(self) -> int:
        return len(self._errors)

    @property
    def done(self) -> bool:
        """Every message is settled (or the batch was withdrawn)."""
        return self._finished

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every message is settled, at most ``timeout`` seconds; True if they are."""
        return self._done.wait(timeout)

    def errors(self) -> list[PublishError | None]:
        """Per message, in order: ``None`` if confirmed, else its error (``unsettled`` before :attr:`done`)."""
        return list(self._errors)

    def withdraw(self, error: PublishError) -> None:
        """Stop waiting: messages not settled yet fail with ``error``; those not yet published never will be.

        A message already published may still reach its queues; the caller reports it as not
        confirmed, and sending it again (with its id) is what makes that safe.
        """
        with self._lock:
            if self._finished:
                return
            self._finished = self.withdrawn = True
            for index, slot in enumerate(self._errors):
                if slot is _UNSETTLED:
                    self._errors[index] = error
            self._unsettled = 0
        self._finish()

    def add_done_callback(self, callback: Callable[[PublishBatch], None]) -> None:
        """Call ``callback(batch)`` once every message is settled (at once if they are already)."""
        with self._lock:
            if not self._finished:
                self._callbacks.append(callback)
                return
        callback(self)

    def _settle(self, index: int, error: PublishError | None) -> None:
        """Settle message ``index``; nothing happens if the batch was withdrawn."""
        with self._lock:
            if self._errors[index] is not _UNSETTLED:
                return
            self._errors[index] = error
            self._unsettled -= 1
            if self._unsettled:
                return
            self._finished = True
        self._finish()

    def _finish(self) -> None:
        """Runs once, after ``_finished`` was set: wake the waiters, then call the callbacks."""
        with self._lock:
            callbacks, self._callbacks = self._callbacks, []
        self._done.set()
        for callback in callbacks:
            callback(self)

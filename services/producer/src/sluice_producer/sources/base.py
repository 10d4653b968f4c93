"""The extension point for event sources.

A source produces events and hands them to an :class:`~sluice_producer.publisher.EventPublisher`.
To add one: subclass :class:`Source`, implement ``run`` (return when ``stop`` is set or the source is
exhausted), and start it from ``sluice_producer.__main__``. Publish in batches where you can: one
call to ``publish`` with many messages shares the wait for confirms.
"""

from __future__ import annotations

import threading

from sluice_producer.publisher import EventPublisher

__all__ = ["Source"]


class Source:
    """Produces events until stopped or exhausted."""

    name = "source"

    def run(self, publisher: EventPublisher, stop: threading.Event) -> None:
        """Publish events through ``publisher`` until ``stop`` is set or there are no more."""
        raise NotImplementedError

"""Processors: steps between validation and the sink that enrich or transform an event.

Extension point: subclass :class:`Processor` and return the (new) event from ``process``. Raise
:class:`ProcessingError` with ``retryable=False`` for an event that can never be processed (it is
dead-lettered as ``rejected``); any other exception is retried. Processors run on worker threads.
"""

from __future__ import annotations

import dataclasses

from sluice_common.envelope import Event, utc_now_iso

__all__ = ["ProcessingError", "Processor", "StampProcessor"]


class ProcessingError(Exception):
    """Raised by a processor that failed; ``retryable`` says whether to try again later."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Processor:
    """One step of the pipeline."""

    def process(self, event: Event) -> Event:
        """Return the event to pass on (the same one, or a changed copy)."""
        raise NotImplementedError


class StampProcessor(Processor):
    """Adds ``processed_by`` (the consumer group) and ``processed_at`` to the event's data."""

    def __init__(self, group: str) -> None:
        self._group = group

    def process(self, event: Event) -> Event:
        data = dict(event.data, processed_by=self._group, processed_at=utc_now_iso())
        return dataclasses.replace(event, data=data)

"""Processors: steps between validation and the sink that enrich or transform an event.

Extension point: subclass :class:`Processor` and return the (new) event from ``process``. Raise
:class:`ProcessingError` with ``retryable=False`` for an event that can never be processed (it is
dead-lettered as ``rejected``); any other exception is retried. Processors run on worker threads,
several at once: keep them free of unguarded shared state.

``SLUICE_CONSUMER_PROCESSORS`` lists the processors to run, in order: a built-in name (``stamp``) or
``package.module:Name``, where ``Name`` is a :class:`Processor` subclass or a factory returning one,
called with no arguments (read your own settings from the environment there). The module must be
importable in the consumer's image.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence

from sluice_common.envelope import Event, utc_now_iso
from sluice_common.errors import ConfigError

__all__ = ["BUILT_IN", "ProcessingError", "Processor", "StampProcessor", "build_processors"]


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


#: Processors known by name; each factory receives the consumer group.
BUILT_IN: dict[str, Callable[[str], Processor]] = {"stamp": StampProcessor}


def build_processors(names: Sequence[str], group: str) -> list[Processor]:
    """Instantiate the processors ``SLUICE_CONSUMER_PROCESSORS`` names, in order.

    Raises:
        ConfigError: a name is unknown, its module cannot be imported, or it does not make a Processor.
    """
    return [_build(name, group) for name in names]


def _build(name: str, group: str) -> Processor:
    def fail(problem: str) -> ConfigError:
        return ConfigError("SLUICE_CONSUMER_PROCESSORS", name, problem)

    if ":" not in name:
        if name not in BUILT_IN:
            raise fail("unknown built-in processor (known: " + ", ".join(sorted(BUILT_IN)) + ")")
        return BUILT_IN[name](group)
    module_name, _, attribute = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except ImportError as e:
        raise fail(f"cannot import {module_name}: {e}") from None
    except AttributeError:
        raise fail(f"{module_name} has no {attribute}") from None
    try:
        processor = factory()
    except Exception as e:  # noqa: BLE001 - whatever a user's factory raises stops start-up with its name
        raise fail(f"{attribute}() failed: {type(e).__name__}: {e}") from None
    if not isinstance(processor, Processor):
        raise fail(f"{attribute}() returned a {type(processor).__name__}, not a Processor")
    return processor

"""Sources of events for the producer. See :class:`~sluice_producer.sources.base.Source` to add one."""

from __future__ import annotations

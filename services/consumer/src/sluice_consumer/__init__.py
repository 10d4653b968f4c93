"""The sluice consumer: validates, processes and delivers events from one consumer group's work queue."""

from __future__ import annotations

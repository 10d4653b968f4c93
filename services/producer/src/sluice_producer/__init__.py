"""The sluice producer: publishes events with confirms from pluggable sources."""

from __future__ import annotations

"""Code shared by the sluice producer and consumer."""

from __future__ import annotations

__version__ = "0.1.0"

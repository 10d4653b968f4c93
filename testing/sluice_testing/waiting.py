"""Poll against a deadline instead of sleeping blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(check: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Call ``check`` until it returns something truthy, and return that.

    Raises:
        TimeoutError: ``check`` stayed falsy for ``timeout`` seconds; the message names ``what``
            and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g}s (last value: {value!r:.300})")
        time.sleep(interval)

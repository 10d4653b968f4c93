"""A token bucket that limits the ingest API's request rate, answering 429 with ``Retry-After``."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from sluice_common.httpserver import Response, json_response

__all__ = ["RateLimit"]


class RateLimit:
    """A guard admitting ``rate`` requests per second on average and ``burst`` at once.

    Parameters:
        rate: tokens added per second.
        burst: bucket size; 0 means one second's worth (at least 1).
        clock: monotonic seconds, replaceable in tests.

    Usage::

        limit = RateLimit(rate=100, burst=200)
        limit({})   # None while tokens remain, else a 429 Response
    """

    def __init__(self, rate: float, burst: int = 0, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = float(burst or max(1, math.ceil(rate)))
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock()
        self._lock = threading.Lock()

    def wait_time(self) -> float:
        """Take a token: 0.0 if one was free, else the seconds until one will be (none is taken)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def __call__(self, _headers: dict[str, str]) -> Response | None:
        wait = self.wait_time()
        if wait == 0.0:
            return None
        return json_response(
            429,
            {"error": f"more than {self.rate:g} requests per second; retry later"},
            **{"Retry-After": str(max(1, math.ceil(wait)))},
        )

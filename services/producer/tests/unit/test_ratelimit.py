"""The ingest rate limit: a token bucket answering 429 with Retry-After."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice_producer.ratelimit import RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_429_with_retry_after_then_tokens_refill():
    # Given 2 requests/s with a burst of 3
    clock = Clock()
    limit = RateLimit(2, 3, clock=clock)
    # When 4 requests arrive at once, Then the fourth is refused with a Retry-After
    assert [limit({}) for _ in range(3)] == [None, None, None]
    refused = limit({})
    assert refused is not None and refused.status == 429 and refused.headers["Retry-After"] == "1"
    # When half a second passes, Then one more request passes
    clock.now = 0.5
    assert limit({}) is None and limit({}) is not None


def test_burst_defaults_to_one_seconds_worth():
    assert RateLimit(10).burst == 10 and RateLimit(0.2).burst == 1


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=0.1, max_value=1000),
    burst=st.integers(min_value=0, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=2), max_size=200),
)
def test_admitted_requests_never_exceed_burst_plus_rate_times_elapsed(rate, burst, gaps):
    clock = Clock()
    limit = RateLimit(rate, burst, clock=clock)
    admitted = 0
    for gap in gaps:
        clock.now += gap
        admitted += limit.wait_time() == 0.0
    assert admitted <= limit.burst + rate * clock.now + 1e-6

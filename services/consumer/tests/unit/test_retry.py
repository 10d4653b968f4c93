from __future__ import annotations

import pytest

from sluice_consumer.retry import DeadLetter, Retry, RetryPolicy, parse_attempts


def test_transient_failures_retry_until_the_attempts_run_out():
    policy = RetryPolicy(max_attempts=3)
    assert policy.decide(attempts_before=0, retryable=True) == Retry(attempts=1)
    assert policy.decide(attempts_before=1, retryable=True) == Retry(attempts=2)
    # When the third attempt fails, Then the message is dead-lettered as max_attempts
    assert policy.decide(attempts_before=2, retryable=True) == DeadLetter(reason="max_attempts", attempts=3)


def test_permanent_failures_are_dead_lettered_at_once():
    assert RetryPolicy(max_attempts=5).decide(attempts_before=0, retryable=False) == DeadLetter("rejected", 1)


@pytest.mark.parametrize(("value", "attempts"), [(None, 0), (0, 0), (3, 3), (b"4", 4), ("5", 5)])
def test_attempts_header_parses(value, attempts):
    assert parse_attempts(value) == attempts


@pytest.mark.parametrize("value", [-1, 10**12, "three", b"\xff", True, 1.5, [1]])
def test_forged_attempts_headers_are_refused(value):
    with pytest.raises(ValueError, match="x-sluice-attempts"):
        parse_attempts(value)

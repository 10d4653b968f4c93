"""The retry policy: what happens to a message whose processing failed.

Pure decisions, no broker: the worker carries them out. Transient failures go to the next retry
tier until the attempts run out; permanent ones go to the dead-letter queue at once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeadLetter", "Retry", "RetryPolicy", "parse_attempts"]


@dataclass(frozen=True)
class Retry:
    """Publish to the retry tier for ``attempts`` failed attempts so far; it comes back after the tier's delay."""

    attempts: int


@dataclass(frozen=True)
class DeadLetter:
    """Publish to the dead-letter queue with ``reason`` (``x-sluice-reason``)."""

    reason: str
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    """Decides between retrying and dead-lettering.

    Parameters:
        max_attempts: processing attempts a message gets in all, the first included.
    """

    max_attempts: int

    def decide(self, *, attempts_before: int, retryable: bool) -> Retry | DeadLetter:
        """The fate of a message that just failed its attempt number ``attempts_before + 1``.

        Examples::

            RetryPolicy(max_attempts=3).decide(attempts_before=0, retryable=True)   # Retry(attempts=1)
            RetryPolicy(max_attempts=3).decide(attempts_before=2, retryable=True)   # DeadLetter("max_attempts", 3)
            RetryPolicy(max_attempts=3).decide(attempts_before=0, retryable=False)  # DeadLetter("rejected", 1)
        """
        attempts = attempts_before + 1
        if not retryable:
            return DeadLetter(reason="rejected", attempts=attempts)
        if attempts >= self.max_attempts:
            return DeadLetter(reason="max_attempts", attempts=attempts)
        return Retry(attempts=attempts)


def parse_attempts(value: object) -> int:
    """The attempts already made, from an ``x-sluice-attempts`` header value.

    Raises:
        ValueError: the header is present but not a whole number from 0 to 1,000,000 (forged or
            corrupted; such a message is dead-lettered as invalid rather than trusted).
    """
    if value is None:
        return 0
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"x-sluice-attempts must be a whole number, not {type(value).__name__}")
    try:
        attempts = int(value)
    except ValueError:
        raise ValueError(f"x-sluice-attempts must be a whole number, not {value!r:.40}") from None
    if not 0 <= attempts <= 1_000_000:
        raise ValueError(f"x-sluice-attempts must be between 0 and 1000000, not {attempts}")
    return attempts

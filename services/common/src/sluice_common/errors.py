"""The errors sluice raises. Callers never see a pika exception: ``sluice_common.amqp`` maps them here.

- ``SluiceError``: base of every error below.
  - ``ConfigError``: a ``SLUICE_*`` variable has a bad value; the service must not start.
  - ``BrokerError``: the broker refused something or could not be reached.
    - ``TopologyConflict``: a queue or exchange exists with other arguments.
  - ``PublishError``: a message was not confirmed (nacked, returned, timed out, blocked).
- ``PoisonMessage``: not an error of ours but a domain outcome: the message can never be
  processed and goes to the dead-letter queue with ``reason``.
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "ConfigError",
    "PoisonMessage",
    "PublishError",
    "SluiceError",
    "TopologyConflict",
]


class SluiceError(Exception):
    """Base of every sluice error."""


class ConfigError(SluiceError):
    """Raised when a setting has a bad value; the message names the variable."""

    def __init__(self, variable: str, value: str, problem: str) -> None:
        super().__init__(f"{variable}={value!r}: {problem}")
        self.variable = variable


class BrokerError(SluiceError):
    """Raised when the broker refuses an operation or cannot be reached."""


class TopologyConflict(BrokerError):
    """Raised when a queue or exchange already exists with different arguments."""


class PublishError(SluiceError):
    """Raised when a message was not confirmed by the broker.

    ``outcome`` is ``nacked``, ``returned``, ``timeout``, ``unavailable`` or ``invalid`` (the message
    cannot be encoded in AMQP).
    """

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome


class PoisonMessage(Exception):  # noqa: N818 - a domain outcome, not an error of ours
    """Raised when a message can never be processed: it is dead-lettered at once with ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

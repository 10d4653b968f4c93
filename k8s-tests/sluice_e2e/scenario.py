"""What every scenario shares: deadlines, and skipping what a deployment cannot do."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import pytest

from sluice_e2e.deployment import Deployment, NotApplicable, sensor_events
from sluice_testing.waiting import wait_for

__all__ = ["DELIVERY_DEADLINE", "SCALE_DEADLINE", "EventFlow", "applicable"]

T = TypeVar("T")

#: Seconds the events of one scenario get to be delivered: generous, the machine may be shared.
DELIVERY_DEADLINE = 120.0
#: Seconds an autoscaler gets to scale out, and again to scale back in: the suite's values files
#: shorten the scale-down stabilisation window to 30 s (the default, 300 s, would not fit).
SCALE_DEADLINE = 240.0


def applicable(operation: Callable[[], T]) -> T:
    """Run ``operation``; skip the scenario with the deployment's reason if it does not apply there."""
    try:
        return operation()
    except NotApplicable as e:
        pytest.skip(str(e))


class EventFlow:
    """Publishes batches of events from a thread while a scenario disrupts the deployment.

    ``with EventFlow(deployment) as flow: ...``; leaving the block stops publishing and re-raises
    what the thread failed with. ``confirmed`` holds every id the producer answered 202 for.
    """

    def __init__(self, deployment: Deployment, *, batch: int = 20) -> None:
        self.deployment = deployment
        self.batch = batch
        self.confirmed: list[str] = []
        #: When each batch was confirmed (``time.monotonic()``), in order.
        self.confirmed_at: list[float] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish, name="e2e-event-flow")

    def __enter__(self) -> EventFlow:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(180)
        if self.errors and error is None:
            raise AssertionError(f"publishing failed: {self.errors[0]!r}") from self.errors[0]

    def wait_confirmed(self, more: int) -> None:
        """Wait until ``more`` events beyond those confirmed now are confirmed (or publishing failed)."""
        target = len(self.confirmed) + more
        wait_for(lambda: len(self.confirmed) >= target or self.errors, timeout=DELIVERY_DEADLINE,
                 what=f"{more} more events confirmed")

    def _publish(self) -> None:
        try:
            while not self._stop.is_set():
                self.confirmed.extend(self.deployment.publish(sensor_events(self.batch)))
                self.confirmed_at.append(time.monotonic())
        except BaseException as e:  # noqa: BLE001 - handed to the scenario's thread
            self.errors.append(e)

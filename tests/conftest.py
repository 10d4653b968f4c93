"""Fixtures of the chaos and backpressure suites: a RabbitMQ 4.x container of their own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from sluice_testing.broker import Broker, start_broker


@pytest.fixture(scope="session")
def own_broker() -> Iterator[Broker]:
    """A broker these suites may restart, kill and put under an alarm; removed at the end.

    Never the shared ``sluice-test`` container: faults here would break other tests. Skips where
    no broker can start; fails in CI.
    """
    try:
        broker = start_broker(f"sluice-chaos-{uuid.uuid4().hex[:8]}")
    except Exception as e:  # noqa: BLE001 - any reason to have no broker
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no RabbitMQ 4.x container for the chaos suite ({e}); run `make system-deps` first")
    try:
        yield broker
    finally:
        broker.stop()

"""Fixtures of the chaos and backpressure suites: a RabbitMQ 4.x container of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sluice_testing.broker import Broker, owned_broker


@pytest.fixture(scope="session")
def own_broker() -> Iterator[Broker]:
    """A broker these suites may restart, kill and put under an alarm; removed at the end.

    Never the shared ``sluice-test-<version>`` container nor an external one: faults here would break other tests.
    """
    with owned_broker("chaos") as broker:
        yield broker

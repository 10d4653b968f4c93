"""Fixtures shared by every test directory: a real RabbitMQ 4.x and a webhook sink."""

from __future__ import annotations

import os
import uuid

import pytest

from sluice_testing.broker import Broker, start_broker
from sluice_testing.flaky_sink import FlakySink


@pytest.fixture(scope="session")
def rabbitmq() -> Broker:
    """The RabbitMQ 4.x test container. Skips where it cannot start; fails in CI."""
    try:
        return start_broker("sluice-test")
    except Exception as e:  # noqa: BLE001 - any reason to have no broker
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no RabbitMQ 4.x for integration tests ({e}); run `make system-deps` first")


@pytest.fixture
def prefix(rabbitmq: Broker):
    """A unique topology prefix, so tests never see each other's queues; deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    rabbitmq.delete_prefix(name)


@pytest.fixture
def sink():
    server = FlakySink(seed=7).start()
    yield server
    server.stop()

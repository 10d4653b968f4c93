"""Fixtures shared by every test directory: a real RabbitMQ 4.x, a webhook sink, the services."""

from __future__ import annotations

import uuid

import pytest

from sluice_testing.broker import TESTED_VERSION, Broker, owned_broker, start_broker
from sluice_testing.flaky_sink import FlakySink
from sluice_testing.processes import ServiceProcess
from sluice_testing.skips import skip_or_fail


@pytest.fixture(scope="session")
def rabbitmq() -> Broker:
    """The RabbitMQ 4.x test container. Skips where it cannot start; fails in CI."""
    try:
        return start_broker(f"sluice-test-{TESTED_VERSION}")
    except Exception as e:  # noqa: BLE001 - any reason to have no broker
        skip_or_fail(f"no RabbitMQ 4.x for integration tests ({e}); run `make system-deps` first")


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


@pytest.fixture
def services(rabbitmq, prefix, sink):
    """Start ``sluice_producer`` / ``sluice_consumer`` processes on this test's prefix; killed afterwards.

    ``services(module, broker=None, ready=True, **env)``: short retry delays, the ``http`` sink aimed at
    :func:`sink`, and ``env`` on top. ``broker`` replaces the shared test broker.
    """
    started: list[ServiceProcess] = []

    def start(module: str, *, broker: Broker | None = None, ready: bool = True, **env: str) -> ServiceProcess:
        base = {"SLUICE_AMQP_URL": (broker or rabbitmq).amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
                "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events", "SLUICE_RETRY_DELAYS": "200ms,400ms",
                "SLUICE_RETRY_MAX_ATTEMPTS": "3", "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": sink.url,
                "SLUICE_CONSUMER_QUEUE_POLL_SECONDS": "0.5", "SLUICE_LOG_FORMAT": "json"}
        process = ServiceProcess(module, {**base, **env}).start()
        started.append(process)
        return process.wait_ready() if ready else process

    yield start
    for process in started:
        process.close()


@pytest.fixture
def private_broker():
    """A RabbitMQ 4.x container of this test's own, for tests that restart or kill it; removed afterwards."""
    with owned_broker("private") as broker:
        yield broker

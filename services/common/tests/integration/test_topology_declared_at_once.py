"""Many replicas starting at once declare the same topology without conflict."""

from __future__ import annotations

import pytest
import requests

from sluice_testing.events import READING
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration


def test_several_processes_declaring_the_topology_at_once_all_start(services, rabbitmq, prefix, sink):
    # Given four consumers of one group and two producers, all started in the same instant
    consumers = [services("sluice_consumer", ready=False) for _ in range(4)]
    producers = [services("sluice_producer", ready=False) for _ in range(2)]
    # When they all declare the exchange and the group's queues concurrently
    for process in consumers + producers:
        process.wait_ready(timeout=60)
    # Then every one is ready, the queues exist once with their arguments, and all four consume
    assert rabbitmq.queue_names(prefix) == sorted(
        [f"{prefix}.default", f"{prefix}.default.dead", f"{prefix}.default.retry.200ms", f"{prefix}.default.retry.400ms"]
    )
    work = rabbitmq.queue(f"{prefix}.default")
    assert work is not None and work["arguments"]["x-queue-type"] == "quorum"
    wait_for(lambda: rabbitmq.consumers(f"{prefix}.default") == 4, timeout=20,
             what="four consumers on the work queue")
    # And events flow through any of them
    events = [{"type": "sensor.reading", "data": READING, "id": f"c-{i}"} for i in range(20)]
    for producer in producers:
        assert requests.post(producer.url + "/events", json=events, timeout=30).status_code == 202
    wait_for(lambda: sink.delivered == {f"c-{i}" for i in range(20)}, timeout=30, what="all delivered")
    assert all(process.process.poll() is None for process in consumers + producers)

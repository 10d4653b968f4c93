"""A sink outage: events retry through the tiers, and after recovery all are delivered."""

from __future__ import annotations

from sluice_e2e.deployment import Deployment, sensor_events
from sluice_e2e.scenario import DELIVERY_DEADLINE
from sluice_testing.waiting import wait_for


def test_a_sink_outage_retries_and_after_recovery_loses_nothing(deployment: Deployment) -> None:
    # Given a sink answering 503 to everything
    deployment.set_sink(status=503)
    # When 100 events are published
    ids = deployment.publish(sensor_events(100))
    # Then they are retried, not delivered and not dead-lettered
    wait_for(lambda: deployment.consumer_metric("sluice_messages_processed_total", outcome="retried") >= 100,
             timeout=DELIVERY_DEADLINE, what="every event retried at least once")
    assert not set(ids) & set(deployment.sink.deliveries())
    assert deployment.sink.failed() >= 100
    # When the sink recovers
    deployment.set_sink(status=None)
    # Then every event is delivered and nothing ended in the dead-letter queue
    wait_for(lambda: set(ids) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what="all 100 delivered after the recovery")
    assert deployment.dead_letters() == []
    assert deployment.consumer_metric("sluice_messages_processed_total", outcome="dead_lettered") == 0

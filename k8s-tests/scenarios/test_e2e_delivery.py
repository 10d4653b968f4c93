"""Nothing fails: every event published is delivered exactly once."""

from __future__ import annotations

from sluice_e2e.deployment import Deployment, sensor_events
from sluice_e2e.scenario import DELIVERY_DEADLINE
from sluice_testing.waiting import wait_for


def test_every_event_published_is_delivered_exactly_once(deployment: Deployment) -> None:
    # Given a healthy deployment, When 300 events are published through the ingest
    ids = deployment.publish(sensor_events(300))
    assert len(set(ids)) == 300
    # Then each one reaches the sink, once, and no queue holds anything back
    wait_for(lambda: set(ids) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what="all 300 events delivered")
    wait_for(lambda: deployment.consumer_metric("sluice_messages_inflight") == 0, timeout=30, what="nothing in flight")
    delivered = deployment.sink.deliveries()
    assert {i: delivered[i] for i in ids if delivered[i] != 1} == {}
    assert deployment.queue_depth() == 0
    assert deployment.dead_letters() == []

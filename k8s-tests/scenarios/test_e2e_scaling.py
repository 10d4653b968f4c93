"""Scaling the consumer group by hand: events keep flowing and nothing is lost on scale-in."""

from __future__ import annotations

from sluice_e2e.deployment import Deployment, sensor_events
from sluice_e2e.scenario import DELIVERY_DEADLINE
from sluice_testing.waiting import wait_for


def test_scaling_out_and_in_by_hand_loses_nothing(deployment: Deployment) -> None:
    # Given three consumers working through a slow sink
    deployment.scale_consumers(3)
    assert deployment.consumer_replicas() == 3
    deployment.set_sink(delay_s=0.02)
    ids = deployment.publish(sensor_events(200))
    wait_for(lambda: len(deployment.sink.deliveries()) >= 20, timeout=DELIVERY_DEADLINE, what="some deliveries")
    # When the group is scaled in to one (SIGTERM: in-flight work drains)
    deployment.scale_consumers(1)
    deployment.set_sink(delay_s=0.0)
    # Then every event is delivered
    wait_for(lambda: set(ids) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what="all 200 delivered")
    assert deployment.consumer_replicas() == 1

"""A consumer killed mid-stream (SIGKILL, no drain) loses nothing."""

from __future__ import annotations

from sluice_e2e.deployment import Deployment, sensor_events
from sluice_e2e.scenario import DELIVERY_DEADLINE
from sluice_testing.waiting import wait_for


def test_a_consumer_killed_mid_stream_loses_nothing(deployment: Deployment) -> None:
    # Given a slow sink, so consumers hold unacknowledged messages
    # 2 s a delivery: two consumers of 16 workers deliver about 16 a second, so the 300 take about 20 s
    # and the kill lands mid-stream however long the checks below take (at 0.2 s the stream could end first)
    deployment.set_sink(delay_s=2.0)
    ids = deployment.publish(sensor_events(300))
    wait_for(lambda: len(deployment.sink.deliveries()) >= 20, timeout=DELIVERY_DEADLINE, what="some deliveries")
    wait_for(lambda: deployment.consumer_metric("sluice_messages_inflight") > 0, timeout=30,
             what="messages in flight")
    # When the busiest consumer is killed without a chance to drain
    assert deployment.kill_consumer() > 0, "the killed consumer held no message"
    deployment.set_sink(delay_s=0.0)
    # Then the broker redelivers what it held and every event is delivered (duplicates allowed: at least once)
    wait_for(lambda: set(ids) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what="all 300 delivered after the kill")
    assert deployment.dead_letters() == []

"""A backlog scales the consumers out; they scale back in once it drains.

Kind only: locally no autoscaler runs (the scenario skips, saying so).
"""

from __future__ import annotations

import pytest

from sluice_e2e.deployment import Deployment, sensor_events
from sluice_e2e.scenario import DELIVERY_DEADLINE, SCALE_DEADLINE, applicable
from sluice_testing.waiting import wait_for


# pytest's limit: the sum of the scenario's own waits, each of which may take its whole deadline.
@pytest.mark.timeout(3 * SCALE_DEADLINE + DELIVERY_DEADLINE)
@pytest.mark.operations("autoscaling_bounds")
def test_a_backlog_scales_consumers_out_and_back_in(deployment: Deployment) -> None:
    low, high = applicable(deployment.autoscaling_bounds)
    assert high > low
    # Given a slow sink and a backlog far above the per-pod target
    deployment.set_sink(delay_s=0.2)
    ids = deployment.publish(sensor_events(3000))
    # Then the autoscaler adds consumers
    wait_for(lambda: deployment.consumer_replicas() > max(low, 1), timeout=SCALE_DEADLINE,
             what="consumers scaled out")
    # When the sink is fast again and the backlog drains
    deployment.set_sink(delay_s=0.0)
    wait_for(lambda: set(ids) <= set(deployment.sink.deliveries()), timeout=SCALE_DEADLINE, what="backlog drained")
    assert deployment.queue_depth() == 0
    # Then the consumers scale back in to the minimum (KEDA/HPA scale-down stabilisation applies)
    wait_for(lambda: deployment.consumer_replicas() <= max(low, 1), timeout=SCALE_DEADLINE + DELIVERY_DEADLINE,
             what="consumers scaled back in")

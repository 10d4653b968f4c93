"""CPU load scales the consumers out through the chart's HorizontalPodAutoscaler; they scale back in once it stops.

Kind with metrics-server only (`make metrics-server`); locally no autoscaler runs (it skips, saying
so). Where KEDA runs, the scenario installs the release without its ScaledObject meanwhile.
"""

from __future__ import annotations

import pytest

from sluice_e2e.deployment import Deployment
from sluice_e2e.scenario import DELIVERY_DEADLINE, SCALE_DEADLINE, EventFlow, applicable
from sluice_testing.waiting import wait_for


# pytest's limit: the sum of the scenario's own waits, each of which may take its whole deadline.
@pytest.mark.timeout(2 * SCALE_DEADLINE + DELIVERY_DEADLINE)
@pytest.mark.operations("cpu_autoscaling")
def test_cpu_load_scales_consumers_out_and_back_in(deployment: Deployment) -> None:
    low, high = applicable(deployment.cpu_autoscaling)
    assert high > low
    # Given events flowing in as fast as the producer confirms them: the consumers validate and deliver
    with EventFlow(deployment, batch=100) as flow:
        # Then the HPA adds consumers
        wait_for(lambda: deployment.consumer_replicas() > low or bool(flow.errors), timeout=SCALE_DEADLINE,
                 interval=2, what="consumers scaled out on CPU")
    # And once the flow stops every confirmed event is delivered
    wait_for(lambda: set(flow.confirmed) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what=f"all {len(flow.confirmed)} confirmed events delivered")
    assert deployment.dead_letters() == []
    # And the idle consumers scale back in to the minimum
    wait_for(lambda: deployment.consumer_replicas() == low, timeout=SCALE_DEADLINE, interval=2,
             what=f"consumers scaled back in to {low}")

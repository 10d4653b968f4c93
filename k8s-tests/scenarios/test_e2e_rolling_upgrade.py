"""An upgrade while events flow (kind: ``helm upgrade`` to a new image) loses nothing."""

from __future__ import annotations

from sluice_e2e.deployment import Deployment
from sluice_e2e.scenario import DELIVERY_DEADLINE, EventFlow
from sluice_testing.waiting import wait_for


def test_an_upgrade_while_events_flow_loses_nothing(deployment: Deployment) -> None:
    # Given events flowing in
    with EventFlow(deployment, batch=10) as flow:
        flow.wait_confirmed(50)
        # When every service is rolled over to the new version
        deployment.upgrade()
        # Then the new version takes events
        flow.wait_confirmed(50)
    # And every confirmed event is delivered
    wait_for(lambda: set(flow.confirmed) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what=f"all {len(flow.confirmed)} confirmed events delivered")
    assert deployment.dead_letters() == []

"""The broker restarted on its volume loses no event it confirmed, while events keep coming."""

from __future__ import annotations

import pytest

from sluice_e2e.deployment import Deployment
from sluice_e2e.scenario import DELIVERY_DEADLINE, EventFlow
from sluice_testing.soak import record_recovery, resumed_after
from sluice_testing.waiting import wait_for


@pytest.mark.parametrize("hard", [False, True], ids=["stopped", "killed"])
def test_a_broker_restart_loses_no_confirmed_event(deployment: Deployment, hard: bool) -> None:
    # Given events flowing in
    with EventFlow(deployment, batch=20) as flow:
        flow.wait_confirmed(100)
        # When the broker is restarted: stopped cleanly, or killed (confirmed means on disk: quorum queues)
        fault_at = deployment.restart_broker(hard=hard)
        # Then publishing resumes once it is back
        flow.wait_confirmed(100)
        record_recovery(resumed_after(fault_at, flow.confirmed_at))
    # And every event the producer confirmed, before, during or after the restart, is delivered
    wait_for(lambda: set(flow.confirmed) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what=f"all {len(flow.confirmed)} confirmed events delivered")
    assert deployment.dead_letters() == []

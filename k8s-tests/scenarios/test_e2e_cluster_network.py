"""The cluster's network: a Service address nobody serves answers nothing.

Kind only (the local deployment runs no pods: it skips, saying so). A packet to a ClusterIP that
kube-proxy has not programmed yet leaves the node; where the host's own network answers every
address (an egress proxy answering 404 and keeping the connection alive), a client that keeps its
connection, as KEDA's operator does, polled such an answer for 10 minutes and never reached the
broker. ``make kind-up`` has the host reject those packets (``KIND_SERVICE_SUBNET`` in the Makefile).
"""

from __future__ import annotations

import pytest

from sluice_e2e.deployment import Deployment
from sluice_e2e.scenario import applicable


@pytest.mark.operations("reach_unserved_service_address")
def test_a_service_address_nobody_serves_answers_nothing(deployment: Deployment) -> None:
    address, outcome = applicable(lambda: deployment.reach_unserved_service_address(15672))
    # Refused where the host rejects it, a timeout on an isolated network; never an answer from elsewhere
    assert outcome in ("refused", "timeout"), f"{address}:15672 {outcome}"

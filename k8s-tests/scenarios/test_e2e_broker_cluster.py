"""A RabbitMQ cluster of 3 nodes: the nodes form one cluster through peer discovery, and deleting the
pod that leads the work queue loses no confirmed event; the queue elects a new leader meanwhile.

Kind only (the chart's StatefulSet with ``rabbitmq.replicas: 3``, a release of its own); locally it
skips, saying so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sluice_e2e.deployment import GROUP
from sluice_e2e.scenario import DELIVERY_DEADLINE, EventFlow
from sluice_testing.waiting import wait_for

if TYPE_CHECKING:
    from sluice_e2e.kind import KindDeployment

NODES = 3


def _pod(node: str) -> str:
    """The pod of node ``rabbit@<pod>.<headless service>.<namespace>.svc.<domain>``."""
    return node.split("@", 1)[1].split(".", 1)[0]


@pytest.mark.parametrize("hard", [False, True], ids=["deleted", "killed"])
def test_a_broker_node_lost_keeps_the_queues_led_and_loses_no_confirmed_event(broker_cluster: KindDeployment,
                                                                               hard: bool) -> None:
    work = f"sluice.{GROUP}"
    # Given three nodes joined into one cluster, named by their stable DNS names
    nodes = broker_cluster.broker_nodes()
    headless = f"{broker_cluster.broker_service}-headless.{broker_cluster.ns}.svc."
    assert len(nodes) == NODES and all(headless in node for node in nodes), nodes
    assert sorted(_pod(n) for n in nodes) == [f"{broker_cluster.broker_service}-{i}" for i in range(NODES)]
    # And the work queue replicated on each of them
    leader, members = broker_cluster.queue_replicas(work)
    assert members == nodes and leader in nodes
    with EventFlow(broker_cluster, batch=20) as flow:
        flow.wait_confirmed(100)
        # When the pod that leads the work queue is deleted (or killed) while events flow
        victim = _pod(leader)
        old, _fault_at = broker_cluster.delete_broker_pod(victim, hard=hard)
        # Then another node leads it, before the pod is back
        wait_for(lambda: broker_cluster.queue_replicas(work)[0] not in (leader, ""), timeout=60, interval=1,
                 what=f"a new leader of {work} other than {leader}")
        # And publishing goes on
        flow.wait_confirmed(100)
        broker_cluster.wait_broker_pod_replaced(victim, old)
        flow.wait_confirmed(50)
    # And every event the producer confirmed is delivered
    wait_for(lambda: set(flow.confirmed) <= set(broker_cluster.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what=f"all {len(flow.confirmed)} confirmed events delivered")
    assert broker_cluster.dead_letters() == []
    # And the node rejoined: three again, and a member of the queue again
    wait_for(lambda: len(broker_cluster.broker_nodes()) == NODES, timeout=60, interval=1, what="three nodes running")
    assert broker_cluster.queue_replicas(work)[1] == nodes

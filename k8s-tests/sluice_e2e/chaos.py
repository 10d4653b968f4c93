"""The chaos rounds on the kind cluster: the chart's pods as a :class:`~sluice_testing.chaos.base.ChaosRig`.

The round (``sluice_testing.chaos.round``) is the one ``tests/chaos`` runs on local processes. Here
its load posts to the producer through the ingest port-forward, its sink is the suite's e2e-sink pod
(``flaky_sink.py``, driven through its control API), and the faults strike pods:

- consumer SIGKILL: a consumer pod deleted with grace period 0; the Deployment replaces it.
- consumer SIGTERM: a consumer pod deleted with its grace period; it drains and must exit with 0.
- broker restart: the RabbitMQ pod deleted with its grace period; the StatefulSet brings it back on its PVC.
- broker SIGKILL: the same, once its queues are durable, killed one second after SIGTERM
  (:meth:`KindDeployment.delete_broker_pod` says why not zero).
- sink flapping: the sink pod's answers switched through ``POST /control``.
- connection cut: every consumer pod's AMQP connections reset and new ones refused, from its node
  (:mod:`sluice_e2e.pod_network`).

A fault's duplicate budget comes from the settings the pods run with (prefetch, concurrency,
outstanding confirms), read from the Deployments. The rig holds the consumers at
:data:`~sluice_testing.chaos.base.CONSUMERS` for the round (KEDA paused, or the Deployment scaled)
and gives them back their number when it closes; the next scenario's reset resumes KEDA.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from typing import TYPE_CHECKING

from sluice_e2e.deployment import GROUP
from sluice_e2e.kind import POD_DEADLINE
from sluice_e2e.pod_network import PodNetworkCut
from sluice_e2e.scenario import DELIVERY_DEADLINE
from sluice_testing.chaos.base import CONSUMERS, ChaosRig, Limits, drain_group, group_backlog
from sluice_testing.chaos.round import deadline_s
from sluice_testing.waiting import wait_for

if TYPE_CHECKING:
    from sluice_e2e.kind import KindDeployment

__all__ = ["ROUND_DEADLINE_S", "KindRig"]

#: The group's work queue: the chart's topology prefix is ``sluice``.
WORK_QUEUE = f"sluice.{GROUP}"
#: The AMQP port of the broker's Service, which the consumers connect to.
AMQP_PORT = 5672
#: The slowest fault: a consumer pod deleted, gone, replaced, and its Deployment settled (each up to
#: POD_DEADLINE); a broker kill waits at most 60 s for durable queues, then POD_DEADLINE.
FAULT_DEADLINE_S = 3 * POD_DEADLINE
#: The rig's own waits: consumers held (start), the queues quiet, consumers gone (finish), consumers back (close).
RIG_DEADLINE_S = POD_DEADLINE + DELIVERY_DEADLINE + 2 * POD_DEADLINE + POD_DEADLINE
#: The longest a round on kind can take when every wait runs to its deadline.
ROUND_DEADLINE_S = deadline_s(fault_s=FAULT_DEADLINE_S, rig_s=RIG_DEADLINE_S)


class KindRig(ChaosRig):
    """The chart installed by ``deployment``, as the services of chaos rounds; see the module docstring."""

    def __init__(self, deployment: KindDeployment) -> None:
        self.deployment = deployment
        self.prefix = f"chaos{uuid.uuid4().hex[:8]}"
        consumer = deployment.container_env(deployment.consumer_deployment)
        producer = deployment.container_env(deployment.producer_deployment)
        scale = deployment.apps.read_namespaced_deployment_scale(deployment.producer_deployment, deployment.ns)
        self.limits = Limits(prefetch=int(consumer["SLUICE_CONSUMER_PREFETCH"]),
                             concurrency=int(consumer["SLUICE_CONSUMER_CONCURRENCY"]),
                             max_outstanding=int(producer["SLUICE_PUBLISH_MAX_OUTSTANDING"]),
                             producers=int(scale.spec.replicas or 1) if scale.spec else 1,
                             sink_timeout_s=float(consumer["SLUICE_SINK_TIMEOUT_SECONDS"]))
        self._replicas_before = 0
        self._cuts: list[PodNetworkCut] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> KindRig:
        deployment = self.deployment
        self._replicas_before = deployment.consumer_replicas()
        try:
            deployment.scale_consumers(CONSUMERS)
            # What an earlier scenario left in the group's queues must not reach this round's sink.
            wait_for(lambda: self.backlog()[1] == 0 and self.in_flight() == 0, timeout=DELIVERY_DEADLINE,
                     interval=0.5, what="the group's work and retry queues empty, no consumer busy")
            deployment.set_sink(status=None, delay_s=0.0)
            deployment.sink.control(reset=True, reject_ids=[])
            deployment.dead_letters()
        except BaseException:
            self.close()
            raise
        return self

    def finish(self) -> tuple[list[str], list[str]]:
        # Scaled to zero, every consumer pod gets SIGTERM and drains; what it held goes back to its queue.
        self.deployment.scale_consumers(0)
        wait_for(lambda: not self.deployment.consumer_pods(ready=False), timeout=POD_DEADLINE, interval=0.5,
                 what="every consumer pod gone")
        return drain_group(self.deployment.broker(), WORK_QUEUE)

    def close(self) -> None:
        self.restore_consumers()
        self.deployment.set_sink(status=None, delay_s=0.0)
        self.deployment.sink.control(reject_ids=[])
        self.deployment.scale_consumers(self._replicas_before or CONSUMERS)

    def logs(self) -> str:
        return self.deployment.logs()

    # -- load and sink ---------------------------------------------------------------------------

    def ingest_url(self) -> str:
        return self.deployment.ingest_url()

    def refuse(self, ids: set[str]) -> None:
        self.deployment.sink.control(reject_ids=sorted(ids))

    def deliveries(self) -> Counter[str]:
        return self.deployment.sink.deliveries()

    def delivery_times(self) -> list[float]:
        return self.deployment.sink.delivery_times()

    def set_sink(self, *, status: int | None, delay_s: float) -> None:
        self.deployment.set_sink(status=status, delay_s=delay_s)

    def delayed_successes(self) -> int:
        return int(self.deployment.sink.state()["delayed_successes"])

    # -- queues and consumers --------------------------------------------------------------------

    def backlog(self) -> tuple[int, int]:
        return group_backlog(self.deployment.broker(), WORK_QUEUE)

    def in_flight(self) -> float:
        return self.deployment.consumer_metric("sluice_messages_inflight")

    def consumer_count(self) -> int:
        return self.deployment.consumer_replicas()

    # -- faults ----------------------------------------------------------------------------------

    def kill_consumer(self, rng: random.Random) -> None:
        self.deployment.replace_consumer_pod(rng.choice(sorted(self.deployment.consumer_pods())), force=True)

    def stop_consumer(self, rng: random.Random) -> None:
        victim = rng.choice(sorted(self.deployment.consumer_pods()))
        status = self.deployment.replace_consumer_pod(victim, force=False)
        if status != 0:
            raise AssertionError(f"consumer pod {victim} exited with {status} after SIGTERM")

    def restart_broker(self, *, hard: bool) -> None:
        self.deployment.restart_broker(hard=hard)

    def cut_consumers(self) -> int:
        deployment = self.deployment
        for pod in deployment.consumer_pods():
            spec = deployment.core.read_namespaced_pod(pod, deployment.ns).spec
            node = spec.node_name if spec else None
            assert node, f"consumer pod {pod} is on no node"
            self._cuts.append(PodNetworkCut(pod, namespace=deployment.ns, node=node, port=AMQP_PORT))
        return sum(cut.cut() for cut in self._cuts)

    def restore_consumers(self) -> None:
        while self._cuts:
            self._cuts.pop().restore()

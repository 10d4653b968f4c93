"""The deployment as processes on this machine: what ``make test`` runs every scenario against.

A RabbitMQ 4.x container the suite starts itself (``owned_broker``; it keeps its host ports across
restarts, as a Service keeps its address); the producer and consumers as
:class:`~sluice_testing.processes.ServiceProcess`; the webhook a :class:`FlakySink`. What a
Deployment controller would do (replace a killed pod, roll an upgrade) is done here by hand.
"""

from __future__ import annotations

import uuid

from sluice_e2e.deployment import GROUP, DeadLetter, Deployment, SinkClient
from sluice_testing.broker import Broker
from sluice_testing.flaky_sink import FlakySink
from sluice_testing.processes import ServiceProcess

__all__ = ["LocalDeployment"]

#: Consumers started with the deployment (the chart's default replicaCount).
INITIAL_CONSUMERS = 2
#: Short retry tiers, so a sink outage and its recovery fit in a test; 8 attempts outlast the outage.
RETRY_DELAYS = "500ms,1s,2s"
RETRY_MAX_ATTEMPTS = "8"
#: How long a process may take to become ready on a busy 2-core machine.
READY_TIMEOUT = 60.0


class LocalDeployment(Deployment):
    """sluice as local processes against ``broker`` (a container this suite started and may restart).

    Each instance uses its own topology prefix, so scenarios never see each other's queues.
    """

    name = "local"

    def __init__(self, broker: Broker) -> None:
        assert broker.name, "the local deployment restarts its broker: give it a container of its own"
        self.broker = broker
        self.prefix = f"e2e{uuid.uuid4().hex[:8]}"
        self._sink = FlakySink().start()
        self._sink_client = SinkClient(self._sink.url.removesuffix("/events"))
        self.env = {
            "SLUICE_AMQP_URL": broker.amqp_url,
            "SLUICE_TOPOLOGY_PREFIX": self.prefix, "SLUICE_TOPOLOGY_EXCHANGE": f"{self.prefix}.events",
            "SLUICE_RETRY_DELAYS": RETRY_DELAYS, "SLUICE_RETRY_MAX_ATTEMPTS": RETRY_MAX_ATTEMPTS,
            "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": self._sink.url, "SLUICE_SINK_TIMEOUT_SECONDS": "5",
            "SLUICE_CONSUMER_QUEUE_POLL_SECONDS": "0.5", "SLUICE_CONSUMER_GROUP": GROUP,
            "SLUICE_LOG_LEVEL": "WARNING",
        }
        self.consumers: list[ServiceProcess] = []
        self.producer: ServiceProcess | None = None
        self._retired: list[ServiceProcess] = []
        self._serial = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LocalDeployment:
        """Start the consumers, then the producer; returns once every one is ready."""
        self.scale_consumers(INITIAL_CONSUMERS)
        self.producer = self._start("sluice_producer")
        return self

    def close(self) -> None:
        """Stop every process and the sink, and delete this deployment's queues."""
        for process in [*self.consumers, *([self.producer] if self.producer else []), *self._retired]:
            process.close()
        self._sink.stop()
        self.broker.delete_prefix(self.prefix)

    def logs(self) -> str:
        """Every process's log, for a failing scenario's report."""
        processes = [*self._retired, *self.consumers, *([self.producer] if self.producer else [])]
        return "\n".join(f"--- {p.name}\n{p.logs()[-4000:]}" for p in processes)

    def _start(self, module: str) -> ServiceProcess:
        self._serial += 1
        name = f"{module.removeprefix('sluice_')}-{self._serial}"
        return ServiceProcess(module, self.env, name=name).start().wait_ready(READY_TIMEOUT)

    def _retire(self, process: ServiceProcess) -> None:
        # Kept until close(), so its log is still there for a failure report.
        self._retired.append(process)

    # -- Deployment ------------------------------------------------------------------------------

    def ingest_url(self) -> str:
        assert self.producer is not None, "start() first"
        return self.producer.url + "/events"

    def publish_raw(self, routing_key: str, body: bytes, *, message_id: str,
                    content_type: str | None = "application/json") -> None:
        self.broker.publish(self.env["SLUICE_TOPOLOGY_EXCHANGE"], routing_key, body, message_id=message_id,
                            content_type=content_type)

    @property
    def sink(self) -> SinkClient:
        return self._sink_client

    def queue_depth(self, suffix: str = "") -> int:
        return self.broker.depth(self._queue(suffix))

    def _queue(self, suffix: str) -> str:
        return f"{self.prefix}.{GROUP}" + (f".{suffix}" if suffix else "")

    def dead_letters(self) -> list[DeadLetter]:
        return [DeadLetter(m.message_id, str(m.headers.get("x-sluice-reason", "")), str(m.headers.get("x-sluice-error", "")))
                for m in self.broker.drain(self._queue("dead"))]

    def consumer_metric(self, name: str, **labels: str) -> float:
        return sum(c.metric(name, **labels) for c in self.consumers)

    def consumer_replicas(self) -> int:
        return sum(1 for c in self.consumers if c.process is not None and c.process.poll() is None)

    def set_sink(self, *, status: int | None = None, delay_s: float = 0.0) -> None:
        self._sink_client.control(status=status, delay_s=delay_s)

    def kill_consumer(self) -> int:
        held = [c.metric("sluice_messages_inflight") for c in self.consumers]
        victim = self.consumers.pop(held.index(max(held)))
        victim.kill()
        self._retire(victim)
        # What the Deployment controller does: a replacement for the dead pod.
        self.consumers.append(self._start("sluice_consumer"))
        return int(max(held))

    def restart_broker(self, *, hard: bool = False) -> float:
        before = self.broker.amqp_url
        # A hard restart kills the broker only once it holds every queue's registration on disk
        # (Broker.restart): one killed sooner can lose a queue, which tests/chaos/test_queue_lost.py reproduces.
        fault_at = self.broker.restart(hard=hard)
        assert self.broker.amqp_url == before, "the broker came back on another address"
        return fault_at

    def scale_consumers(self, replicas: int) -> None:
        while len(self.consumers) < replicas:
            self.consumers.append(self._start("sluice_consumer"))
        while len(self.consumers) > replicas:
            process = self.consumers.pop()
            process.terminate()  # SIGTERM: drains in-flight work, as a scale-in does
            self._retire(process)

    def upgrade(self) -> None:
        # A rolling update with maxSurge 1, maxUnavailable 0: start the new one, then stop an old one.
        for _ in range(len(self.consumers)):
            new = self._start("sluice_consumer")
            old = self.consumers.pop(0)
            self.consumers.append(new)
            old.terminate()
            self._retire(old)
        old_producer, self.producer = self.producer, self._start("sluice_producer")
        if old_producer is not None:
            old_producer.terminate()
            self._retire(old_producer)

"""The services of one chaos round as local processes: consumers behind a loopback proxy, a producer, and a sink.

The consumers reach the broker through a :class:`TcpProxy` of their own, so a round can cut their
connections alone; the broker is a container the tests started, which restarts on the same ports.
"""

from __future__ import annotations

import random
import urllib.parse
import uuid
from collections import Counter

from sluice_testing.broker import Broker
from sluice_testing.chaos.base import CONSUMERS, ChaosRig, Limits, drain_group, group_backlog
from sluice_testing.flaky_sink import FlakySink
from sluice_testing.processes import ServiceProcess
from sluice_testing.tcp_proxy import TcpProxy

__all__ = ["Rig"]

#: Per-consumer limits; a fault's duplicate budget is derived from them.
PREFETCH = 20
CONCURRENCY = 4
#: Messages the producer may have waiting for a confirm.
MAX_OUTSTANDING = 200
#: The webhook timeout of the consumers: the sink-flapping fault answers slower than this.
SINK_TIMEOUT_S = 1.0


def _target(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 5672


class Rig(ChaosRig):
    """Consumers of group ``default`` and one producer as processes, on topology ``prefix`` (by default a new one)."""

    limits = Limits(prefetch=PREFETCH, concurrency=CONCURRENCY, max_outstanding=MAX_OUTSTANDING, producers=1,
                    sink_timeout_s=SINK_TIMEOUT_S)

    def __init__(self, broker: Broker, *, prefix: str | None = None, consumers: int = CONSUMERS, seed: int = 0) -> None:
        self.broker = broker
        self.prefix = prefix or f"chaos{uuid.uuid4().hex[:8]}"
        self.sink = FlakySink(seed=seed)
        # The consumers reach the broker through a proxy the "connection cut" fault controls.
        self.consumer_proxy = TcpProxy(_target(broker.amqp_url))
        self._wanted = consumers
        self._serial = 0
        self.consumers: list[ServiceProcess] = []
        self.retired: list[ServiceProcess] = []
        self.producer: ServiceProcess | None = None

    @property
    def work_queue(self) -> str:
        return f"{self.prefix}.default"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.default.dead"

    def _env(self, amqp_url: str) -> dict[str, str]:
        return {
            "SLUICE_AMQP_URL": amqp_url,
            # Dead connections behind a killed broker are noticed within two heartbeats.
            "SLUICE_AMQP_HEARTBEAT_SECONDS": "5",
            "SLUICE_TOPOLOGY_PREFIX": self.prefix,
            "SLUICE_TOPOLOGY_EXCHANGE": f"{self.prefix}.events",
            "SLUICE_RETRY_DELAYS": "200ms,1s",
            # Enough attempts that no good event runs out of them during a fault.
            "SLUICE_RETRY_MAX_ATTEMPTS": "50",
            "SLUICE_SINK_KIND": "http",
            "SLUICE_SINK_URL": self.sink.url,
            "SLUICE_SINK_TIMEOUT_SECONDS": str(SINK_TIMEOUT_S),
            "SLUICE_CONSUMER_PREFETCH": str(PREFETCH),
            "SLUICE_CONSUMER_CONCURRENCY": str(CONCURRENCY),
            "SLUICE_CONSUMER_SHUTDOWN_GRACE_SECONDS": "10",
            "SLUICE_CONSUMER_QUEUE_POLL_SECONDS": "1",
            "SLUICE_PUBLISH_MAX_OUTSTANDING": str(MAX_OUTSTANDING),
            "SLUICE_PUBLISH_TIMEOUT_SECONDS": "5",
            "SLUICE_LOG_FORMAT": "text",
        }

    def start(self) -> Rig:
        self.sink.start()
        self.consumer_proxy.start()
        for _ in range(self._wanted):
            self.add_consumer(wait=False)
        self.producer = ServiceProcess("sluice_producer", self._env(self.broker.amqp_url), name="chaos-producer").start()
        for process in (*self.consumers, self.producer):
            process.wait_ready(timeout=60)
        return self

    def add_consumer(self, *, wait: bool = True) -> ServiceProcess:
        """Start one more consumer (a replacement, as a Deployment would)."""
        self._serial += 1
        process = ServiceProcess(
            "sluice_consumer", self._env(self.consumer_proxy.rewrite(self.broker.amqp_url)), name=f"chaos-consumer-{self._serial}"
        )
        self.consumers.append(process.start())
        return process.wait_ready(timeout=60) if wait else process

    def retire(self, process: ServiceProcess) -> None:
        """Forget a consumer that a fault ended; its log is kept until :meth:`stop`."""
        self.consumers.remove(process)
        self.retired.append(process)

    def stop_services(self) -> None:
        """SIGTERM every service, so whatever a consumer has not settled goes back to its queue."""
        for process in (*self.consumers, *([self.producer] if self.producer else [])):
            if process.process is not None and process.process.poll() is None:
                process.terminate(timeout=60)

    def finish(self) -> tuple[list[str], list[str]]:
        self.stop_services()
        return drain_group(self.broker, self.work_queue)

    def close(self) -> None:
        """Stop everything the round started and delete its queues."""
        for process in (*self.consumers, *self.retired, *([self.producer] if self.producer else [])):
            process.close()
        self.consumer_proxy.stop()
        self.sink.stop()
        self.broker.delete_prefix(self.prefix)

    def logs(self) -> str:
        """The services' logs, for a failed round's report."""
        processes = (*self.consumers, *self.retired, *([self.producer] if self.producer else []))
        return "\n".join(f"--- {p.name} ---\n{p.logs()[-4000:]}" for p in processes)

    # -- load and sink ---------------------------------------------------------------------------

    def ingest_url(self) -> str:
        assert self.producer is not None, "the rig is not started"
        return self.producer.url + "/events"

    def refuse(self, ids: set[str]) -> None:
        self.sink.reject_ids = ids

    def deliveries(self) -> Counter[str]:
        return self.sink.received.copy()

    def delivery_times(self) -> list[float]:
        return list(self.sink.delivery_times)

    def set_sink(self, *, status: int | None, delay_s: float) -> None:
        self.sink.status, self.sink.delay_s = status, delay_s

    def delayed_successes(self) -> int:
        return self.sink.delayed_successes

    # -- queues and consumers --------------------------------------------------------------------

    def backlog(self) -> tuple[int, int]:
        return group_backlog(self.broker, self.work_queue)

    def in_flight(self) -> float:
        return sum(c.metric("sluice_messages_inflight") for c in self.consumers)

    def consumer_count(self) -> int:
        return len(self.consumers)

    # -- faults ----------------------------------------------------------------------------------

    def kill_consumer(self, rng: random.Random) -> None:
        victim = rng.choice(self.consumers)
        victim.kill()
        self.retire(victim)
        self.add_consumer()

    def stop_consumer(self, rng: random.Random) -> None:
        victim = rng.choice(self.consumers)
        status = victim.terminate(timeout=60)
        if status != 0:
            raise AssertionError(f"{victim.name} exited with {status} after SIGTERM:\n{victim.logs()[-3000:]}")
        self.retire(victim)
        self.add_consumer()

    def restart_broker(self, *, hard: bool) -> None:
        self.broker.restart(hard=hard)

    def cut_consumers(self) -> int:
        return self.consumer_proxy.cut()

    def restore_consumers(self) -> None:
        self.consumer_proxy.restore()

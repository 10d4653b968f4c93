"""What a scenario may do to a running sluice: the one interface both deployments implement.

A deployment is one producer (HTTP ingest), one consumer group (``default``) delivering to a
webhook sink the suite controls (``sluice_testing.flaky_sink``), and one RabbitMQ node with its
volume. Scenarios publish through the ingest, read what the sink received, read queue depths,
the dead-letter queue and the consumers' metrics, and break things: a sink outage, a killed
consumer, a broker restart, scaling, an upgrade.
"""

from __future__ import annotations

import collections
import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from sluice_testing.chaos.base import ChaosRig

__all__ = ["DeadLetter", "Deployment", "NotApplicable", "SinkClient", "sensor_events"]

#: The consumer group every scenario uses.
GROUP = "default"
#: How long a publish keeps retrying while the ingest answers 503 (broker restarting, pod replaced).
PUBLISH_RETRY_SECONDS = 120.0


class NotApplicable(Exception):  # noqa: N818 - an answer ("not here"), not a failure
    """Raised by an operation this deployment cannot perform; the message says why and where it runs."""


@dataclass(frozen=True)
class DeadLetter:
    """One message taken out of the group's dead-letter queue."""

    event_id: str | None
    reason: str
    error: str


def sensor_events(count: int, *, tag: str | None = None) -> list[dict[str, Any]]:
    """``count`` valid ``sensor.reading`` events with ids unique to this call (``<tag>-<n>``)."""
    tag = tag or uuid.uuid4().hex[:8]
    return [
        {"id": f"{tag}-{i}", "type": "sensor.reading",
         "data": {"sensor_id": f"s-{i % 7}", "metric": "temperature", "value": 20.0 + i % 10,
                  "unit": "celsius", "recorded_at": "2026-11-25T10:00:00Z"}}
        for i in range(count)
    ]


class SinkClient:
    """Talks to a running flaky sink through its control API (``GET /state``, ``POST /control``)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def state(self) -> dict[str, Any]:
        """The sink's ``GET /state`` document (``sluice_testing.flaky_sink`` describes it)."""
        response = requests.get(self.base_url + "/state", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def deliveries(self) -> collections.Counter[str]:
        """Event ids delivered so far, with how many times each was answered 2xx."""
        return collections.Counter(self.state()["received"])

    def failed(self) -> int:
        """Requests answered with a failure so far."""
        return int(self.state()["failed"])

    def delivery_times(self) -> list[float]:
        """When each success was answered, on this process's ``time.monotonic()``.

        The sink reports them on its own monotonic clock, and that clock's reading at the answer;
        the difference to this clock on receipt maps them, within the request's latency.
        """
        state = self.state()
        offset = time.monotonic() - float(state["now"])
        return [float(t) + offset for t in state["delivery_times"]]

    def control(self, **settings: Any) -> None:
        """Set ``status`` (None: healthy), ``delay_s``, ``fail_ids``, ``reject_ids`` or ``reset``."""
        response = requests.post(self.base_url + "/control", json=settings, timeout=10)
        if response.status_code != 204:
            raise RuntimeError(f"sink control {settings!r} failed: {response.status_code} {response.text}")


class Deployment(ABC):
    """A running sluice that scenarios drive. Every method blocks until its effect is observable."""

    #: ``local`` or ``kind``, for messages and skip reasons.
    name: str = "deployment"

    # -- traffic ---------------------------------------------------------------------------------

    @abstractmethod
    def ingest_url(self) -> str:
        """The producer's ``POST /events`` URL, reachable from this process right now."""
        raise NotImplementedError

    def publish(self, events: Sequence[dict[str, Any]], *, batch: int = 50) -> list[str]:
        """POST ``events`` to the ingest in batches; returns the ids the producer confirmed (202).

        A 503 or a connection error (broker restarting, producer replaced) is retried after a
        pause until :data:`PUBLISH_RETRY_SECONDS`; anything else fails the call.
        """
        accepted: list[str] = []
        for start in range(0, len(events), batch):
            chunk = list(events[start:start + batch])
            accepted.extend(self._publish_batch(chunk))
        return accepted

    def _publish_batch(self, chunk: list[dict[str, Any]]) -> list[str]:
        deadline = time.monotonic() + PUBLISH_RETRY_SECONDS
        while True:
            try:
                response = requests.post(self.ingest_url(), data=json.dumps(chunk),
                                         headers={"Content-Type": "application/json"}, timeout=30)
            except requests.RequestException as e:
                problem = f"{type(e).__name__}: {e}"
                self.reconnect()
            else:
                if response.status_code == 202:
                    return list(response.json()["ids"])
                if response.status_code != 503:
                    raise AssertionError(f"ingest answered {response.status_code}: {response.text[:500]}")
                problem = f"503 {response.text[:200]}"
            if time.monotonic() >= deadline:
                raise TimeoutError(f"ingest kept failing for {PUBLISH_RETRY_SECONDS:g}s: {problem}")
            time.sleep(0.5)  # the ingest's Retry-After is longer; a restarted broker is back sooner

    @abstractmethod
    def publish_raw(self, routing_key: str, body: bytes, *, message_id: str,
                    content_type: str | None = "application/json") -> None:
        """Publish bytes straight to the events exchange, as any AMQP client could (poison included)."""
        raise NotImplementedError

    def reconnect(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Re-establish access paths after a failure (kind: port-forwards to replaced pods)."""

    # -- observation -----------------------------------------------------------------------------

    @property
    @abstractmethod
    def sink(self) -> SinkClient:
        """The webhook sink every consumer delivers to."""
        raise NotImplementedError

    @abstractmethod
    def queue_depth(self, suffix: str = "") -> int:
        """Ready messages in the group's work queue (``""``), ``"dead"`` or ``"retry.<delay>"`` queue."""
        raise NotImplementedError

    @abstractmethod
    def dead_letters(self) -> list[DeadLetter]:
        """Take every message out of the group's dead-letter queue."""
        raise NotImplementedError

    @abstractmethod
    def consumer_metric(self, name: str, **labels: str) -> float:
        """The sum of one metric sample over every running consumer."""
        raise NotImplementedError

    @abstractmethod
    def consumer_replicas(self) -> int:
        """Consumers running and ready now."""
        raise NotImplementedError

    # -- disruption ------------------------------------------------------------------------------

    @abstractmethod
    def set_sink(self, *, status: int | None = None, delay_s: float = 0.0) -> None:
        """Make the sink answer ``status`` to every call (None: healthy), each after ``delay_s``."""
        raise NotImplementedError

    @abstractmethod
    def kill_consumer(self) -> int:
        """Kill the busiest consumer abruptly (SIGKILL, no drain); a replacement starts as a Deployment's would.

        Returns:
            The messages it was processing when killed (its ``sluice_messages_inflight``).
        """
        raise NotImplementedError

    @abstractmethod
    def restart_broker(self, *, hard: bool = False) -> float:
        """Restart the RabbitMQ node on its volume and wait until it serves again.

        Parameters:
            hard: kill it (SIGKILL, no shutdown) instead of stopping it cleanly.

        Returns:
            The moment (``time.monotonic()``) the broker was stopped or killed.
        """
        raise NotImplementedError

    @abstractmethod
    def scale_consumers(self, replicas: int) -> None:
        """Run exactly ``replicas`` consumers, and wait until they are ready."""
        raise NotImplementedError

    @abstractmethod
    def upgrade(self) -> None:
        """Roll every service over to a new version while traffic flows (kind: ``helm upgrade``)."""
        raise NotImplementedError

    def autoscaling_bounds(self) -> tuple[int, int]:
        """The consumer autoscaler's (min, max) replicas.

        Raises:
            NotApplicable: this deployment has no autoscaler.
        """
        raise NotApplicable(f"not applicable to the {self.name} deployment: no autoscaler runs there "
                            "(docs/e2e.md; on kind with KEDA it runs)")

    def cpu_autoscaling(self) -> tuple[int, int]:
        """Turn on the consumers' CPU HorizontalPodAutoscaler, wait until it holds its minimum, and
        return its (min, max) replicas; :meth:`reset` turns it off again.

        Raises:
            NotApplicable: this deployment has no CPU autoscaler (or no resource metrics).
        """
        raise NotApplicable(f"not applicable to the {self.name} deployment: no autoscaler runs there "
                            "(docs/e2e.md; on kind with metrics-server it runs)")

    def prometheus(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>`` of the Prometheus that scrapes this deployment through the chart's
        ServiceMonitors; returns the answer's ``data``.

        Raises:
            NotApplicable: no Prometheus Operator scrapes this deployment.
        """
        raise NotApplicable(f"not applicable to the {self.name} deployment: no Prometheus Operator runs there "
                            "(tests/observability runs the same queries on local processes)")

    def series_labels(self) -> dict[str, str]:
        """The ``namespace`` and ``release`` labels that the chart's ServiceMonitors give this deployment's series.

        Raises:
            NotApplicable: no Prometheus Operator scrapes this deployment.
        """
        raise NotApplicable(f"not applicable to the {self.name} deployment: no Prometheus Operator runs there "
                            "(tests/observability runs the same queries on local processes)")

    def chaos_rig(self) -> ChaosRig:
        """The services of this deployment as the rig of chaos rounds (``sluice_testing.chaos.round``).

        Raises:
            NotApplicable: this deployment has no rig of its own.
        """
        raise NotApplicable(f"not applicable to the {self.name} deployment: tests/chaos runs the same chaos rounds "
                            "on local processes (`make chaos`)")

    def reach_unserved_service_address(self, port: int = 15672) -> tuple[str, str]:
        """An address of the cluster's service range that no Service holds, and what a pod gets when
        it sends an HTTP request there: ``refused``, ``timeout``, or ``answered <status line>``.

        Raises:
            NotApplicable: this deployment has no pods.
        """
        raise NotApplicable(f"not applicable to the {self.name} deployment: its services are local processes")

    def helm_test(self) -> str:
        """Run ``helm test`` and return its output.

        Raises:
            NotApplicable: this deployment is not a Helm release.
        """
        raise NotApplicable(f"not applicable to the {self.name} deployment: it is not a Helm release (docs/e2e.md)")

    def uninstall(self) -> list[str]:
        """Remove the deployment; returns what is left behind (``Kind/name``).

        Raises:
            NotApplicable: this deployment is not a Helm release.
        """
        raise NotApplicable(f"not applicable to the {self.name} deployment: it is not a Helm release (docs/e2e.md)")

    def logs(self) -> str:
        """The recent logs of every service, printed when a scenario fails."""
        return ""

    def reset(self) -> None:
        """Before a scenario: a healthy sink with no records, an empty dead-letter queue."""
        self.set_sink(status=None, delay_s=0.0)
        self.sink.control(reset=True, reject_ids=[])
        self.dead_letters()

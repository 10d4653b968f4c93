"""The chart's monitoring, run locally: what the Prometheus Operator would scrape, on real processes.

``render_monitoring`` renders the chart (real helm) with monitoring on and returns its
ServiceMonitors, Services, PrometheusRule groups and dashboard. ``scrape_configs`` turns those
ServiceMonitors into the scrape jobs the Operator generates from them (job, path, params, interval,
relabelings, the target labels it sets), aimed at local processes instead of pod IPs.
``PipelineRun`` starts the rest: a producer, two consumers with a flaky webhook, invalid events for
the dead-letter queue, and a real Prometheus scraping them all and the RabbitMQ 4.x broker.

Used by tests/observability and ``make dashboard-preview``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sluice_testing.broker import REPO, Broker
from sluice_testing.flaky_sink import FlakySink
from sluice_testing.processes import ServiceProcess
from sluice_testing.prometheus import PrometheusServer
from sluice_testing.waiting import wait_for

__all__ = [
    "NAMESPACE",
    "RELEASE",
    "LocalTarget",
    "Monitoring",
    "PipelineRun",
    "comparisons_as_bool",
    "dashboard_targets",
    "grafana_expr",
    "render_chart",
    "render_monitoring",
    "scrape_configs",
]

CHART = REPO / "charts" / "sluice"
#: The release and namespace the chart is rendered as (the labels every series then carries).
RELEASE = "sluice"
NAMESPACE = "sluice"
#: What `$__rate_interval` stands for locally: a few scrapes at the 2 s interval the runs use.
RATE_INTERVAL = "20s"


@dataclass(frozen=True)
class Monitoring:
    """The monitoring objects of one chart render."""

    service_monitors: list[dict[str, Any]]
    services: list[dict[str, Any]]
    rule_groups: list[dict[str, Any]]
    dashboard: dict[str, Any]


@dataclass(frozen=True)
class LocalTarget:
    """A local process standing in for one pod behind a Service."""

    service: str
    pod: str
    address: str


def _helm() -> str:
    result = subprocess.run([str(REPO / "scripts" / "get-helm.sh")], capture_output=True, text=True, timeout=600,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/get-helm.sh found no helm: {result.stderr.strip()[-500:]}")
    return result.stdout.strip().splitlines()[-1]


def render_chart(**values: Any) -> list[dict[str, Any]]:
    """The objects of the chart rendered with ``monitoring.enabled`` and these values.

    Keys are dotted value paths (``{"monitoring.dashboard.label": "x"}``), values anything JSON can hold.

    Raises:
        RuntimeError: helm is missing or refused the values.
    """
    sets = {"monitoring.enabled": True, **values}
    args = [arg for key, value in sets.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]
    result = subprocess.run([_helm(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args],
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"helm template failed: {result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def render_monitoring(**values: Any) -> Monitoring:
    """The monitoring objects of the chart rendered with these values (as ``render_chart``)."""
    docs = render_chart(**values)

    def kind(name: str) -> list[dict[str, Any]]:
        return [d for d in docs if d["kind"] == name]

    (rule,) = kind("PrometheusRule")
    dashboards = [d for d in kind("ConfigMap") if "sluice.json" in d.get("data", {})]
    (dashboard,) = dashboards
    return Monitoring(kind("ServiceMonitor"), kind("Service"), rule["spec"]["groups"],
                      json.loads(dashboard["data"]["sluice.json"]))


def _selected_services(monitor: dict[str, Any], services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    namespaces = monitor["spec"].get("namespaceSelector", {}).get("matchNames", [NAMESPACE])
    return [s for s in services
            if wanted <= s["metadata"].get("labels", {}).items() and NAMESPACE in namespaces]


def _relabel_config(relabeling: dict[str, Any]) -> dict[str, Any]:
    """One ServiceMonitor relabeling in prometheus.yml's spelling (the Operator copies the fields)."""
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    return {names.get(k, k): v for k, v in relabeling.items()}


def scrape_configs(monitoring: Monitoring, targets: Sequence[LocalTarget]) -> list[dict[str, Any]]:
    """The scrape jobs the Prometheus Operator generates from the ServiceMonitors, on local targets.

    Each endpoint becomes a job named as the Operator names it, with its path, params, interval
    and relabelings; each target gets the labels the Operator sets from service discovery (job =
    the Service's name, namespace, service, pod, endpoint = the port's name).

    Raises:
        ValueError: an endpoint names a port its Service does not have, or selects no Service.
    """
    jobs = []
    for monitor in monitoring.service_monitors:
        name = monitor["metadata"]["name"]
        services = _selected_services(monitor, monitoring.services)
        for index, endpoint in enumerate(monitor["spec"]["endpoints"]):
            selected = [s for s in services if any(p["name"] == endpoint["port"] for p in s["spec"]["ports"])]
            if not selected:
                raise ValueError(f"ServiceMonitor {name} endpoint {index} (port {endpoint['port']!r}) selects no Service")
            static = [
                {"targets": [t.address], "labels": {
                    "job": t.service, "namespace": NAMESPACE, "service": t.service, "pod": t.pod,
                    "endpoint": endpoint["port"]}}
                for service in selected for t in targets if t.service == service["metadata"]["name"]
            ]
            job: dict[str, Any] = {
                "job_name": f"serviceMonitor/{NAMESPACE}/{name}/{index}",
                "metrics_path": endpoint.get("path", "/metrics"),
                "scrape_interval": endpoint.get("interval", "30s"),
                "static_configs": static,
                "relabel_configs": [_relabel_config(r) for r in endpoint.get("relabelings", [])],
            }
            if endpoint.get("params"):
                job["params"] = endpoint["params"]
            if endpoint.get("scrapeTimeout"):
                job["scrape_timeout"] = endpoint["scrapeTimeout"]
            jobs.append(job)
    return jobs


def grafana_expr(expr: str, *, namespace: str = NAMESPACE, release: str = RELEASE,
                 rate_interval: str = RATE_INTERVAL) -> str:
    """A dashboard query with Grafana's variables replaced by this run's values."""
    return (expr.replace("$__rate_interval", rate_interval)
            .replace("$namespace", namespace).replace("$release", release))


def dashboard_targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every (panel, target) of the dashboard, rows' nested panels included."""
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found += [(inner, target) for target in inner.get("targets", [])]
    return found


def comparisons_as_bool(expr: str) -> str:
    """``expr`` with every comparison operator turned into its ``bool`` form (``> 5`` → ``> bool 5``).

    An alert's expression filters: on a healthy run it rightly returns nothing. In ``bool`` form it
    returns 0 or 1 for every series it compares, so an empty result can only mean a selector that
    matches nothing or a join that never matches: a bug. Label matchers and strings are left alone.
    """
    out: list[str] = []
    i, depth, quote = 0, 0, ""
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\" and quote != "`" and i + 1 < len(expr):
                out.append(expr[i + 1])
                i += 1
            elif c == quote:
                quote = ""
            i += 1
            continue
        if c in "\"'`":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            op = expr[i:i + 2] if expr[i:i + 2] in ("==", "!=", ">=", "<=") else (c if c in "<>" else "")
            if op:
                rest = expr[i + len(op):]
                out.append(op if rest.lstrip().startswith("bool") else f"{op} bool")
                i += len(op)
                continue
        out.append(c)
        i += 1
    return "".join(out)


class PipelineRun:
    """Producer, two consumers, a flaky webhook and Prometheus, on the chart's monitoring settings.

    Parameters:
        broker: a running RabbitMQ 4.x with its Prometheus plugin (``Broker.metrics_url``).
        rate: events per second the producer's generator publishes, until ``stop``.
        fail_ratio: share of webhook calls that fail (and so are retried, some dead-lettered).
        interval: the scrape interval rendered into the ServiceMonitors.
    """

    def __init__(self, broker: Broker, *, rate: int = 40, fail_ratio: float = 0.3, interval: str = "2s") -> None:
        assert broker.metrics_url, "the broker must expose its Prometheus plugin (rabbitmq_prometheus)"
        self.broker = broker
        self.prefix = f"obs{uuid.uuid4().hex[:8]}"
        self.work_queue = f"{self.prefix}.default"
        self.monitoring = render_monitoring(**{"config.topology.prefix": self.prefix,
                                               "monitoring.serviceMonitors.interval": interval})
        self.sink = FlakySink(fail_ratio=fail_ratio, seed=11)
        env = {"SLUICE_AMQP_URL": broker.amqp_url, "SLUICE_TOPOLOGY_PREFIX": self.prefix,
               "SLUICE_TOPOLOGY_EXCHANGE": f"{self.prefix}.events", "SLUICE_SINK_KIND": "http",
               "SLUICE_SINK_URL": self.sink.url, "SLUICE_RETRY_DELAYS": "1s,2s", "SLUICE_RETRY_MAX_ATTEMPTS": "3",
               "SLUICE_CONSUMER_QUEUE_POLL_SECONDS": "1", "SLUICE_LOG_LEVEL": "WARNING"}
        self.consumers = [ServiceProcess("sluice_consumer", env, name=f"obs-consumer-{i}") for i in (0, 1)]
        self.producer = ServiceProcess("sluice_producer", {**env, "SLUICE_GENERATOR_RATE": str(rate)},
                                       name="obs-producer")
        self._rules_dir = Path(tempfile.mkdtemp(prefix="sluice-rules-"))
        rules = self._rules_dir / "sluice-rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": self.monitoring.rule_groups}, sort_keys=False))
        metrics_address = self.broker.metrics_url.removeprefix("http://").rstrip("/")
        local = [LocalTarget(f"{RELEASE}-producer", f"{RELEASE}-producer-0", _address(self.producer)),
                 *(LocalTarget(f"{RELEASE}-consumer-default", f"{RELEASE}-consumer-default-{i}", _address(c))
                   for i, c in enumerate(self.consumers)),
                 LocalTarget(f"{RELEASE}-rabbitmq", f"{RELEASE}-rabbitmq-0", metrics_address)]
        self.prometheus = PrometheusServer(scrape_configs(self.monitoring, local), rule_files=[rules])

    def start(self) -> PipelineRun:
        """Start everything; the producer publishes until ``stop``."""
        self.sink.start()
        self.prometheus.start()
        for consumer in self.consumers:
            consumer.start()
        for consumer in self.consumers:
            consumer.wait_ready()
        self.producer.start().wait_ready()
        # Counters first seen by Prometheus above zero show no increase: let every target be
        # scraped once before anything the run counts happens (invalid events, failures).
        wait_for(lambda: (targets := self.prometheus.targets()) and all(t["health"] == "up" for t in targets),
                 timeout=30, interval=0.2, what="every scrape target up")
        return self

    def publish_invalid(self, count: int) -> None:
        """Publish events that fail validation, which the consumers dead-letter as ``invalid``."""
        for n in range(count):
            self.broker.publish(f"{self.prefix}.events", "sensor.reading",
                                json.dumps({"type": "sensor.reading", "data": {"bogus": n}}).encode(),
                                message_id=f"invalid-{n}")

    def stop(self) -> None:
        """Stop every process started, delete the run's queues and exchange, remove temporary files."""
        for process in (self.producer, *self.consumers):
            if process.process is not None:
                process.terminate()
            process.close()
        self.prometheus.stop()
        self.sink.stop()
        self.broker.delete_prefix(self.prefix)
        for path in self._rules_dir.iterdir():
            path.unlink()
        os.rmdir(self._rules_dir)

    def __enter__(self) -> PipelineRun:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _address(process: ServiceProcess) -> str:
    return f"127.0.0.1:{process.port}"

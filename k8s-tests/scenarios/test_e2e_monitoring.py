"""The chart's monitoring on a real prometheus-operator: its Prometheus selects the chart's
ServiceMonitors and PrometheusRule by their ``release`` label, scrapes the producer, the consumer
group and RabbitMQ's per-queue series, evaluates every rule, and every dashboard query reads live data.

Kind with prometheus-operator only (`make kind-prometheus`); locally tests/observability runs the same
queries against local processes, so this one skips there, saying so.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest

from sluice_e2e.deployment import GROUP, Deployment, sensor_events
from sluice_e2e.scenario import DELIVERY_DEADLINE, EventFlow, applicable
from sluice_testing.broker import REPO
from sluice_testing.observability import dashboard_targets, grafana_expr
from sluice_testing.waiting import wait_for

#: Series only kube-state-metrics exports (tests/observability/test_live_prometheus.py says the
#: same): the suite's cluster runs none, so these dashboard targets are left out.
CLUSTER_ONLY = {"Consumer replicas and autoscaler bounds/A", "Consumer replicas and autoscaler bounds/B",
                "Consumer replicas and autoscaler bounds/C"}
#: Scrapes every 5 s (values-monitoring.yaml): rates over 30 s have several samples.
RATE_INTERVAL = "30s"
DATA_TIMEOUT = 90.0


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(r["value"][1])) for r in result)


@pytest.mark.operations("series_labels")
def test_prometheus_scrapes_the_chart_s_targets_evaluates_its_rules_and_feeds_the_dashboard(
        deployment: Deployment) -> None:
    labels = applicable(deployment.series_labels)
    namespace, release = labels["namespace"], labels["release"]
    # Given events delivered, a few poison ones dead-lettered and some retried through a sink outage
    for i in range(3):
        deployment.publish_raw("sensor.reading", b"{not json", message_id=f"poison-{uuid.uuid4().hex[:6]}-{i}")
    deployment.set_sink(status=503)
    ids = deployment.publish(sensor_events(100))
    wait_for(lambda: deployment.consumer_metric("sluice_messages_processed_total", outcome="retried") > 0,
             timeout=DELIVERY_DEADLINE, what="events retried")
    deployment.set_sink(status=None)
    wait_for(lambda: set(ids) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what="all 100 delivered")

    # Then every target the chart's ServiceMonitors make is up: producer, consumer group, both RabbitMQ endpoints
    def all_up() -> list[dict[str, Any]] | None:
        active = [t for t in deployment.prometheus("targets")["activeTargets"]
                  if t["labels"].get("namespace") == namespace]
        return active if len(active) >= 4 and all(t["health"] == "up" for t in active) else None

    active = wait_for(all_up, timeout=DATA_TIMEOUT, interval=2, what="every sluice target up")
    assert sorted({t["labels"]["component"] for t in active}) == ["consumer", "producer", "rabbitmq"]
    assert {t["labels"].get("group") for t in active if t["labels"]["component"] == "consumer"} == {GROUP}
    assert {t["discoveredLabels"].get("__metrics_path__") for t in active
            if t["labels"]["component"] == "rabbitmq"} == {"/metrics", "/metrics/detailed"}
    assert {t["labels"].get("release") for t in active} == {release}
    # And RabbitMQ's per-queue series, for the group's work queue
    wait_for(lambda: _has_data(deployment.prometheus(
        "query", query=f'rabbitmq_detailed_queue_messages_ready{{namespace="{namespace}",queue="sluice.{GROUP}"}}')["result"]),
        timeout=DATA_TIMEOUT, interval=2, what="the work queue's per-queue series")

    # And the chart's PrometheusRule is loaded, every rule evaluated without error
    def evaluated() -> list[dict[str, Any]] | None:
        groups = [g for g in deployment.prometheus("rules")["groups"] if g["name"].startswith("sluice")]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("health") == "ok" for r in rules) else None

    rules = wait_for(evaluated, timeout=DATA_TIMEOUT, interval=2, what="the chart's rules evaluated")
    assert any(r["name"] == "SluiceQueueUnavailable" for r in rules)

    # And every dashboard query reads live data while events flow (rates and latency quantiles need traffic)
    dashboard = json.loads((REPO / "charts" / "sluice" / "dashboards" / "sluice.json").read_text())
    queries = {f"{panel['title']}/{target['refId']}": grafana_expr(target["expr"], namespace=namespace, release=release,
                                                                    rate_interval=RATE_INTERVAL)
               for panel, target in dashboard_targets(dashboard)}
    empty = []
    with EventFlow(deployment, batch=20) as flow:
        for name, expr in queries.items():
            if name in CLUSTER_ONLY:
                continue
            try:
                wait_for(lambda expr=expr: _has_data(deployment.prometheus("query", query=expr)["result"]),
                         timeout=DATA_TIMEOUT, interval=2, what=name)
            except TimeoutError:
                empty.append(f"{name}: {expr}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
    wait_for(lambda: set(flow.confirmed) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what=f"all {len(flow.confirmed)} confirmed events delivered")


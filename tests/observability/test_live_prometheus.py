"""Every dashboard query and every alert expression returns data from a real run, in a real Prometheus.

One run for the module: RabbitMQ 4.x with its Prometheus plugin, a producer, two consumers with a
webhook failing 30% of calls (so messages are retried and some dead-lettered as max_attempts) and
events that fail validation (dead-lettered as invalid). Prometheus scrapes them with the jobs the
Prometheus Operator would generate from the chart's ServiceMonitors, and evaluates the chart's rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from sluice_testing.broker import Broker
from sluice_testing.observability import (
    NAMESPACE,
    RELEASE,
    PipelineRun,
    comparisons_as_bool,
    dashboard_targets,
    grafana_expr,
)
from sluice_testing.prometheus import skip_or_fail_without
from sluice_testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Series only kube-state-metrics exports, from a cluster's Deployments and HPAs: nothing on this
#: machine can export them honestly, so queries reading them are only checked to be valid PromQL.
#: Each entry is a dashboard target ("panel title/refId") or an alert; the test fails if the list
#: goes stale or if a query outside it reads these series.
CLUSTER_ONLY_SERIES = re.compile(r"\bkube_(deployment|horizontalpodautoscaler)_")
CLUSTER_ONLY = {
    "Consumer replicas and autoscaler bounds/A",  # kube_deployment_status_replicas_available
    "Consumer replicas and autoscaler bounds/B",  # kube_horizontalpodautoscaler_spec_min_replicas
    "Consumer replicas and autoscaler bounds/C",  # kube_horizontalpodautoscaler_spec_max_replicas
    "SluiceConsumersAtMaximumWithBacklog",  # joins the HPA's replicas to the work queue
}
#: How long the data of every query may take to appear (scrapes every 2 s, rates over 20 s).
DATA_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def run(rabbitmq: Broker) -> Iterator[PipelineRun]:
    skip_or_fail_without("prometheus")
    with PipelineRun(rabbitmq, rate=40, fail_ratio=0.3) as pipeline:
        pipeline.publish_invalid(5)
        # The run is ready when Prometheus has seen both kinds of dead letters.
        wait_for(lambda: _dead_letter_reasons(pipeline) >= {"invalid", "max_attempts"}, timeout=DATA_TIMEOUT,
                 interval=1.0, what="dead letters (invalid and max_attempts) in Prometheus")
        yield pipeline


def _dead_letter_reasons(run: PipelineRun) -> set[str]:
    result = run.prometheus.query(f'sum by (reason) (sluice_dead_letters_total{{release="{RELEASE}"}}) > 0')
    return {r["metric"]["reason"] for r in result}


def _has_data(result: list[dict[str, Any]]) -> bool:
    """At least one series with a real number (a histogram over no observations gives NaN)."""
    return any(not math.isnan(float(r["value"][1])) for r in result)


def _returns_data(run: PipelineRun, expr: str) -> bool:
    try:
        wait_for(lambda: _has_data(run.prometheus.query(expr)), timeout=DATA_TIMEOUT, interval=1.0, what=expr)
    except TimeoutError:
        return False
    return True


def _queries(run: PipelineRun) -> dict[str, str]:
    """Every query the chart ships, by name: dashboard targets with Grafana's variables filled in, and
    alert expressions in their ``bool`` form."""
    queries = {f"{panel['title']}/{target['refId']}": grafana_expr(target["expr"])
               for panel, target in dashboard_targets(run.monitoring.dashboard)}
    for group in run.monitoring.rule_groups:
        queries.update({rule["alert"]: comparisons_as_bool(rule["expr"]) for rule in group["rules"]})
    return queries


def test_the_run_retried_and_dead_lettered_messages(run):
    # Then Prometheus saw retries and both kinds of dead letters through the ServiceMonitor jobs
    retried = run.prometheus.query(f'sum(sluice_messages_processed_total{{release="{RELEASE}",outcome="retried"}})')
    assert float(retried[0]["value"][1]) > 0
    assert _dead_letter_reasons(run) >= {"invalid", "max_attempts"}


def test_every_servicemonitor_endpoint_is_scraped_successfully(run):
    # Given the jobs generated from the producer, consumer and RabbitMQ ServiceMonitors
    def all_up() -> list[dict[str, Any]] | None:
        targets = run.prometheus.targets()
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_for(all_up, timeout=30, interval=0.5, what="every target up")
    # Then the producer, both consumers and both RabbitMQ endpoints answer, labelled as on Kubernetes
    components = sorted(t["labels"]["component"] for t in targets)
    assert components == ["consumer", "consumer", "producer", "rabbitmq", "rabbitmq"]
    assert {t["labels"]["namespace"] for t in targets} == {NAMESPACE}
    assert {t["labels"]["release"] for t in targets} == {RELEASE}
    assert {t["labels"].get("metrics_path") for t in targets if t["labels"]["component"] == "rabbitmq"} == {
        "/metrics", "/metrics/detailed"}


def test_every_rule_evaluates_without_error(run):
    def evaluated() -> list[dict[str, Any]] | None:
        rules = [r for g in run.prometheus.rules() for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else None

    rules = wait_for(evaluated, timeout=30, interval=0.5, what="every rule evaluated")
    assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []
    assert len(rules) == len(_queries(run)) - len(dashboard_targets(run.monitoring.dashboard))


def test_every_dashboard_query_and_alert_expression_returns_data(run):
    # Given every query the chart ships (alerts in bool form, so a quiet alert still returns 0 / 1)
    queries = _queries(run)
    assert queries, "no queries found in the dashboard and rules"
    # When each runs against Prometheus after the traffic run
    missing = [name for name, expr in queries.items()
               if name not in CLUSTER_ONLY and not _returns_data(run, expr)]
    # Then each returns data, except those reading kube-state-metrics series
    assert missing == [], "queries that returned no data:\n" + "\n".join(f"{n}: {queries[n]}" for n in missing)



def test_prometheus_raises_the_alerts_the_run_provokes_and_no_others(run):
    # Given the chart's rules loaded into Prometheus, evaluated every 5 s during the run
    def active(state: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for r in run.prometheus.query(f'ALERTS{{alertstate="{state}"}}'):
            found.setdefault(r["metric"]["alertname"], set()).add(r["metric"].get("reason", r["metric"].get("group", "")))
        return found

    # Then dead letters of both reasons fire at once (no `for`), and 30% of messages retried is
    # above the 20% threshold, pending for its 15 minutes
    firing = wait_for(lambda: (f := active("firing")).get("SluiceDeadLettersIncreasing", set()) >= {
        "invalid", "max_attempts"} and f, timeout=DATA_TIMEOUT, interval=1.0, what="dead-letter alerts firing")
    pending = wait_for(lambda: (p := active("pending")).get("SluiceRetryRatioHigh") == {"default"} and p,
                       timeout=DATA_TIMEOUT, interval=1.0, what="retry ratio alert pending")
    # And nothing else: the broker is up, the work queue has consumers and drains
    assert set(firing) == {"SluiceDeadLettersIncreasing"}
    assert set(pending) <= {"SluiceRetryRatioHigh", "SluiceDeadLettersIncreasing"}

def test_cluster_only_queries_are_exactly_those_reading_kube_state_metrics_and_are_valid(run):
    queries = _queries(run)
    # Then the allow-list names real queries, exactly the ones that read cluster-only series
    assert {name for name, expr in queries.items() if CLUSTER_ONLY_SERIES.search(expr)} == CLUSTER_ONLY
    for name in CLUSTER_ONLY:
        run.prometheus.query(queries[name])  # raises PrometheusError on invalid PromQL


def test_dashboard_variables_return_the_runs_namespace_and_release(run):
    variables = {v["name"]: v for v in run.monitoring.dashboard["templating"]["list"]}
    # Given the label_values(...) queries of the namespace and release variables
    for name, expected in (("namespace", NAMESPACE), ("release", RELEASE)):
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variables[name]["definition"])
        assert match, variables[name]["definition"]
        selector, label = grafana_expr(match.group(1)), match.group(2)
        # Then Prometheus lists this run's value
        assert expected in wait_for(lambda s=selector, lb=label: run.prometheus.label_values(lb, s),
                                    timeout=30, interval=0.5, what=f"values of {name}")


@pytest.mark.parametrize(("expr", "expected"), [
    ('a{x="1"} > 5', 'a{x="1"} > bool 5'),
    ('a{x!="1",y=~"a|b"} >= b and c == 0', 'a{x!="1",y=~"a|b"} >= bool b and c == bool 0'),
    ("a > bool 1", "a > bool 1"),
    ('label_replace(a, "q", "x>y", "l", "(.+)") < 3', 'label_replace(a, "q", "x>y", "l", "(.+)") < bool 3'),
    ("a{q=~`x\\.(y)`} != 1", "a{q=~`x\\.(y)`} != bool 1"),
])
def test_comparisons_as_bool_rewrites_only_comparison_operators(expr, expected):
    assert comparisons_as_bool(expr) == expected

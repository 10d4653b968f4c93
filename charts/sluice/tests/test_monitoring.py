"""Monitoring objects: off by default, one switch for all, each ServiceMonitor aimed at a real Service port."""

from __future__ import annotations

from chartlib import NAMESPACE, of_kind, one, render, render_error

MONITORING_KINDS = ("ServiceMonitor", "PrometheusRule")


def _dashboards(docs):
    return [d for d in of_kind(docs, "ConfigMap") if "sluice.json" in d.get("data", {})]


def test_nothing_is_rendered_by_default(helm):
    docs = render(helm)
    assert [d for d in docs if d["kind"] in MONITORING_KINDS] == []
    assert _dashboards(docs) == []


def test_one_switch_renders_servicemonitors_rules_and_dashboard(helm):
    docs = render(helm, monitoring__enabled=True)
    names = sorted(d["metadata"]["name"] for d in of_kind(docs, "ServiceMonitor"))
    assert names == ["sluice-consumer-default", "sluice-producer", "sluice-rabbitmq"]
    assert len(of_kind(docs, "PrometheusRule")) == 1
    (dashboard,) = _dashboards(docs)
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    for doc in [*of_kind(docs, "ServiceMonitor"), *of_kind(docs, "PrometheusRule")]:
        assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_each_servicemonitor_endpoint_selects_a_service_with_that_port(helm):
    # Given two consumer groups
    docs = render(helm, monitoring__enabled=True, consumer__groups=[{"name": "a"}, {"name": "b"}])
    services = of_kind(docs, "Service")
    for monitor in of_kind(docs, "ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"].items()
        assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
        selected = [s for s in services if selector <= s["metadata"]["labels"].items()]
        for endpoint in monitor["spec"]["endpoints"]:
            # Then exactly one selected Service has the port the endpoint scrapes
            with_port = [s for s in selected if endpoint["port"] in {p["name"] for p in s["spec"]["ports"]}]
            assert len(with_port) == 1, (monitor["metadata"]["name"], endpoint["port"])


def test_rabbitmq_is_scraped_on_aggregated_and_detailed_queue_metrics(helm):
    monitor = one(render(helm, monitoring__enabled=True), "ServiceMonitor", "sluice-rabbitmq")
    endpoints = {e["path"]: e for e in monitor["spec"]["endpoints"]}
    assert set(endpoints) == {"/metrics", "/metrics/detailed"}
    assert endpoints["/metrics/detailed"]["params"]["family"] == [
        "queue_coarse_metrics", "queue_consumer_count", "queue_delivery_metrics"]


def test_an_external_broker_gets_no_rabbitmq_servicemonitor(helm):
    docs = render(helm, monitoring__enabled=True, rabbitmq__enabled=False, externalBroker__enabled=True,
                  externalBroker__existingSecret="broker")
    assert "sluice-rabbitmq" not in {d["metadata"]["name"] for d in of_kind(docs, "ServiceMonitor")}


def test_parts_can_be_turned_off_for_a_prometheus_without_the_operator(helm):
    docs = render(helm, monitoring__enabled=True, monitoring__serviceMonitors__enabled=False,
                  monitoring__rules__enabled=False, monitoring__scrapeAnnotations=True)
    assert [d for d in docs if d["kind"] in MONITORING_KINDS] == []
    assert len(_dashboards(docs)) == 1
    # Then every sluice pod and the broker carry the prometheus.io annotations instead
    annotated = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            annotated[doc["metadata"]["name"]] = doc["spec"]["template"]["metadata"].get("annotations", {})
    assert {name: a.get("prometheus.io/port") for name, a in annotated.items()} == {
        "sluice-producer": "8080", "sluice-consumer-default": "8080", "sluice-rabbitmq": "15692"}
    assert all(a["prometheus.io/scrape"] == "true" and a["prometheus.io/path"] == "/metrics" for a in annotated.values())


def test_scrape_annotations_need_the_monitoring_switch_and_keep_pod_annotations(helm):
    off = render(helm, monitoring__scrapeAnnotations=True)
    assert not any("prometheus.io/scrape" in str(d["spec"]["template"]["metadata"])
                   for d in [*of_kind(off, "Deployment"), *of_kind(off, "StatefulSet")])
    on = render(helm, monitoring__enabled=True, monitoring__scrapeAnnotations=True, producer__podAnnotations={"a": "b"})
    annotations = one(on, "Deployment", "sluice-producer")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["a"] == "b" and annotations["prometheus.io/scrape"] == "true"


def test_a_threshold_duration_that_prometheus_would_refuse_stops_the_install(helm):
    # Given a duration Prometheus cannot parse, Then helm refuses it naming the value
    error = render_error(helm, monitoring__enabled=True, monitoring__rules__backlog__for="15 minutes")
    assert "/monitoring/rules/backlog/for" in error


def test_a_retry_share_above_one_stops_the_install(helm):
    error = render_error(helm, monitoring__enabled=True, monitoring__rules__retryRatio__threshold=20)
    assert "/monitoring/rules/retryRatio/threshold" in error

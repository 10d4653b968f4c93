"""The Grafana dashboard is well formed and shipped as the kube-prometheus-stack sidecar expects.

Its queries are run against a real Prometheus in test_live_prometheus.py; this file checks the
structure Grafana needs: unique panel ids, a grid without overlaps, the datasource variable on every
panel and target, the namespace and release variables, and the panels the pipeline needs.
"""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

import pytest

from sluice_testing.broker import REPO
from sluice_testing.observability import CHART, dashboard_targets, render_chart, render_monitoring

DASHBOARD_PATH = CHART / "dashboards" / "sluice.json"
DATASOURCE = "${datasource}"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_PATH.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]


def _overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def test_panel_ids_are_unique(dashboard):
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"


def test_panels_stay_in_the_grid_and_do_not_overlap(dashboard):
    panels = _panels(dashboard)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    overlapping = [(a["title"], b["title"]) for a, b in combinations(panels, 2) if _overlap(a["gridPos"], b["gridPos"])]
    assert overlapping == []


def test_every_panel_and_target_uses_the_datasource_variable(dashboard):
    for panel in _panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, panel["title"]
    targets = dashboard_targets(dashboard)
    assert targets
    for panel, target in targets:
        assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, (panel["title"], target["refId"])


def test_every_query_filters_on_the_namespace_and_release_variables(dashboard):
    for panel, target in dashboard_targets(dashboard):
        expr = target["expr"]
        assert 'namespace="$namespace"' in expr, (panel["title"], expr)
        # kube-state-metrics series carry no release label: they select the release's objects by name
        assert 'release="$release"' in expr or "$release.*-consumer-" in expr, (panel["title"], expr)


def test_variables_are_datasource_namespace_and_release(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "namespace", "release"]
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "release"):
        assert variables[name]["datasource"]["uid"] == DATASOURCE


def test_the_pipeline_panels_are_there(dashboard):
    titles = {p["title"] for p in _panels(dashboard)}
    assert {"Events per second", "Queue depth", "Consumers per queue", "Dead letters by reason", "Processing latency by sink",
            "Publish confirm latency", "In flight", "Consumer replicas and autoscaler bounds", "Broker memory",
            "Broker free disk", "Broker connections", "Broker health"} <= titles
    throughput = next(p for p in _panels(dashboard) if p["title"] == "Events per second")
    assert [t["legendFormat"] for t in throughput["targets"]] == ["published", "acked", "retried", "dead-lettered"]
    latency = next(p for p in _panels(dashboard) if p["title"] == "Processing latency by sink")
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"]


def test_the_chart_ships_the_file_unchanged_in_a_configmap_for_the_grafana_sidecar(dashboard):
    # Given the chart rendered with monitoring on, Then the ConfigMap holds the file as it is
    assert render_monitoring().dashboard == dashboard


def test_the_sidecar_label_is_configurable():
    docs = render_chart(**{"monitoring.dashboard.label": "my_dashboards", "monitoring.dashboard.labelValue": "yes"})
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and "sluice.json" in d.get("data", {})]
    assert configmap["metadata"]["labels"]["my_dashboards"] == "yes"
    assert "grafana_dashboard" not in configmap["metadata"]["labels"]


def test_readme_shows_the_preview_of_every_drawn_panel(dashboard):
    from sluice_testing.dashboard_preview import PANELS

    readme = (REPO / "README.md").read_text()
    titles = {p["title"] for p in _panels(dashboard)}
    for title, filename in PANELS.items():
        # Then each drawn panel exists in the dashboard, its PNG is committed and the README shows it
        assert title in titles
        assert (REPO / "docs" / "img" / filename).stat().st_size > 0
        assert f"](docs/img/{filename})" in readme

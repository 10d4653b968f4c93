"""Services select this release's pods, and every port a Service or probe names exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chartlib import RELEASE, SCENARIOS, containers, of_kind, pod_specs, render

#: Labels that change on upgrade: never in a selector (selectors are immutable).
VOLATILE_LABELS = {"helm.sh/chart", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"}


def selected_pods(docs: list[dict[str, Any]], selector: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, spec)
        for name, spec, labels in pod_specs(docs)
        if labels.get("app.kubernetes.io/component") != "test" and selector.items() <= labels.items()
    ]


def container_ports(spec: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_service_selects_pods_of_this_release(helm, scenario: Path):
    docs = render(helm, scenario)
    for service in of_kind(docs, "Service"):
        selector = service["spec"]["selector"]
        assert selector.get("app.kubernetes.io/instance") == RELEASE, service["metadata"]["name"]
        assert selected_pods(docs, selector), f"Service {service['metadata']['name']} selects no pod"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_service_target_port_is_a_port_of_the_selected_containers(helm, scenario: Path):
    docs = render(helm, scenario)
    for service in of_kind(docs, "Service"):
        for name, spec in selected_pods(docs, service["spec"]["selector"]):
            ports = container_ports(spec)
            for port in service["spec"]["ports"]:
                target = port["targetPort"]
                assert target in ports or target in ports.values(), (
                    f"Service {service['metadata']['name']} port {port['name']} -> {target}: not a port of {name}"
                )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_probe_port_is_a_port_of_its_container(helm, scenario: Path):
    for name, spec, _ in pod_specs(render(helm, scenario)):
        for container in containers(spec):
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            for probe_kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container.get(probe_kind) or {}
                handler = probe.get("httpGet") or probe.get("tcpSocket")
                if handler:
                    assert handler["port"] in ports or handler["port"] in ports.values(), (
                        f"{name} {container['name']} {probe_kind} uses port {handler['port']} it does not declare"
                    )


def test_services_probe_healthz_for_liveness_and_readyz_for_readiness(helm):
    for name, spec, labels in pod_specs(render(helm)):
        if labels["app.kubernetes.io/component"] in ("producer", "consumer"):
            container = spec["containers"][0]
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert container_ports(spec) == {"http": 8080}, name


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_selectors_never_contain_labels_that_change_on_upgrade(helm, scenario: Path):
    for doc in render(helm, scenario):
        spec = doc.get("spec") or {}
        selector = spec.get("selector") if doc["kind"] == "Service" else (spec.get("selector") or {}).get("matchLabels")
        if selector:
            assert not VOLATILE_LABELS & set(selector), f"{doc['kind']}/{doc['metadata']['name']}: {selector}"


def test_every_object_carries_the_recommended_labels(helm):
    for doc in render(helm):
        labels = doc["metadata"].get("labels", {})
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ):
            assert key in labels, f"{doc['kind']}/{doc['metadata']['name']} lacks {key}"

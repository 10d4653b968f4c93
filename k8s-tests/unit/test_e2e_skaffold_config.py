"""skaffold.yaml, checked offline: the schema (as written and with each profile applied) and its wiring."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "k8s-tests" / "schemas" / "skaffold-v4beta13.json").read_text())
CONFIG = yaml.safe_load((REPO / "skaffold.yaml").read_text())
PROFILES = {p["name"]: p for p in CONFIG["profiles"]}


def errors(document: dict[str, Any]) -> list[str]:
    return [f"{list(e.path)}: {e.message[:200]}" for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(document)]


def _walk(document: Any, path: str) -> tuple[Any, str]:
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")]
    for part in parents:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document, last


def apply_profile(config: dict[str, Any], name: str) -> dict[str, Any]:
    """``config`` with profile ``name`` applied as skaffold does: replaced sections, then JSON patches."""
    profile = PROFILES[name]
    result = copy.deepcopy({k: v for k, v in config.items() if k != "profiles"})
    for section in ("build", "deploy", "manifests", "portForward", "test"):
        if section in profile:
            merged = {**result.get(section, {}), **profile[section]} if section == "build" else profile[section]
            result[section] = copy.deepcopy(merged)
    for patch in profile.get("patches", []):
        parent, key = _walk(result, patch["path"])
        if patch["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if key == "-" else int(key), copy.deepcopy(patch["value"]))
            else:
                parent[key] = copy.deepcopy(patch["value"])
        elif patch["op"] == "remove":
            del parent[int(key) if isinstance(parent, list) else key]
        else:
            raise AssertionError(f"unexpected patch op {patch['op']!r}")
    return result


def chart_value_keys() -> set[str]:
    def keys(node: Any, prefix: str) -> set[str]:
        if not isinstance(node, dict) or not node:
            return {prefix}
        return {prefix} | {k for key, value in node.items() for k in keys(value, f"{prefix}.{key}" if prefix else key)}

    return keys(yaml.safe_load((REPO / "charts" / "sluice" / "values.yaml").read_text()), "")


def test_skaffold_yaml_is_valid_against_the_schema_of_the_pinned_skaffold():
    # The newest config version that skaffold SKAFFOLD_VERSION (v2.16.1, the Makefile's) reads.
    assert CONFIG["apiVersion"] == "skaffold/v4beta13"
    assert errors(CONFIG) == []


def test_the_schema_check_catches_a_removed_field():
    # Given a release using artifactOverrides, gone since v2 (setValueTemplates replaced it)
    broken = copy.deepcopy(CONFIG)
    broken["manifests"]["helm"]["releases"][0]["artifactOverrides"] = {"image": "sluice/producer"}
    assert errors(broken)


@pytest.mark.parametrize("profile", ["kind", "local-broker", "monitoring", "ci"])
def test_each_profile_applied_is_still_valid(profile):
    assert errors(apply_profile(CONFIG, profile)) == []


def test_kind_and_monitoring_apply_together_and_sluice_waits_for_both_charts():
    applied = apply_profile({**apply_profile(CONFIG, "kind"), "profiles": CONFIG["profiles"]}, "monitoring")
    releases = {r["name"]: r for r in applied["manifests"]["helm"]["releases"]}
    assert set(releases) == {"sluice", "kube-prometheus-stack", "keda"}
    assert releases["sluice"]["dependsOn"] == ["kube-prometheus-stack", "keda"]
    assert releases["sluice"]["setValueTemplates"]["monitoring.enabled"] == "true"
    assert releases["sluice"]["setValues"]["consumer.extraEnv[0].value"] == "/tmp/dev"
    assert all(r["version"] for name, r in releases.items() if name != "sluice")


def test_every_artifact_builds_from_services_with_its_own_dockerfile():
    for artifact in CONFIG["build"]["artifacts"]:
        service = artifact["image"].split("/")[1]
        assert artifact["context"] == "services"
        assert (REPO / "services" / artifact["docker"]["dockerfile"]) == REPO / "services" / service / "Dockerfile"
        assert (REPO / "services" / artifact["docker"]["dockerfile"]).is_file()


def test_image_templates_name_the_built_artifacts():
    images = {re.sub(r"[^A-Za-z0-9]", "_", a["image"]) for a in CONFIG["build"]["artifacts"]}
    templates = CONFIG["manifests"]["helm"]["releases"][0]["setValueTemplates"]
    referenced = set(re.findall(r"\{\{\.IMAGE_(?:REPO|TAG)_(\w+)\}\}", " ".join(templates.values())))
    assert referenced == images
    for service in ("producer", "consumer"):
        assert {f"{service}.image.repository", f"{service}.image.tag"} <= set(templates)


@pytest.mark.parametrize("profile", [None, "kind", "local-broker", "monitoring", "ci"])
def test_every_chart_value_skaffold_sets_exists_in_the_chart(profile):
    applied = CONFIG if profile is None else apply_profile(CONFIG, profile)
    sluice = next(r for r in applied["manifests"]["helm"]["releases"] if r["name"] == "sluice")
    known = chart_value_keys()
    keys = {re.sub(r"\[\d+\]\..*$", "", key) for key in {**sluice.get("setValues", {}), **sluice["setValueTemplates"]}}
    assert keys - known == set()


def test_python_sync_covers_each_services_packages_and_its_hook_compiles():
    for artifact in CONFIG["build"]["artifacts"]:
        service = artifact["image"].split("/")[1]
        sources = {rule["src"] for rule in artifact["sync"]["manual"]}
        assert sources == {"common/src/**/*.py", f"{service}/src/**/*.py"}
        assert {rule["dest"] for rule in artifact["sync"]["manual"]} == {"/tmp/dev"}
        command = artifact["sync"]["hooks"]["after"][0]["container"]["command"]
        assert command[:2] == ["python3", "-c"]
        compile(command[2], "sync-hook", "exec")


def test_port_forwards_reach_the_ingest_the_management_ui_and_grafana():
    ports = {(f["resourceName"], f["port"]) for f in CONFIG["portForward"]}
    assert ports == {("sluice-producer", 8080), ("sluice-rabbitmq", 15672)}
    grafana = PROFILES["monitoring"]["portForward"]
    assert [(f["resourceName"], f["localPort"]) for f in grafana] == [("kube-prometheus-stack-grafana", 3000)]

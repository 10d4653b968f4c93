"""Every rendered object is valid offline: core kinds for Kubernetes 1.30-1.34 (strict), custom
resources against their CRD's schema (schemas/, see SOURCES.md)."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from chartlib import K8S_VERSIONS, SCENARIOS, render

SCHEMAS = Path(__file__).resolve().parent / "schemas"
#: Only these API groups are custom resources; anything else must be a core Kubernetes kind.
CRD_GROUPS = {"keda.sh", "monitoring.coreos.com"}


def crd_schema_path(doc: dict[str, Any]) -> Path:
    group, _, version = doc["apiVersion"].rpartition("/")
    return SCHEMAS / group / f"{doc['kind'].lower()}_{version}.json"


def _go_regex(obj: dict[str, Any]) -> dict[str, Any]:
    """Move a Go/RE2 inline flag after '^' ('^(?i)a') to the front, where Python's `re` accepts it."""
    if isinstance(obj.get("pattern"), str):
        obj["pattern"] = re.sub(r"^\^(\(\?[a-zA-Z]+\))", r"\1^", obj["pattern"])
    return obj


@functools.cache
def crd_validator(path: Path) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(path.read_text(), object_hook=_go_regex))


def is_custom(doc: dict[str, Any]) -> bool:
    return doc["apiVersion"].rpartition("/")[0] in CRD_GROUPS


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_core_objects_are_valid_for_each_kubernetes_version(helm, scenario: Path, version: str):
    errors = []
    for doc in render(helm, scenario):
        if is_custom(doc):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, e.path))}: {e.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_custom_resources_match_their_crd_schema(helm, scenario: Path):
    errors = []
    for doc in filter(is_custom, render(helm, scenario)):
        path = crd_schema_path(doc)
        assert path.is_file(), f"no vendored schema for {doc['apiVersion']} {doc['kind']} ({path.name})"
        errors += [
            f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, e.path))}: {e.message}"
            for e in crd_validator(path).iter_errors(doc)
        ]
    assert not errors, "\n".join(errors)


def test_keda_scenario_renders_the_custom_resources_the_schemas_check(helm):
    # Given the KEDA scenario, Then both CRD kinds are rendered (so the test above checked them)
    keda = next(p for p in SCENARIOS if "keda" in p.name)
    kinds = {d["kind"] for d in render(helm, keda) if is_custom(d)}
    assert kinds == {"ScaledObject", "TriggerAuthentication"}


def test_monitoring_scenario_renders_the_custom_resources_the_schemas_check(helm):
    # Given the monitoring scenario, Then the Prometheus Operator kinds are rendered and checked above
    monitoring = next(p for p in SCENARIOS if "monitoring" in p.name)
    kinds = {d["kind"] for d in render(helm, monitoring) if is_custom(d)}
    assert kinds == {"ServiceMonitor", "PrometheusRule"}

"""Every Secret and ConfigMap a pod or autoscaler refers to is rendered by the chart, or is one the
values name and document as user-provided ("you provide")."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import CHART, SCENARIOS, containers, of_kind, pod_specs, render, values_table

#: Values that name a Secret or ConfigMap the user creates before installing.
USER_PROVIDED = [
    ("rabbitmq", "auth", "existingSecret"),
    ("externalBroker", "existingSecret"),
    ("config", "amqp", "tls", "existingSecret"),
    ("producer", "ingest", "auth", "existingSecret"),
    ("config", "schemasConfigMap"),
]


def references(docs: list[dict[str, Any]]) -> Iterator[tuple[str, str, str | None, str]]:
    """(kind, name, key or None, where) of every Secret/ConfigMap reference."""
    for where, spec, _ in pod_specs(docs):
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                yield "Secret", volume["secret"]["secretName"], None, where
            if "configMap" in volume:
                yield "ConfigMap", volume["configMap"]["name"], None, where
        for container in containers(spec):
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                if "secretKeyRef" in source:
                    yield "Secret", source["secretKeyRef"]["name"], source["secretKeyRef"]["key"], where
                if "configMapKeyRef" in source:
                    yield "ConfigMap", source["configMapKeyRef"]["name"], source["configMapKeyRef"]["key"], where
            for source in container.get("envFrom", []):
                for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                    if field in source:
                        yield kind, source[field]["name"], None, where
    for auth in of_kind(docs, "TriggerAuthentication"):
        for ref in auth["spec"].get("secretTargetRef", []):
            yield "Secret", ref["name"], ref["key"], f"TriggerAuthentication/{auth['metadata']['name']}"


def user_provided_names(scenario: Path | None) -> set[str]:
    values = yaml.safe_load(scenario.read_text()) if scenario else {}
    names = set()
    for path in USER_PROVIDED:
        node: Any = values or {}
        for key in path:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if node:
            names.add(node)
    return names


def data_keys(doc: dict[str, Any]) -> set[str]:
    return set(doc.get("data") or {}) | set(doc.get("stringData") or {})


@pytest.mark.parametrize("scenario", [None, *SCENARIOS], ids=lambda p: p.name if p else "defaults")
def test_every_referenced_secret_or_configmap_is_rendered_or_user_provided(helm, scenario: Path | None):
    docs = render(helm, *([scenario] if scenario else []))
    rendered = {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("Secret", "ConfigMap")}
    provided = user_provided_names(scenario)
    for kind, name, key, where in references(docs):
        if (kind, name) in rendered:
            assert key is None or key in data_keys(rendered[kind, name]), f"{where}: {kind} {name} has no key {key}"
        else:
            assert name in provided, f"{where} refers to {kind} {name}, which is neither rendered nor user-provided"


def test_user_provided_objects_are_documented_as_such_in_values():
    comments = values_table.comments_by_key((CHART / "values.yaml").read_text())
    for path in USER_PROVIDED:
        assert "you provide" in (comments.get(path) or ""), ".".join(path)


def test_existing_broker_secret_replaces_the_generated_one(helm):
    docs = render(helm, rabbitmq__auth__existingSecret="my-broker")
    assert not of_kind(docs, "Secret")
    secrets = {name for kind, name, _, _ in references(docs) if kind == "Secret"}
    assert secrets == {"my-broker"}


def test_generated_secret_has_a_random_password_and_never_guest(helm):
    secret = of_kind(render(helm), "Secret")[0]
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["username"] == "sluice"
    assert len(data["password"]) == 32 and data["password"] != "guest"
    assert len(data["erlang-cookie"]) == 64


def test_generated_secret_outlives_an_uninstall_only_with_the_volumes_that_need_it(helm):
    kept = of_kind(render(helm), "Secret")[0]
    assert kept["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # On an emptyDir the broker's data goes with the release: so do the credentials it was created with.
    transient = of_kind(render(helm, rabbitmq__persistence__enabled=False), "Secret")[0]
    assert "helm.sh/resource-policy" not in (transient["metadata"].get("annotations") or {})


def test_services_read_the_broker_password_only_through_a_secret_reference(helm):
    docs = render(helm)
    password = base64.b64decode(of_kind(docs, "Secret")[0]["data"]["password"]).decode()
    for doc in docs:
        if doc["kind"] != "Secret":
            assert password not in yaml.safe_dump(doc), f"{doc['kind']}/{doc['metadata']['name']} holds the password"

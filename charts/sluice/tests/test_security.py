"""Every pod passes the Pod Security Standard "restricted" (plus a read-only root filesystem), only
the broker mounts a ServiceAccount token, secrets live only in Secrets and reach pods as mounts or
secretKeyRefs, and the ingest can be locked down (bearer token, rate limit, NetworkPolicy)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import CHART, SCENARIOS, containers, of_kind, one, pod_specs, render, render_error

#: Volume types "restricted" allows.
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec breaks the "restricted" profile (kubernetes.io/docs/concepts/security/pod-security-standards)."""
    problems = []
    pod = spec.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{field} is set")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']} is {kinds}")
    if (pod.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("pod seccompProfile is not RuntimeDefault")
    for c in containers(spec):
        ctx = c.get("securityContext", {})
        name = c["name"]
        if ctx.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if ctx.get("runAsUser", pod.get("runAsUser")) == 0:
            problems.append(f"{name}: runs as uid 0")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if ctx.get("privileged"):
            problems.append(f"{name}: privileged")
        capabilities = ctx.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
        if c.get("ports") and any("hostPort" in p for p in c["ports"]):
            problems.append(f"{name}: uses a hostPort")
    return problems


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_every_pod_meets_the_restricted_pod_security_standard(helm, scenario: Path):
    problems = [
        f"{where}: {p}" for where, spec, _ in pod_specs(render(helm, scenario)) for p in restricted_violations(spec)
    ]
    assert not problems, "\n".join(problems)


def test_restricted_check_catches_a_root_container():
    # Given a pod spec with a container that may escalate, When checked, Then it is reported
    spec = {
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": True},
        "containers": [{"name": "app", "securityContext": {"runAsUser": 0}}],
    }
    assert "app: runs as uid 0" in restricted_violations(spec)
    assert "app: allowPrivilegeEscalation is not false" in restricted_violations(spec)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_no_pod_mounts_a_service_account_token(helm, scenario: Path):
    # RabbitMQ 4.1+ peer discovery needs no API access; only a 4.0 broker's does (test_broker.py)
    for where, spec, _labels in pod_specs(render(helm, scenario)):
        assert spec.get("automountServiceAccountToken") is False, where


def test_broker_without_peer_discovery_needs_no_token_or_rbac(helm):
    docs = render(helm, rabbitmq__peerDiscovery__enabled=False)
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    for where, spec, _ in pod_specs(docs):
        assert spec["automountServiceAccountToken"] is False, where


def _env(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for c in containers(spec) for e in c.get("env", [])}


def _mounts(spec: dict[str, Any]) -> dict[str, str]:
    """Mount path → the Secret it comes from, for every Secret volume a container mounts."""
    secrets = {v["name"]: v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    return {m["mountPath"]: secrets[m["name"]] for c in containers(spec) for m in c.get("volumeMounts", [])
            if m["name"] in secrets}


@pytest.mark.parametrize("scenario", [None, *SCENARIOS], ids=lambda p: p.name if p else "defaults")
def test_no_secret_value_appears_outside_a_secret(helm, scenario: Path | None):
    # Given every value the chart's own Secrets carry (generated passwords, cookie, URLs)
    docs = render(helm, *([scenario] if scenario else []))
    values = {base64.b64decode(v).decode() for d in of_kind(docs, "Secret") for v in (d.get("data") or {}).values()}
    values |= {v for d in of_kind(docs, "Secret") for v in (d.get("stringData") or {}).values()}
    secret_values = {v for v in values if len(v) >= 12}
    if scenario is None:
        assert len(secret_values) >= 4  # password, cookie and two URLs: the search has something to find
    # Then none of them is in a ConfigMap, an env value, an annotation or anything else rendered
    elsewhere = yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"])
    assert not [v[:4] + "..." for v in secret_values if v in elsewhere]


def test_the_ingest_token_reaches_only_the_producer_and_the_test_pod_as_a_mounted_secret(helm):
    docs = render(helm, CHART / "ci" / "08-ingest-security-values.yaml")
    for where, spec, labels in pod_specs(docs):
        env, mounts = _env(spec), _mounts(spec)
        component = labels["app.kubernetes.io/component"]
        if component in ("producer", "test"):
            variable = "SLUICE_INGEST_TOKEN_FILE" if component == "producer" else "SLUICE_TEST_INGEST_TOKEN_FILE"
            assert env[variable]["value"] == "/etc/sluice/ingest-auth/token", where
            assert mounts["/etc/sluice/ingest-auth"] == "sluice-ingest-token", where
        else:
            assert "sluice-ingest-token" not in mounts.values() and "SLUICE_INGEST_TOKEN_FILE" not in env, where
    producer = _env(one(docs, "Deployment", "sluice-producer")["spec"]["template"]["spec"])
    assert (producer["SLUICE_INGEST_RATE_LIMIT"]["value"], producer["SLUICE_INGEST_RATE_BURST"]["value"]) == ("200", "400")


def test_without_a_token_secret_the_ingest_has_no_token_setting(helm):
    for where, spec, _ in pod_specs(render(helm)):
        assert "SLUICE_INGEST_TOKEN_FILE" not in _env(spec) and "/etc/sluice/ingest-auth" not in _mounts(spec), where


def test_broker_tls_material_is_mounted_from_its_secret_into_every_service_pod(helm):
    docs = render(helm, CHART / "ci" / "03-external-broker-values.yaml", config__amqp__tls__certKey="tls.crt",
                  config__amqp__tls__keyKey="tls.key")
    services = [(w, s) for w, s, labels in pod_specs(docs) if labels["app.kubernetes.io/component"] != "test"]
    assert services
    for where, spec in services:
        env = _env(spec)
        assert _mounts(spec)["/etc/sluice/amqp-tls"] == "sluice-broker-tls", where
        assert {k: env[k]["value"] for k in ("SLUICE_AMQP_CA_FILE", "SLUICE_AMQP_CERT_FILE", "SLUICE_AMQP_KEY_FILE")} == {
            "SLUICE_AMQP_CA_FILE": "/etc/sluice/amqp-tls/ca.crt", "SLUICE_AMQP_CERT_FILE": "/etc/sluice/amqp-tls/tls.crt",
            "SLUICE_AMQP_KEY_FILE": "/etc/sluice/amqp-tls/tls.key"}, where


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"config__amqp__tls__existingSecret": "tls"}, "the bundled RabbitMQ listens without TLS"),
        ({"rabbitmq__enabled": False, "externalBroker__enabled": True, "externalBroker__existingSecret": "mq",
          "config__amqp__tls__existingSecret": "tls", "config__amqp__tls__certKey": "tls.crt"}, "set both"),
    ],
    ids=["tls-with-bundled-broker", "cert-without-key"],
)
def test_tls_settings_the_services_would_refuse_fail_the_install(helm, sets, message):
    assert message in render_error(helm, **sets)


def test_ingest_network_policy_admits_only_the_release_monitoring_and_the_configured_peers(helm):
    docs = render(helm, CHART / "ci" / "08-ingest-security-values.yaml")
    policy = one(docs, "NetworkPolicy", "sluice-producer")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http"}]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "sluice", "app.kubernetes.io/instance": "sluice"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
    ]
    # and the management port of the broker stays closed to those ingest peers
    broker = one(docs, "NetworkPolicy", "sluice-rabbitmq")
    management = [peer for r in broker["spec"]["ingress"] for p in r["ports"] if p["port"] == "management" for peer in r["from"]]
    assert {"namespaceSelector": {}} not in management
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} not in management

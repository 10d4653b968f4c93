"""Every pod passes the Pod Security Standard "restricted" (plus a read-only root filesystem), and
only the broker mounts a ServiceAccount token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chartlib import SCENARIOS, containers, pod_specs, render

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
def test_only_the_broker_mounts_a_service_account_token(helm, scenario: Path):
    for where, spec, labels in pod_specs(render(helm, scenario)):
        mounts = spec.get("automountServiceAccountToken")
        if labels["app.kubernetes.io/component"] == "rabbitmq":
            assert mounts is True, where  # peer discovery reads endpoints
        else:
            assert mounts is False, where


def test_broker_without_peer_discovery_needs_no_token_or_rbac(helm):
    docs = render(helm, rabbitmq__peerDiscovery__enabled=False)
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    for where, spec, _ in pod_specs(docs):
        assert spec["automountServiceAccountToken"] is False, where

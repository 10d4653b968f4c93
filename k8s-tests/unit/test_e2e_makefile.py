"""The Makefile's Kubernetes targets: listed by `make help`, tools checked with install hints, versions pinned once."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TARGETS = ["kind-up", "kind-tools", "kind-node-image", "kind-load", "deploy", "keda", "kind-keda", "kind-prometheus",
           "metrics-server", "monitoring", "e2e", "chaos-kind", "kind-e2e", "kind-down", "skaffold-tool", "dev"]


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False, env=env)


def test_make_help_lists_every_kubernetes_target_in_its_section():
    result = make("help")
    assert result.returncode == 0, result.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    section = text.split("Kubernetes: kind, skaffold and the end-to-end suite")[1]
    listed = re.findall(r"^  (\S+)\s+\S", section, re.MULTILINE)
    assert listed == TARGETS


@pytest.mark.parametrize("target", ["kind-up", "kind-load", "kind-keda", "kind-prometheus", "metrics-server", "kind-down",
                                    "chaos-kind", "dev"])
def test_targets_needing_kind_or_skaffold_check_them_first(target):
    recipe = make("-n", target, "VENV=.venv").stdout
    assert recipe.splitlines()[0].startswith("scripts/require-tools.sh")


def test_a_missing_tool_fails_with_the_pinned_install_command(tmp_path):
    # Given a PATH with bash and coreutils but no kind
    env = {**os.environ, "PATH": "/usr/bin:/bin", "KIND_VERSION": "v9.9.9"}
    if Path("/usr/bin/kind").exists() or Path("/bin/kind").exists():
        pytest.skip("kind is installed system-wide")
    result = subprocess.run([str(REPO / "scripts" / "require-tools.sh"), "kind"], capture_output=True, text=True,
                            env=env, timeout=30, check=False)
    assert result.returncode != 0
    assert "kind.sigs.k8s.io/dl/v9.9.9/kind-linux-amd64" in result.stderr


def test_chart_versions_are_the_same_in_the_makefile_and_skaffold():
    makefile = (REPO / "Makefile").read_text()
    pinned = dict(re.findall(r"^(\w+_VERSION) \?= (\S+)$", makefile, re.MULTILINE))
    profile = next(p for p in yaml.safe_load((REPO / "skaffold.yaml").read_text())["profiles"] if p["name"] == "monitoring")
    charts = {patch["value"]["remoteChart"]: patch["value"]["version"] for patch in profile["patches"]
              if isinstance(patch.get("value"), dict) and "remoteChart" in patch["value"]}
    assert charts == {"keda": pinned["KEDA_VERSION"], "kube-prometheus-stack": pinned["KUBE_PROMETHEUS_STACK_VERSION"]}


def test_the_kind_config_is_a_kind_cluster_with_workers():
    config = yaml.safe_load((REPO / "k8s-tests" / "kind" / "cluster.yaml").read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert [n["role"] for n in config["nodes"]].count("worker") >= 1


def test_make_monitoring_configures_kube_prometheus_stack_as_the_skaffold_profile_does():
    recipe = make("-n", "monitoring", "HELM=helm").stdout
    kps_command = recipe[recipe.index("kube-prometheus-stack"):]
    from_make = dict(re.findall(r"--set (\S+)=(\S+)", kps_command))
    profile = next(p for p in yaml.safe_load((REPO / "skaffold.yaml").read_text())["profiles"] if p["name"] == "monitoring")
    release = next(p["value"] for p in profile["patches"]
                   if isinstance(p.get("value"), dict) and p["value"].get("remoteChart") == "kube-prometheus-stack")
    assert from_make == release["setValues"]

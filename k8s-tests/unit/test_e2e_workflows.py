"""The GitHub workflows, checked offline: the vendored workflow schema and what each job runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_both_workflows_are_valid_github_workflows():
    result = check_jsonschema(WORKFLOWS / "ci.yml", WORKFLOWS / "e2e.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_job_without_steps(tmp_path):
    broken = load("ci.yml")
    broken["jobs"]["lint"].pop("steps")
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert check_jsonschema(path).returncode != 0


def test_ci_runs_lint_unit_integration_with_a_rabbitmq_service_and_charts():
    jobs = load("ci.yml")["jobs"]
    assert set(jobs) == {"lint", "unit", "integration", "chart"}
    integration = jobs["integration"]
    broker = integration["services"]["rabbitmq"]
    # Every tested RabbitMQ version, each a pinned official image (never a floating tag)
    assert integration["strategy"]["matrix"]["rabbitmq"] == ["4.3.6", "4.0.5"]
    assert broker["image"] == "rabbitmq:${{ matrix.rabbitmq }}-management"
    assert integration["env"]["SLUICE_RABBITMQ_IMAGE"] == broker["image"]
    assert "--health-cmd" in broker["options"]
    runs = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in jobs.items()}
    assert "make lint" in runs["lint"]
    assert "k8s-tests/unit" in runs["unit"] and "k8s-tests/scenarios" in runs["integration"]
    assert "charts/sluice/tests" in runs["chart"]


def test_e2e_creates_kind_from_the_repos_config_loads_images_runs_the_suite_and_dumps_on_failure():
    workflow = load("e2e.yml")
    steps = workflow["jobs"]["kind"]["steps"]
    kind = next(s for s in steps if s.get("uses", "").startswith("helm/kind-action@"))
    assert (REPO / kind["with"]["config"]).is_file()
    assert kind["with"]["cluster_name"] == "${{ env.KIND_CLUSTER }}"
    runs = [s.get("run", "") for s in steps]
    order = [next(i for i, r in enumerate(runs) if needle in r) for needle in ("docker build", "make kind-load", "make e2e")]
    assert order == sorted(order)
    dump = next(s for s in steps if s.get("if") == "failure()")
    assert "kubectl logs" in dump["run"] and "events" in dump["run"]


def test_pinned_versions_match_the_makefile():
    makefile = (REPO / "Makefile").read_text()
    pinned = dict(re.findall(r"^(\w+_VERSION|KIND_CLUSTER|KIND_NODE_IMAGE) \?= (\S+)$", makefile, re.MULTILINE))
    env = load("e2e.yml")["env"]
    for key in ("KIND_VERSION", "KUBECTL_VERSION", "KIND_NODE_IMAGE", "KIND_CLUSTER", "KEDA_VERSION"):
        assert env[key] == pinned[key], key


def test_kind_action_creates_the_cluster_on_the_pinned_node_image_and_kubectl():
    steps = load("e2e.yml")["jobs"]["kind"]["steps"]
    kind = next(s for s in steps if s.get("uses", "").startswith("helm/kind-action@"))
    assert kind["with"]["node_image"] == "${{ env.KIND_NODE_IMAGE }}"
    assert kind["with"]["kubectl_version"] == "${{ env.KUBECTL_VERSION }}"


def test_the_pinned_node_image_is_the_kubernetes_minor_the_local_node_image_builds():
    makefile = (REPO / "Makefile").read_text()
    node_image = re.search(r"^KIND_NODE_IMAGE \?= kindest/node:(v\d+\.\d+)\.\d+@sha256:[0-9a-f]{64}$", makefile, re.MULTILINE)
    assert node_image, "KIND_NODE_IMAGE must pin kindest/node by tag and digest"
    local = re.search(r"^KUBERNETES_VERSION=(v\d+\.\d+)\.\d+$", (REPO / "scripts/kind/versions.env").read_text(), re.MULTILINE)
    assert local and local.group(1) == node_image.group(1)

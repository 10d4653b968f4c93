"""scripts/kind: the local kind node image is named for its inputs, and kind-up only builds it for its Kubernetes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})


def print_name(scripts: Path) -> str:
    result = run(scripts / "kind" / "build-node-image.sh", "--print-name")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_image_is_tagged_with_the_kubernetes_version_and_a_stable_input_hash():
    name = print_name(REPO / "scripts")
    assert re.fullmatch(r"sluice\.local/kind-node:v1\.36\.\d+-[0-9a-f]{12}", name)
    assert print_name(REPO / "scripts") == name


def test_an_edited_build_script_or_version_changes_the_tag_and_an_edited_doc_does_not(tmp_path):
    # Given a copy of the scripts
    scripts = tmp_path / "scripts"
    shutil.copytree(REPO / "scripts", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    before = print_name(scripts)
    # When only the docker wrapper and a README change, Then the image stays the same
    (scripts / "kind" / "docker").write_text((scripts / "kind" / "docker").read_text() + "\n# note\n")
    (scripts / "kind" / "README.md").write_text("notes\n")
    assert print_name(scripts) == before
    # When a pinned version changes, Then the tag changes
    versions = scripts / "kind" / "versions.env"
    versions.write_text(versions.read_text().replace("COREDNS_MODULE_VERSION=v1.14.2", "COREDNS_MODULE_VERSION=v1.14.3"))
    assert print_name(scripts) != before


def test_kind_up_refuses_a_node_image_of_another_kubernetes_than_the_local_build():
    result = run(REPO / "scripts" / "kind" / "node-image.sh",
                 env={"KIND_NODE_IMAGE": "kindest/node:v1.99.0@sha256:" + "0" * 64, "KIND_NODE_PULL": "0"})
    assert result.returncode != 0
    assert "versions.env" in result.stderr and "v1.99.0" in result.stderr

"""scripts/kind/docker: the `docker` kind finds first on its PATH maps --privileged and nothing else."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WRAPPER_DIR = REPO / "scripts" / "kind"


@pytest.fixture
def fake_docker(tmp_path: Path) -> Path:
    """A `docker` later on PATH that prints each argument it gets on a line of its own."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    docker.chmod(0o755)
    return bin_dir


def run(fake_docker: Path, mode: str, *args: str) -> list[str]:
    env = {**os.environ, "PATH": f"{WRAPPER_DIR}:{fake_docker}:/usr/bin:/bin", "KIND_DOCKER_PRIVILEGED": mode}
    result = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.splitlines()


def test_run_privileged_becomes_the_equivalent_flags(fake_docker):
    # Given kind's node container flags
    args = ["run", "--name", "n", "--cgroupns=private", "--privileged", "--tmpfs", "/tmp", "kindest/node"]
    # When the wrapper maps --privileged
    out = run(fake_docker, "map", *args)
    # Then every capability but SYS_RESOURCE, no confinement and all devices replace it
    assert "--privileged" not in out
    for flag in ("--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--security-opt=seccomp=unconfined",
                 "--security-opt=apparmor=unconfined", "--security-opt=systempaths=unconfined",
                 "--device-cgroup-rule=a *:* rwm"):
        assert flag in out
    # and the rest, kind's own cgroup namespace included, passes through in order
    assert out[:4] == ["run", "--name", "n", "--cgroupns=private"] and out[-3:] == ["--tmpfs", "/tmp", "kindest/node"]


def test_exec_privileged_drops_the_flag(fake_docker):
    assert run(fake_docker, "map", "exec", "--privileged", "-i", "node", "ctr", "version") == [
        "exec", "-i", "node", "ctr", "version"]


def test_everything_passes_through_where_privileged_works(fake_docker):
    args = ["run", "--cgroupns=private", "--privileged", "img"]
    assert run(fake_docker, "pass", *args) == args


def test_commands_without_privileged_pass_through_unchanged(fake_docker):
    args = ["network", "create", "--cgroupns=private", "kind"]
    assert run(fake_docker, "map", *args) == args

"""Render the chart with the real `helm` binary and look through the manifests it produces.

The chart tests are helm-unittest's shape in pytest: each renders with the fewest values that show
one behaviour and asserts on the parsed objects. Rendering is cached, since most tests read the
same few renders.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = Path(__file__).resolve().parents[1]
#: The scenario values files, rendered by every matrix test (prometheus-community's ci/ layout).
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
#: Kubernetes minor versions the manifests must be valid for (Chart.yaml kubeVersion >= 1.30).
K8S_VERSIONS = ["1.30", "1.31", "1.32", "1.33", "1.34"]
RELEASE = "sluice"
NAMESPACE = "sluice"
#: True on CI, where a missing tool fails the tests instead of skipping them.
CI = bool(os.environ.get("CI"))

__all__ = [
    "CHART",
    "CI",
    "K8S_VERSIONS",
    "NAMESPACE",
    "RELEASE",
    "REPO",
    "SCENARIOS",
    "ToolUnavailable",
    "RenderError",
    "containers",
    "find_helm",
    "of_kind",
    "one",
    "pod_specs",
    "render",
    "render_error",
    "run_script",
    "skip_or_fail",
    "values_table",
]


def _load_values_table():  # type: ignore[no-untyped-def]
    """scripts/values_table.py, which generates the README's values table, as a module."""
    spec = importlib.util.spec_from_file_location("sluice_chart_values_table", CHART / "scripts" / "values_table.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


#: The README values-table generator (comments_by_key, rows, table_for, with_table, ...).
values_table = _load_values_table()


class ToolUnavailable(Exception):
    """A tool the tests need (helm, Docker, the RabbitMQ test image) could not be found or set up."""


class RenderError(Exception):
    """`helm template` failed; the message is helm's stderr."""


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it on CI, where every tool must be there."""
    if CI:
        pytest.fail(reason)
    pytest.skip(reason)


def run_script(name: str, *args: str, **env: str) -> str:
    """The last stdout line of scripts/<name> (the tool scripts print their result there).

    Raises:
        ToolUnavailable: the script failed; the message has the end of its stderr.
    """
    result = subprocess.run(
        [str(REPO / "scripts" / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=1200,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ToolUnavailable(f"{' '.join(['scripts/' + name, *args])} failed: {result.stderr.strip()[-500:]}")
    return lines[-1]


@functools.cache
def find_helm(major: int) -> str:
    """Path of a helm binary of that major version, from scripts/get-helm.sh.

    Raises:
        ToolUnavailable: no helm on PATH and none could be installed.
    """
    return run_script("get-helm.sh", HELM_MAJOR=str(major))


def _set_args(values: dict[str, Any]) -> list[str]:
    args = []
    for key, value in values.items():
        if isinstance(value, (list, dict)):
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        else:
            args += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return args


@functools.cache
def _template(helm: str, files: tuple[Path, ...], sets_json: str) -> str:
    command = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in files:
        command += ["--values", str(path)]
    command += _set_args(json.loads(sets_json))
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RenderError(result.stderr)
    return result.stdout


def render(helm: str, *files: Path, **sets: Any) -> list[dict[str, Any]]:
    """The objects `helm template` renders for these values files and `--set key=value` pairs.

    Keyword names use `__` for dots: ``render(helm, keda__enabled=True)`` is ``--set keda.enabled=true``;
    lists and dicts go through ``--set-json``. Renders are cached: treat the result as read-only.

    Raises:
        RenderError: helm refused the values (schema, validation) or the templates failed.
    """
    dotted = {k.replace("__", "."): v for k, v in sets.items()}
    text = _template(helm, tuple(files), json.dumps(dotted, sort_keys=True))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_error(helm: str, *files: Path, **sets: Any) -> str:
    """helm's error message for values it must refuse; fails the test if the render succeeds."""
    try:
        render(helm, *files, **sets)
    except RenderError as e:
        return str(e)
    raise AssertionError(f"helm template accepted values it should refuse: {sets}")


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The objects of one kind."""
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of that kind and name; fails if there is not exactly one."""
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name!r} rendered"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(``Kind/name``, pod spec, pod labels) of every pod the manifests create."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = doc["spec"]["template"]
            yield f"{doc['kind']}/{doc['metadata']['name']}", template["spec"], template["metadata"].get("labels", {})
        elif doc["kind"] == "Pod":
            yield f"Pod/{doc['metadata']['name']}", doc["spec"], doc["metadata"].get("labels", {})


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers and init containers of a pod spec."""
    return list(spec.get("initContainers", [])) + list(spec["containers"])

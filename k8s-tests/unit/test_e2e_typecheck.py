"""The kind deployment cannot run here, so ``make test`` at least imports and type-checks it."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_e2e_package_type_checks_strictly_against_the_kubernetes_client():
    # The kubernetes client ships type hints: mypy checks every call the kind deployment makes.
    env = {**os.environ, "MYPYPATH": os.pathsep.join(["k8s-tests", "testing"])}
    result = subprocess.run([sys.executable, "-m", "mypy", "-p", "sluice_e2e"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_e2e_module_imports():
    import sluice_e2e

    names = {module.name for module in pkgutil.iter_modules(sluice_e2e.__path__)}
    assert {"deployment", "kind", "kind_settings", "local", "portforward", "scenario", "sink_pod"} <= names
    for name in sorted(names):
        importlib.import_module(f"sluice_e2e.{name}")

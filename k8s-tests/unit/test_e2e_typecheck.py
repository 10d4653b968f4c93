"""The kind deployment cannot run here, so ``make test`` at least imports and type-checks it."""

from __future__ import annotations

import os
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
    import sluice_e2e.deployment
    import sluice_e2e.kind
    import sluice_e2e.local
    import sluice_e2e.portforward
    import sluice_e2e.scenario

    assert sluice_e2e.kind.KindDeployment.name == "kind"
    assert {sluice_e2e.local.LocalDeployment.name, sluice_e2e.deployment.Deployment.name} == {"local", "deployment"}
    assert callable(sluice_e2e.portforward.parse_forwarding_line) and callable(sluice_e2e.scenario.applicable)

"""`helm lint --strict` passes for the defaults and every scenario."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from chartlib import CHART, SCENARIOS


def lint(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, "lint", "--strict", str(CHART), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_chart_passes_strict_lint_with_its_defaults(helm):
    result = lint(helm)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_chart_passes_strict_lint_with_each_scenario(helm, scenario: Path):
    result = lint(helm, "--values", str(scenario))
    assert result.returncode == 0, result.stdout + result.stderr

"""The README's configuration table matches the variables the code reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sluice_common.config import VARIABLES

REPO = Path(__file__).resolve().parents[3]


def test_the_readme_configuration_table_is_generated_from_the_variables():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "config_table.py")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_every_variable_the_code_reads_is_declared():
    declared = {v.name for v in VARIABLES}
    sources = (REPO / "services").glob("*/src/**/*.py")
    read = {name for path in sources for name in _sluice_names(path.read_text())}
    assert "SLUICE_AMQP_URL" in read  # the scan sees the sources
    assert read <= declared, f"read but not in VARIABLES (nor the README): {sorted(read - declared)}"


def _sluice_names(text: str) -> set[str]:
    return set(re.findall(r'"(SLUICE_[A-Z0-9_]+)"', text))

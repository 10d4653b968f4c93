"""Collects every chaos round's result and prints the chaos table at the end of the run."""

from __future__ import annotations

import pytest

from sluice_testing.chaos.report import publish
from sluice_testing.chaos.round import RoundResult

_RESULTS: list[RoundResult] = []


@pytest.fixture
def chaos_results() -> list[RoundResult]:
    """The list each round appends its result to, for the table."""
    return _RESULTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _RESULTS:
        terminalreporter.section("chaos table")
    # CHAOS_REPORT names a file to write the table to as well (`make chaos` sets it).
    publish(_RESULTS, terminalreporter.write_line)

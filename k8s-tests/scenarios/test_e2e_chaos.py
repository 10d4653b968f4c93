"""Chaos rounds on the kind cluster: under load, each fault strikes a pod, loses no confirmed event, and its
duplicates stay explainable.

The rounds of ``tests/chaos`` (``sluice_testing.chaos.round``: load, baseline, fault, recovery,
settling, accounting), with the faults striking the chart's pods (``sluice_e2e.chaos``). Kind only:
the local deployment skips, since ``tests/chaos`` runs the same rounds on local processes.
``CHAOS_ROUNDS`` (default 1) sets the rounds per fault; the chaos table is printed after the last
round (and written to the file ``CHAOS_REPORT`` names, if set).
"""

from __future__ import annotations

import pytest

from sluice_e2e.chaos import ROUND_DEADLINE_S
from sluice_e2e.deployment import Deployment
from sluice_e2e.scenario import applicable
from sluice_testing.chaos.faults import FAULTS
from sluice_testing.chaos.report import publish
from sluice_testing.chaos.round import RoundResult, check, rounds_per_fault, run_round


class _ChaosTable:
    """A plugin that prints the table of the rounds' results in pytest's terminal summary, after every test."""

    def __init__(self) -> None:
        self.results: list[RoundResult] = []

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.results:
            terminalreporter.section("chaos table (kind)")
        publish(self.results, terminalreporter.write_line)


@pytest.fixture(scope="module")
def chaos_results(request: pytest.FixtureRequest) -> list[RoundResult]:
    """The list each round appends its result to, for the table."""
    table = _ChaosTable()
    request.config.pluginmanager.register(table)
    return table.results


@pytest.mark.operations("chaos_rig")
@pytest.mark.timeout(ROUND_DEADLINE_S)
@pytest.mark.parametrize("round_number", range(1, rounds_per_fault() + 1))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_pod_fault_under_load_loses_no_confirmed_event(deployment: Deployment, chaos_results: list[RoundResult],
                                                         fault: str, round_number: int) -> None:
    # Given two consumer pods and the producer under load, When the fault strikes a pod and Kubernetes repairs it
    rig = applicable(deployment.chaos_rig)
    seed = round_number * 100 + list(FAULTS).index(fault)
    result = run_round(rig, fault, seed=seed)
    chaos_results.append(result)
    # Then every confirmed event was delivered or dead-lettered, exactly one of the two, the
    # duplicates are within what this fault can cause, and throughput came back
    check(result)

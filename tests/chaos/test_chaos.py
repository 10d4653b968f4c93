"""Chaos rounds: under load, each fault loses no confirmed event and its duplicates stay explainable.

``CHAOS_ROUNDS`` (default 1) sets the rounds per fault; ``make chaos`` runs 4 per fault (24 rounds).
"""

from __future__ import annotations

import os

import pytest

from sluice_testing.chaos.faults import FAULTS
from sluice_testing.chaos.round import run_round

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _rounds() -> int:
    text = os.environ.get("CHAOS_ROUNDS", "1")
    if not text.isdigit() or int(text) < 1:
        raise pytest.UsageError(f"CHAOS_ROUNDS must be a whole number of at least 1, not {text!r}")
    return int(text)


@pytest.mark.parametrize("round_number", range(1, _rounds() + 1))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_under_load_loses_no_confirmed_event(own_broker, chaos_results, fault, round_number):
    # Given two consumers and a producer under load, When the fault strikes and is repaired
    result = run_round(own_broker, fault, seed=round_number * 100 + list(FAULTS).index(fault))
    chaos_results.append(result)
    accounting = result.accounting
    # Then every confirmed event was delivered or dead-lettered, exactly one of the two
    assert accounting.events > 0, "the load had no event confirmed"
    assert accounting.sound, accounting.explain() + "\n" + result.logs
    # and the duplicates are within what this fault can cause
    assert accounting.duplicates <= result.duplicate_budget, accounting.explain()
    # and throughput came back
    assert result.recovery_s is not None, "throughput did not recover\n" + result.logs

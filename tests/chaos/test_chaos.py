"""Chaos rounds: under load, each fault loses no confirmed event and its duplicates stay explainable.

``CHAOS_ROUNDS`` (default 1) sets the rounds per fault; ``make chaos`` runs 4 per fault (24 rounds).
"""

from __future__ import annotations

import pytest

from sluice_testing.chaos.faults import FAULTS
from sluice_testing.chaos.rig import Rig
from sluice_testing.chaos.round import check, rounds_per_fault, run_round

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("round_number", range(1, rounds_per_fault() + 1))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_under_load_loses_no_confirmed_event(own_broker, chaos_results, fault, round_number):
    # Given two consumers and a producer under load, When the fault strikes and is repaired
    seed = round_number * 100 + list(FAULTS).index(fault)
    result = run_round(Rig(own_broker, seed=seed), fault, seed=seed)
    chaos_results.append(result)
    # Then every confirmed event was delivered or dead-lettered, exactly one of the two, the
    # duplicates are within what this fault can cause, and throughput came back
    check(result)

"""How many rounds run, and how long one may take (no broker)."""

from __future__ import annotations

import pytest

from sluice_testing.chaos.round import deadline_s, rounds_per_fault


def test_one_round_per_fault_unless_chaos_rounds_says_otherwise():
    assert rounds_per_fault({}) == 1
    assert rounds_per_fault({"CHAOS_ROUNDS": "4"}) == 4


@pytest.mark.parametrize("text", ["0", "-1", "two", ""])
def test_chaos_rounds_must_be_a_whole_number_of_at_least_one(text):
    with pytest.raises(ValueError, match="CHAOS_ROUNDS"):
        rounds_per_fault({"CHAOS_ROUNDS": text})


def test_a_slower_fault_or_rig_lengthens_the_round_deadline_by_as_much():
    base = deadline_s(fault_s=0, rig_s=0)
    assert base > 0
    assert deadline_s(fault_s=100, rig_s=20) == pytest.approx(base + 120)

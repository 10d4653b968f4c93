"""How the soak measures the time until publishing resumed after a broker fault (no broker needed)."""

from __future__ import annotations

from sluice_testing.soak import resumed_after


def test_confirms_the_dying_broker_still_gave_are_not_the_recovery():
    # Given confirms every 0.1 s, which go on for 0.3 s after the fault, stop, and resume 6 s later
    before = [9.0, 9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9]
    dying = [10.1, 10.2, 10.3]
    back = [16.3, 16.4, 16.5]
    # When the fault started at 10.0, Then publishing resumed 6.3 s after it
    assert resumed_after(10.0, before + dying + back) == 16.3 - 10.0


def test_a_fault_that_stops_confirms_at_once_counts_from_the_fault():
    assert resumed_after(10.0, [9.8, 9.9, 14.0, 14.1]) == 4.0


def test_no_confirm_after_the_fault_has_no_recovery():
    assert resumed_after(10.0, [9.8, 9.9]) is None

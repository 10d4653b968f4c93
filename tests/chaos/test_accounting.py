"""The chaos accounting and recovery measure, on hand-made outcomes (no broker)."""

from __future__ import annotations

from collections import Counter

from sluice_testing.chaos.accounting import Ledger, account, recovery_seconds


def _ledger(confirmed: set[str], *, unconfirmed: set[str] = frozenset(), doomed: set[str] = frozenset()) -> Ledger:
    ledger = Ledger(doomed=set(doomed))
    ledger.record(confirmed=confirmed, unconfirmed=unconfirmed)
    return ledger


def test_every_confirmed_event_delivered_or_dead_lettered_is_sound():
    # Given 3 confirmed events, one of them refused by the sink
    ledger = _ledger({"a", "b", "c"}, doomed={"c"})
    # When a and b were delivered (b twice) and c is in the dead-letter queue
    result = account(ledger, delivered=Counter({"a": 1, "b": 2}), dead=["c"])
    # Then nothing is lost and the second b is one duplicate
    assert result.sound and result.lost == frozenset() and result.duplicates == 1
    assert (result.events, result.delivered, result.dead_lettered) == (3, 2, 1)


def test_a_confirmed_event_found_nowhere_is_lost():
    result = account(_ledger({"a", "b"}), delivered=Counter({"a": 1}), dead=[])
    assert result.lost == {"b"} and not result.sound


def test_an_unconfirmed_event_found_nowhere_is_not_lost_but_one_found_is_known():
    result = account(_ledger({"a"}, unconfirmed={"u1", "u2"}), delivered=Counter({"a": 1, "u1": 1}), dead=[])
    assert result.sound and result.unconfirmed == 2


def test_an_event_both_delivered_and_dead_lettered_breaks_exactly_one():
    result = account(_ledger({"a"}, doomed={"a"}), delivered=Counter({"a": 1}), dead=["a"])
    assert result.in_both == {"a"} and not result.sound


def test_a_good_event_in_the_dead_letter_queue_is_misrouted():
    result = account(_ledger({"a"}), delivered=Counter(), dead=["a"])
    assert result.misrouted == {"a"} and not result.sound


def test_an_id_the_load_never_sent_is_unknown():
    result = account(_ledger({"a"}), delivered=Counter({"a": 1, "zzz": 1}), dead=[])
    assert result.unknown == {"zzz"} and not result.sound


def test_copies_left_in_the_queues_count_as_duplicates():
    result = account(_ledger({"a"}), delivered=Counter({"a": 1}), dead=[], queued=["a", "a"])
    assert result.duplicates == 2


def test_recovery_is_zero_when_the_fault_does_not_dent_throughput():
    times = [i / 10 for i in range(100)]  # 10 per second for 10 s
    assert recovery_seconds(times, 5.0) == 0.0


def test_recovery_is_the_gap_before_throughput_returns():
    # 10/s until t=5, nothing until t=9, then 10/s again
    times = [i / 10 for i in range(50)] + [9 + i / 10 for i in range(30)]
    assert recovery_seconds(times, 5.0) == 4.0


def test_no_recovery_when_throughput_never_returns_or_never_was():
    assert recovery_seconds([i / 10 for i in range(50)], 5.0) is None
    assert recovery_seconds([6.0, 7.0], 5.0) is None

"""A publish call's batch: each message settled once, the caller woken once, withdrawal final."""

from __future__ import annotations

import threading

from sluice_common.amqp import PublishBatch
from sluice_common.errors import PublishError


def test_a_batch_is_done_once_its_last_message_is_settled() -> None:
    # Given a batch of three messages
    batch = PublishBatch(3)
    finished: list[PublishBatch] = []
    batch.add_done_callback(finished.append)
    nacked = PublishError("nacked", "the broker could not take the message")
    # When two are settled, Then it is not done and a wait times out
    batch._settle(0, None)
    batch._settle(2, nacked)
    assert not batch.done
    assert not batch.wait(0.01)
    assert finished == []
    # When the last one is confirmed, Then every outcome is there in order and the callback ran once
    batch._settle(1, None)
    assert batch.wait(0)
    assert batch.errors() == [None, None, nacked]
    assert finished == [batch]


def test_a_message_is_settled_only_once() -> None:
    batch = PublishBatch(1)
    batch._settle(0, None)
    batch._settle(0, PublishError("nacked", "late"))
    assert batch.errors() == [None]


def test_withdrawing_fails_what_is_unsettled_and_ignores_later_confirms() -> None:
    # Given a batch with one message confirmed and one waiting
    batch = PublishBatch(2)
    batch._settle(0, None)
    timeout = PublishError("timeout", "no confirm within 1s")
    # When its caller gives up
    batch.withdraw(timeout)
    # Then it is done, marked withdrawn, the waiting message failed, and a late confirm changes nothing
    assert batch.done and batch.withdrawn
    batch._settle(1, None)
    assert batch.errors() == [None, timeout]


def test_a_finished_batch_cannot_be_withdrawn() -> None:
    batch = PublishBatch(1)
    batch._settle(0, None)
    batch.withdraw(PublishError("timeout", "too late"))
    assert not batch.withdrawn
    assert batch.errors() == [None]


def test_an_empty_batch_is_done_and_calls_back_at_once() -> None:
    batch = PublishBatch(0)
    called: list[PublishBatch] = []
    batch.add_done_callback(called.append)
    assert batch.done and called == [batch] and batch.errors() == []


def test_a_waiting_thread_wakes_when_another_settles_the_last_message() -> None:
    # Given a caller waiting for a batch of 100
    batch = PublishBatch(100)
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: batch.wait(5) and woke.set())
    waiter.start()
    # When the I/O thread settles each of them
    for index in range(100):
        batch._settle(index, None)
    waiter.join(5)
    # Then the caller woke, with every message confirmed
    assert woke.is_set()
    assert batch.errors() == [None] * 100


class _PausedBeforeFinishing(PublishBatch):
    """A batch whose confirming thread stops between settling its last message and finishing."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.settled, self.go_on = threading.Event(), threading.Event()

    def _finish(self) -> None:
        if threading.current_thread().name == "confirms":
            self.settled.set()
            self.go_on.wait(5)
        super()._finish()


def test_a_withdrawal_after_the_last_confirm_changes_nothing_even_before_the_batch_is_finished() -> None:
    # Given a batch whose last message was just confirmed, its I/O thread not yet done finishing it
    batch = _PausedBeforeFinishing(1)
    calls: list[PublishBatch] = []
    batch.add_done_callback(calls.append)
    confirms = threading.Thread(target=batch._settle, args=(0, None), name="confirms")
    confirms.start()
    assert batch.settled.wait(5)
    # When its caller gives up at that moment
    batch.withdraw(PublishError("timeout", "gave up"))
    batch.go_on.set()
    confirms.join(5)
    # Then the message stays confirmed, the batch is not withdrawn, and it finished once
    assert batch.errors() == [None] and not batch.withdrawn
    assert calls == [batch] and batch.done

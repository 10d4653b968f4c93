"""The publisher's window and the coalesced socket writes: same bytes, same order, fewer calls."""

from __future__ import annotations

import collections
import threading
import time
from types import SimpleNamespace
from typing import Any

from sluice_common.amqp import COALESCE_BYTES, coalesce_writes
from sluice_common.amqp.confirms import _Window


def _connection(buffers: collections.deque[bytes], sent: list[bytes], *, tls: bool = False) -> Any:
    transport = SimpleNamespace(_tx_buffers=buffers)
    transport._produce = lambda: sent.extend(buffers.popleft() for _ in range(len(buffers)))
    return SimpleNamespace(_transport=transport, params=SimpleNamespace(ssl_options=object() if tls else None))


def test_queued_frames_leave_in_one_send_in_their_order() -> None:
    # Given three frames queued on a plaintext connection
    buffers: collections.deque[bytes] = collections.deque([b"method", b"header", b"body"])
    sent: list[bytes] = []
    connection = _connection(buffers, sent)

    # When the transport sends them
    assert coalesce_writes(connection)
    connection._transport._produce()

    # Then one buffer went out, holding the same bytes in the same order
    assert sent == [b"methodheaderbody"]


def test_a_send_is_never_larger_than_the_limit_plus_one_frame() -> None:
    frame = b"x" * 1000
    buffers: collections.deque[bytes] = collections.deque([frame] * (COALESCE_BYTES // 1000 * 3))
    sent: list[bytes] = []
    connection = _connection(buffers, sent)
    coalesce_writes(connection)
    connection._transport._produce()
    assert len(sent[0]) < COALESCE_BYTES + len(frame)
    assert b"".join(sent) == frame * (COALESCE_BYTES // 1000 * 3)


def test_tls_connections_and_unknown_transports_are_left_alone() -> None:
    buffers: collections.deque[bytes] = collections.deque([b"a", b"b"])
    sent: list[bytes] = []
    tls = _connection(buffers, sent, tls=True)
    assert not coalesce_writes(tls)
    tls._transport._produce()
    assert sent == [b"a", b"b"]
    assert not coalesce_writes(SimpleNamespace(_transport=None, params=SimpleNamespace(ssl_options=None)))


def test_the_window_hands_out_what_is_free_and_waits_for_more() -> None:
    # Given a window of 10 with 8 taken
    window = _Window(10)
    assert window.take(8, time.monotonic() + 1) == 8

    # Then a request for 5 gets the 2 left, and the next waits until slots come back
    assert window.take(5, time.monotonic() + 1) == 2
    threading.Timer(0.05, window.give_back, args=(4,)).start()
    assert window.take(5, time.monotonic() + 5) == 4


def test_the_window_gives_up_at_the_deadline() -> None:
    window = _Window(1)
    assert window.take(1, time.monotonic() + 1) == 1
    started = time.monotonic()
    assert window.take(1, started + 0.05) == 0
    assert time.monotonic() - started >= 0.05

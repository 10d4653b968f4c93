"""The producer across a broker restart: every event it confirmed is in the queue afterwards."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from sluice_common.amqp import RECONNECT_MAX_S
from sluice_testing.events import READING
from sluice_testing.soak import record_recovery, resumed_after
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration

BATCH = 10


class IngestLoad:
    """POSTs batches of events in a thread and records which ids were answered 202."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.accepted: list[str] = []
        #: When each batch was answered 202 (``time.monotonic()``), in order.
        self.accepted_at: list[float] = []
        self.statuses: dict[int | str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._next = 0

    def __enter__(self) -> IngestLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.is_set():
            ids = [f"b-{self._next + i}" for i in range(BATCH)]
            self._next += BATCH
            events = [{"type": "sensor.reading", "data": READING, "id": event_id} for event_id in ids]
            try:
                status: int | str = requests.post(self.url + "/events", json=events, timeout=30).status_code
            except requests.RequestException as e:
                status = type(e).__name__
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 202:
                self.accepted.extend(ids)
                self.accepted_at.append(time.monotonic())
            else:
                self._stop.wait(0.05)  # the broker is away: do not spin


@pytest.mark.parametrize("hard", [False, True], ids=["restart", "sigkill"])
def test_no_confirmed_event_is_lost_when_the_broker_restarts_during_publishing(
    services, private_broker, prefix, hard
):
    # Given the group's queues declared (then no consumer, so every event stays in the work queue)
    consumer = services("sluice_consumer", broker=private_broker)
    assert consumer.terminate() == 0
    wait_for(lambda: private_broker.queue(f"{prefix}.default") is not None, timeout=10, what="work queue")
    producer = services("sluice_producer", broker=private_broker, SLUICE_PUBLISH_TIMEOUT_SECONDS="5")
    with IngestLoad(producer.url) as load:
        wait_for(lambda: len(load.accepted) >= 100, timeout=30, what="100 events accepted")
        # When the broker restarts while events keep coming (a SIGKILL only once the broker holds the
        # queues' registrations on disk, Broker.restart: one killed sooner can lose its replica, which
        # tests/chaos/test_queue_lost.py reproduces)
        fault_at = private_broker.restart(hard=hard)
        after = len(load.accepted)
        # Then the producer reconnects by itself and accepts again
        # Reconnection backs off up to RECONNECT_MAX_S between attempts; on a loaded machine a slow restart
        # can cost two such waits (one attempt landing while the broker still boots) before it reconnects.
        try:
            wait_for(lambda: len(load.accepted) >= after + 100, timeout=4 * RECONNECT_MAX_S,
                     what="100 more accepted after the restart")
        except TimeoutError as e:
            connection_log = [line for line in producer.logs().splitlines() if "sluice.amqp" in line]
            raise AssertionError(f"{e}; answers {load.statuses}; producer's connection log:\n"
                                 + "\n".join(connection_log[-30:])) from None
        record_recovery(resumed_after(fault_at, load.accepted_at))
    queued = [m.message_id for m in private_broker.drain(f"{prefix}.default")]
    # And every event answered 202 is in the queue: none lost (events answered 503 may be there too)
    assert set(load.accepted) <= set(queued), f"lost: {sorted(set(load.accepted) - set(queued))[:20]}"
    assert producer.metric("sluice_broker_connected") == 1
    # And the restart really hit the producer while it published: it lost its connection and made a new one
    # (requests during the outage are answered 503, or 202 when the broker came back within their timeout)
    assert producer.logs().count('"message": "Connected to ') >= 2, load.statuses

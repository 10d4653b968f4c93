"""The flaky sink's control API, through the same client the scenarios use."""

from __future__ import annotations

import time

import pytest
import requests

from sluice_e2e.deployment import SinkClient
from sluice_testing.flaky_sink import FlakySink


@pytest.fixture
def served():
    sink = FlakySink().start()
    yield sink, SinkClient(sink.url.removesuffix("/events"))
    sink.stop()


def deliver(sink: FlakySink, key: str) -> int:
    return requests.post(sink.url, json={"id": key}, headers={"Idempotency-Key": key}, timeout=5).status_code


def test_state_counts_deliveries_per_id_and_failures(served):
    sink, client = served
    assert [deliver(sink, k) for k in ("a", "a", "b")] == [200, 200, 200]
    client.control(status=503)
    assert deliver(sink, "c") == 503
    assert (client.deliveries(), client.failed()) == ({"a": 2, "b": 1}, 1)


def test_an_outage_ends_when_status_is_set_back_to_none(served):
    sink, client = served
    client.control(status=500)
    assert deliver(sink, "x") == 500
    client.control(status=None)
    assert deliver(sink, "x") == 200


def test_reset_forgets_what_was_received(served):
    sink, client = served
    deliver(sink, "a")
    client.control(reset=True)
    assert (client.deliveries(), client.failed()) == ({}, 0)


@pytest.mark.parametrize("bad", [{"status": "down"}, {"delay_s": -1}, {"fail_ids": "a"}, {"reject_ids": [1]},
                                 {"colour": "red"}])
def test_a_bad_control_document_gets_400_and_changes_nothing(served, bad):
    sink, _ = served
    response = requests.post(sink.url.removesuffix("/events") + "/control", json=bad, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]
    assert (sink.status, sink.delay_s, sink.fail_ids) == (None, 0.0, set())


def test_reject_ids_are_refused_for_good_until_cleared(served):
    sink, client = served
    client.control(reject_ids=["doomed"])
    assert [deliver(sink, k) for k in ("doomed", "fine", "doomed")] == [422, 200, 422]
    client.control(reject_ids=[])
    assert deliver(sink, "doomed") == 200


def test_delivery_times_are_mapped_onto_the_clients_clock(served):
    # Given two deliveries, the second after the sink answered slowly
    sink, client = served
    before = time.monotonic()
    deliver(sink, "a")
    client.control(delay_s=0.2)
    deliver(sink, "b")
    after = time.monotonic()
    # Then both times fall within the calls, in order, and the slow one is counted
    first, second = client.delivery_times()
    assert before <= first < second <= after + 0.05
    assert client.state()["delayed_successes"] == 1
    # And a reset forgets them
    client.control(reset=True)
    assert client.delivery_times() == [] and client.state()["delayed_successes"] == 0

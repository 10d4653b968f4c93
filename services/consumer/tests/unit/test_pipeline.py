from __future__ import annotations

import json

import pytest

from sluice_common.config import TopologySettings
from sluice_common.envelope import Delivery, Event
from sluice_common.topology import group_topology
from sluice_common.validation import SchemaRegistry
from sluice_consumer.pipeline import Pipeline
from sluice_consumer.processors import ProcessingError, Processor
from sluice_consumer.retry import RetryPolicy
from sluice_consumer.sinks import Sink, SinkError
from sluice_testing.events import READING


class RecordingSink(Sink):
    name = "recording"

    def __init__(self, error: Exception | None = None) -> None:
        self.events: list[Event] = []
        self.error = error

    def deliver(self, event: Event) -> None:
        if self.error:
            raise self.error
        self.events.append(event)


def make_pipeline(sink: Sink, *, processors=(), max_attempts: int = 3) -> Pipeline:
    topology = group_topology(TopologySettings(retry_delays_s=(1.0, 5.0)), "g")
    return Pipeline(topology, schemas=SchemaRegistry.load(), sink=sink, policy=RetryPolicy(max_attempts),
                    processors=processors, max_bytes=10_000, delivery_limit=20)


def delivery(data: object = READING, *, headers=None, delivery_count: int = 0, body: bytes | None = None) -> Delivery:
    return Delivery(body=body if body is not None else json.dumps(data).encode(), routing_key="sensor.reading",
                    message_id="m-1", headers=headers or {}, content_type="application/json", type="sensor.reading",
                    timestamp=1, redelivered=False, delivery_count=delivery_count)


def test_a_valid_event_reaches_the_sink_and_is_acked():
    sink = RecordingSink()
    decision = make_pipeline(sink).handle(delivery())
    assert decision.outcome == "acked" and decision.forward is None
    assert [e.data for e in sink.events] == [READING]


def test_a_retryable_sink_failure_goes_to_the_first_tier_with_its_attempt_counted():
    decision = make_pipeline(RecordingSink(SinkError("webhook answered 503", retryable=True))).handle(delivery())
    assert decision.outcome == "retried"
    assert (decision.forward.exchange, decision.forward.routing_key) == ("", "sluice.g.retry.1s")
    assert decision.forward.headers["x-sluice-attempts"] == 1
    assert decision.forward.headers["x-sluice-routing-key"] == "sensor.reading"
    assert "x-sluice-first-seen" in decision.forward.headers


def test_the_last_attempt_dead_letters_as_max_attempts():
    sink = RecordingSink(SinkError("webhook answered 500", retryable=True))
    decision = make_pipeline(sink).handle(delivery(headers={"x-sluice-attempts": 2, "x-death": [{"count": 1}]}))
    assert decision.outcome == "dead_lettered"
    headers = decision.forward.headers
    assert decision.forward.routing_key == "sluice.g.dead"
    assert (headers["x-sluice-reason"], headers["x-sluice-attempts"]) == ("max_attempts", 3)
    assert headers["x-sluice-error"] == "webhook answered 500"
    assert "x-sluice-dead-at" in headers and "x-death" not in headers


@pytest.mark.parametrize(
    ("message", "reason", "fragment"),
    [
        (delivery({**READING, "value": "hot"}), "invalid", "schema violation"),
        (delivery(body=b"\xc3\x28"), "invalid", "not UTF-8"),
        (delivery(headers={"x-sluice-attempts": "-3"}), "invalid", "x-sluice-attempts"),
        (delivery(delivery_count=20), "delivery_limit", "consumers crash"),
    ],
)
def test_poison_is_dead_lettered_at_once_with_its_reason(message, reason, fragment):
    sink = RecordingSink()
    decision = make_pipeline(sink).handle(message)
    assert decision.outcome == "dead_lettered"
    assert decision.forward.headers["x-sluice-reason"] == reason
    assert fragment in decision.forward.headers["x-sluice-error"]
    assert sink.events == []


def test_a_permanent_failure_is_rejected():
    decision = make_pipeline(RecordingSink(SinkError("webhook answered 422", retryable=False))).handle(delivery())
    assert decision.forward.headers["x-sluice-reason"] == "rejected"


def test_processors_run_before_the_sink_and_their_errors_follow_the_policy():
    class Upper(Processor):
        def process(self, event: Event) -> Event:
            return Event(event.type, {**event.data, "metric": event.data["metric"].upper()}, event.id)

    class Refuse(Processor):
        def process(self, event: Event) -> Event:
            raise ProcessingError("no such sensor", retryable=False)

    sink = RecordingSink()
    assert make_pipeline(sink, processors=[Upper()]).handle(delivery()).outcome == "acked"
    assert sink.events[0].data["metric"] == "TEMPERATURE"
    assert make_pipeline(sink, processors=[Refuse()]).handle(delivery()).reason == "rejected"


def test_an_unexpected_exception_is_retried_not_lost():
    decision = make_pipeline(RecordingSink(KeyError("boom"))).handle(delivery())
    assert decision.outcome == "retried" and "KeyError" in decision.error

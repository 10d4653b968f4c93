"""The services as processes against a real RabbitMQ 4.x: every outcome, ingest, and crashes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import requests

from sluice_testing.events import READING
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration

TESTING_DIR = Path(__file__).resolve().parents[4] / "testing"


def post(producer: ServiceProcess, payload: object) -> requests.Response:
    return requests.post(producer.url + "/events", json=payload, timeout=30)


def test_events_ingested_over_http_are_delivered_to_the_sink(services, sink):
    # Given a consumer and a producer
    services("sluice_consumer")
    producer = services("sluice_producer")
    # When 50 events are posted
    events = [{"type": "sensor.reading", "data": {**READING, "value": i}, "id": f"e-{i}"} for i in range(50)]
    response = post(producer, events)
    # Then the ingest answers 202 after the confirms, and each one reaches the sink
    assert response.status_code == 202 and response.json()["accepted"] == 50
    wait_for(lambda: sink.delivered == {f"e-{i}" for i in range(50)}, timeout=20, what="all delivered")
    assert producer.metric("sluice_messages_published_total", outcome="confirmed") == 50


def test_invalid_input_gets_400_with_reasons_and_nothing_is_published(services, rabbitmq, prefix):
    services("sluice_consumer")
    producer = services("sluice_producer")
    response = post(producer, [{"type": "sensor.reading", "data": {**READING, "value": "hot"}}, {"data": 1}])
    assert response.status_code == 400
    assert len(response.json()["reasons"]) >= 3
    assert requests.post(producer.url + "/events", data=b"{", timeout=5,
                         headers={"Content-Type": "application/json"}).status_code == 400
    assert producer.metric("sluice_messages_published_total", outcome="confirmed") == 0


def test_a_request_over_the_size_limit_gets_413(services):
    producer = services("sluice_producer", SLUICE_INGEST_MAX_BYTES="1000")
    response = post(producer, {"type": "sensor.reading", "data": {**READING, "sensor_id": "x" * 2000}})
    assert response.status_code == 413


def test_a_sink_outage_retries_through_the_tiers_and_delivers_after_recovery(services, sink, rabbitmq, prefix):
    # Given a sink that answers 503
    sink.status = 503
    consumer = services("sluice_consumer", SLUICE_RETRY_MAX_ATTEMPTS="50")
    producer = services("sluice_producer")
    assert post(producer, {"type": "sensor.reading", "data": READING, "id": "r-1"}).status_code == 202
    # When it has failed a few times and then recovers
    wait_for(lambda: consumer.metric("sluice_messages_processed_total", outcome="retried") >= 3, timeout=20,
             what="three retries")
    sink.status = None
    # Then the event is delivered
    wait_for(lambda: "r-1" in sink.delivered, timeout=20, what="delivery after recovery")
    assert rabbitmq.depth(f"{prefix}.default.dead") == 0


def test_attempts_exhausted_end_in_the_dead_letter_queue_with_headers(services, sink, rabbitmq, prefix):
    sink.fail_ids = {"doomed"}
    services("sluice_consumer")
    producer = services("sluice_producer")
    assert post(producer, {"type": "sensor.reading", "data": READING, "id": "doomed"}).status_code == 202
    dead = wait_for(lambda: rabbitmq.drain(f"{prefix}.default.dead"), timeout=20, what="a dead letter")
    headers = dead[0].headers
    assert headers["x-sluice-reason"] == "max_attempts"
    assert headers["x-sluice-attempts"] == 3
    assert headers["x-sluice-routing-key"] == "sensor.reading"
    assert "500" in headers["x-sluice-error"]
    assert {"x-sluice-first-seen", "x-sluice-dead-at"} <= set(headers)
    assert dead[0].message_id == "doomed"


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"\xff not utf-8", None, "invalid"),
        (json.dumps({**READING, "value": "hot"}).encode(), None, "invalid"),
        (json.dumps(READING).encode(), {"x-sluice-attempts": "lots"}, "invalid"),
    ],
)
def test_poison_published_by_any_client_is_dead_lettered_and_good_events_still_flow(
    services, sink, rabbitmq, prefix, body, headers, reason
):
    consumer = services("sluice_consumer")
    rabbitmq.publish(f"{prefix}.events", "sensor.reading", body, message_id="poison", headers=headers)
    rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id="good")
    dead = wait_for(lambda: rabbitmq.drain(f"{prefix}.default.dead"), timeout=20, what="a dead letter")
    assert (dead[0].message_id, dead[0].headers["x-sluice-reason"]) == ("poison", reason)
    wait_for(lambda: "good" in sink.delivered, timeout=20, what="the good event")
    assert consumer.metric("sluice_dead_letters_total", reason=reason) == 1


def test_a_rejecting_sink_dead_letters_as_rejected(services, sink, rabbitmq, prefix):
    sink.status = 422
    services("sluice_consumer")
    rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id="r")
    dead = wait_for(lambda: rabbitmq.drain(f"{prefix}.default.dead"), timeout=20, what="a dead letter")
    assert dead[0].headers["x-sluice-reason"] == "rejected"


def test_a_consumer_killed_mid_processing_loses_nothing(services, sink, rabbitmq, prefix):
    # Given a slow sink and a consumer holding messages in flight
    sink.delay_s = 0.2
    first = services("sluice_consumer", SLUICE_CONSUMER_CONCURRENCY="4")
    for i in range(40):
        rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id=f"k-{i}")
    wait_for(lambda: len(sink.delivered) >= 4, timeout=20, what="some deliveries")
    # When it is killed with SIGKILL
    first.kill()
    sink.delay_s = 0.0
    # Then another consumer gets the unacked messages and every one is delivered
    services("sluice_consumer")
    wait_for(lambda: sink.delivered == {f"k-{i}" for i in range(40)}, timeout=30, what="all 40 delivered")


def test_sigterm_drains_in_flight_work_and_exits_zero(services, sink, rabbitmq, prefix):
    sink.delay_s = 0.5
    consumer = services("sluice_consumer", SLUICE_CONSUMER_CONCURRENCY="2")
    for i in range(6):
        rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id=f"d-{i}")
    wait_for(lambda: consumer.metric("sluice_messages_inflight") >= 1, timeout=10, what="work in flight")
    consumer.signal(signal.SIGTERM)
    assert consumer.process.wait(30) == 0
    delivered = sink.delivered
    assert delivered  # what was in flight finished
    # what did not start is back in the queue: nothing lost
    remaining = {m.message_id for m in rabbitmq.drain(f"{prefix}.default")}
    assert delivered | remaining == {f"d-{i}" for i in range(6)}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SLUICE_CONSUMER_PREFETCH", "many", "SLUICE_CONSUMER_PREFETCH='many'"),
        ("SLUICE_CONSUMER_PROCESSORS", "enrich", "SLUICE_CONSUMER_PROCESSORS='enrich': unknown built-in processor"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(rabbitmq, variable, value, message):
    process = ServiceProcess("sluice_consumer", {variable: value}).start()
    try:
        assert process.process.wait(20) == 2
        assert message in process.logs()
    finally:
        process.close()


def test_configured_processors_run_in_order_before_the_sink(services, sink, rabbitmq, prefix):
    # Given the built-in stamp and a processor of the user's own, importable in the consumer
    services("sluice_consumer", SLUICE_CONSUMER_PROCESSORS="stamp,sluice_testing.processors:Fahrenheit",
             PYTHONPATH=str(TESTING_DIR))
    # When a reading in celsius is consumed
    rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps({**READING, "value": 100}).encode(),
                     message_id="warm")
    # Then the sink receives it stamped and converted
    wait_for(lambda: "warm" in sink.delivered, timeout=20, what="the processed event")
    data = sink.documents["warm"]["data"]
    assert (data["value"], data["unit"], data["processed_by"]) == (212, "fahrenheit", "default")

"""The poison corpus published to the broker by any client, through one running consumer.

Each case is followed by a good event. The consumer must dead-letter the poison once, with the
reason and error the manifest names, keep its body intact, never send it round the retry tiers
(no requeue loop), keep running, and deliver the good event.
"""

from __future__ import annotations

import json
import uuid

import pytest
from poison_corpus import CASES, MAX_BYTES, Case

from sluice_testing.broker import RawMessage
from sluice_testing.flaky_sink import FlakySink
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration

GOOD = json.dumps({"sensor_id": "s-1", "metric": "temperature", "value": 1.0, "unit": "celsius",
                   "recorded_at": "2026-11-25T10:00:00Z"}).encode()
CONSUMER_CASES = [c for c in CASES if c.consumer]


@pytest.fixture(scope="module")
def deployment(rabbitmq):
    """One consumer for the whole corpus, on its own topology; removed afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    sink = FlakySink(seed=1).start()
    consumer = ServiceProcess("sluice_consumer", {
        "SLUICE_AMQP_URL": rabbitmq.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
        "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events", "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": sink.url,
        "SLUICE_MAX_MESSAGE_BYTES": str(MAX_BYTES), "SLUICE_CONSUMER_QUEUE_POLL_SECONDS": "0.5",
    }, name="poison-consumer")
    try:
        consumer.start().wait_ready()
        yield prefix, sink, consumer
    finally:
        consumer.close()
        sink.stop()
        rabbitmq.delete_prefix(prefix)


@pytest.mark.parametrize("case", CONSUMER_CASES, ids=lambda c: c.name)
def test_poison_is_dead_lettered_with_its_reason_and_good_events_keep_flowing(deployment, rabbitmq, case: Case):
    prefix, sink, consumer = deployment
    poison_id, good_id = f"poison-{case.name}", f"good-{case.name}"
    # Given a consumer that has dead-lettered nothing so far
    retried_before = consumer.metric("sluice_messages_processed_total", outcome="retried")
    # When a client publishes the poison, then a good event
    routing_key, body = case.message
    rabbitmq.publish(f"{prefix}.events", routing_key, body, message_id=poison_id, headers=case.headers or None,
                     content_type=case.content_type or None)
    rabbitmq.publish(f"{prefix}.events", "sensor.reading", GOOD, message_id=good_id)
    # Then the good event is delivered
    wait_for(lambda: good_id in sink.delivered, timeout=30, what=f"delivery of {good_id}")
    assert case.consumer is not None
    if case.consumer.get("delivered"):
        # and harmless input is delivered too, its forged parts not trusted
        wait_for(lambda: poison_id in sink.delivered, timeout=30, what=f"delivery of {poison_id}")
        assert rabbitmq.depth(f"{prefix}.default.dead") == 0
    else:
        # and the poison is in the dead-letter queue once, with its reason, error and intact body
        dead = wait_for(lambda: rabbitmq.drain(f"{prefix}.default.dead"), timeout=30, what="a dead letter")
        assert [m.message_id for m in dead] == [poison_id]
        assert dead[0].headers["x-sluice-reason"] == case.consumer["reason"]
        assert case.consumer["error"] in dead[0].headers["x-sluice-error"]
        assert dead[0].body == body
        assert poison_id not in sink.received
    # and nothing loops: no retry, no message left behind, the consumer still runs
    assert consumer.metric("sluice_messages_processed_total", outcome="retried") == retried_before
    assert rabbitmq.depth(f"{prefix}.default") == 0
    assert consumer.process is not None and consumer.process.poll() is None


def test_the_whole_corpus_at_once_interleaved_with_good_events(deployment, rabbitmq):
    prefix, sink, consumer = deployment
    # When every case is published in one burst, each followed by a good event
    for case in CONSUMER_CASES:
        routing_key, body = case.message
        rabbitmq.publish(f"{prefix}.events", routing_key, body, message_id=f"burst-{case.name}",
                         headers=case.headers or None, content_type=case.content_type or None)
        rabbitmq.publish(f"{prefix}.events", "sensor.reading", GOOD, message_id=f"burst-good-{case.name}")
    # Then every good event is delivered, and the dead-letter queue holds each poison once, with its reason
    wait_for(lambda: {f"burst-good-{c.name}" for c in CONSUMER_CASES} <= sink.delivered, timeout=60,
             what="every good event of the burst")
    expected = {f"burst-{c.name}": c.consumer["reason"] for c in CONSUMER_CASES if c.consumer and "reason" in c.consumer}
    dead: list[RawMessage] = []
    wait_for(lambda: dead.extend(rabbitmq.drain(f"{prefix}.default.dead")) or len(dead) >= len(expected), timeout=60,
             what="every dead letter of the burst")
    assert {m.message_id: m.headers["x-sluice-reason"] for m in dead} == expected
    assert len(dead) == len(expected)  # each once
    assert {f"burst-{c.name}" for c in CONSUMER_CASES if c.consumer and c.consumer.get("delivered")} <= sink.delivered
    assert consumer.process is not None and consumer.process.poll() is None

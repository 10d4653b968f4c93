"""A handler slower than the heartbeat does not cost the consumer its connection."""

from __future__ import annotations

import json

import pytest

from sluice_testing.events import READING
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration

HEARTBEAT_S = 1


def consumer_tags(rabbitmq, queue: str) -> set[str]:
    """Consumer tags on ``queue``, as the broker sees them: a reconnect would subscribe with a new tag."""
    return rabbitmq.consumer_tags(queue)


def test_a_handler_slower_than_twice_the_heartbeat_keeps_its_connection(services, sink, rabbitmq, prefix):
    # Given a 1 s heartbeat and a sink that takes 3.5 s (the broker drops a connection silent for 2 beats)
    sink.delay_s = 3.5 * HEARTBEAT_S
    consumer = services("sluice_consumer", SLUICE_AMQP_HEARTBEAT_SECONDS=str(HEARTBEAT_S),
                        SLUICE_CONSUMER_CONCURRENCY="2")
    queue = f"{prefix}.default"
    before = wait_for(lambda: consumer_tags(rabbitmq, queue), timeout=20, what="the consumer on the queue")
    # When two events are processed at once, each for longer than two heartbeat intervals
    for i in range(2):
        rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id=f"slow-{i}")
    wait_for(lambda: consumer.metric("sluice_messages_processed_total", outcome="acked") == 2, timeout=30,
             what="both acked")
    # Then each was delivered once, acked on the same connection, and the connection never dropped
    assert sink.delivered == {"slow-0", "slow-1"}
    assert sink.duplicates == 0
    assert consumer_tags(rabbitmq, queue) == before
    assert consumer.metric("sluice_broker_connected") == 1
    assert "connection lost" not in consumer.logs().lower()

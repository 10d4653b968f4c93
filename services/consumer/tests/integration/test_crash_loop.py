"""A message every consumer dies on ends in the dead-letter queue as ``delivery_limit``, on every tested RabbitMQ.

RabbitMQ 4.3 counts only rejects and lost connections toward a quorum queue's delivery limit (4.0
counted every return). A consumer killed while it holds the message is a lost connection, so the
crash loop must still end after ``SLUICE_TOPOLOGY_DELIVERY_LIMIT`` deliveries, not loop forever.
"""

from __future__ import annotations

import json

import pytest

from sluice_testing.events import READING
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration

#: The work queue's delivery limit in this test: the message is killed with its consumer this often.
DELIVERY_LIMIT = 2


def test_a_message_that_kills_every_consumer_is_dead_lettered_as_delivery_limit(services, sink, rabbitmq, prefix):
    # Given a message whose processing never ends (the sink hangs on it)
    sink.delay_s = 60.0
    dead: list = []
    # When each consumer that takes it dies mid-processing (SIGKILL: the broker sees a lost connection)
    for attempt in range(DELIVERY_LIMIT + 3):
        consumer = services("sluice_consumer", SLUICE_TOPOLOGY_DELIVERY_LIMIT=str(DELIVERY_LIMIT),
                            SLUICE_SINK_TIMEOUT_SECONDS="120")
        if attempt == 0:  # the first consumer declared the topology
            rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id="killer")
        try:
            wait_for(lambda c=consumer: c.metric("sluice_messages_inflight") >= 1
                     or rabbitmq.depth(f"{prefix}.default.dead") > 0, timeout=30, what=f"delivery {attempt + 1}")
        finally:
            consumer.kill()
        dead = rabbitmq.drain(f"{prefix}.default.dead")
        if dead:
            break
    # Then, after the limit, it is in the dead-letter queue with the reason, and was never delivered
    assert [m.message_id for m in dead] == ["killer"], f"not dead-lettered after {DELIVERY_LIMIT + 3} deliveries"
    headers = dead[0].headers
    reasons = {headers.get("x-sluice-reason"), headers.get("x-first-death-reason")}
    assert "delivery_limit" in reasons, headers
    assert "killer" not in sink.delivered

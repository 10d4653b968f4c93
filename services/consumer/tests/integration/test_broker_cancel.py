"""A subscription the broker ends (``basic.cancel``) is taken up again: the consumer never sits idle while ready.

RabbitMQ sends ``basic.cancel`` when the queue is deleted and, from 4.3, when a quorum queue's
delivery outlives its consumer timeout, within about a second. 4.0 closes the channel with 406
instead, and only when its channel checks for late acknowledgements, once a minute. Either way the
consumer must subscribe again (or exit non-zero), and the delivery is not lost.
"""

from __future__ import annotations

import json

import pytest
import requests

from sluice_testing.events import READING
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration

#: The consumer timeout the test's policy gives the work queue, in milliseconds.
CONSUMER_TIMEOUT_MS = 1000
#: How long each sink call takes while the handler is slower than the consumer timeout: longer than
#: the broker takes to notice (4.3: the queue itself, at once; 4.0: the channel's check every 60 s).
SLOW_SINK_S = {"4.3": 5.0, "4.0": 75.0}


def test_a_handler_slower_than_the_consumer_timeout_resubscribes_and_loses_nothing(services, sink, rabbitmq, prefix):
    # Given a work queue whose consumer timeout is shorter than the sink takes
    work = f"{prefix}.default"
    rabbitmq.set_policy(f"{prefix}-timeout", f"^{prefix}\\.default$", {"consumer-timeout": CONSUMER_TIMEOUT_MS})
    try:
        slow = SLOW_SINK_S[rabbitmq.version()[:3]]
        sink.delay_s = slow
        consumer = services("sluice_consumer", SLUICE_SINK_TIMEOUT_SECONDS=str(int(slow) + 10))
        rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id="slow-1")
        # When the broker gives up on the delivery
        wait_for(lambda: "cancelled consumption" in consumer.logs() or "406" in consumer.logs(), timeout=slow + 30,
                 what="the broker ending the subscription")
        # Then the consumer subscribes again, and says it is ready only once it consumes
        wait_for(lambda: rabbitmq.consumers(work) == 1 and _ready(consumer), timeout=30,
                 what="the consumer subscribed and ready again")
        assert consumer.process is not None and consumer.process.poll() is None, consumer.logs()[-2000:]
        cancelled = consumer.metric("sluice_consumer_cancelled_total", queue=work)
        if rabbitmq.version().startswith("4.3"):
            assert cancelled >= 1, consumer.logs()[-2000:]  # quorum queues send basic.cancel from 4.3
        # And once the sink is fast again, the event is delivered
        sink.delay_s = 0.0
        wait_for(lambda: "slow-1" in sink.delivered, timeout=60, what="the slow event delivered")
    finally:
        rabbitmq.clear_policy(f"{prefix}-timeout")


def test_a_deleted_work_queue_is_declared_again_and_consumed(services, sink, rabbitmq, prefix):
    # Given a consumer on its work queue
    work = f"{prefix}.default"
    consumer = services("sluice_consumer")
    # When an operator deletes the queue under it
    rabbitmq.delete_queue(work)
    wait_for(lambda: "cancelled consumption" in consumer.logs(), timeout=20, what="the broker's basic.cancel")
    # Then the consumer declares it again and consumes from it
    wait_for(lambda: rabbitmq.queue(work) is not None and rabbitmq.consumers(work) == 1 and _ready(consumer),
             timeout=30, what="the queue back with its consumer")
    assert consumer.metric("sluice_consumer_cancelled_total", queue=work) == 1
    rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id="after-delete")
    wait_for(lambda: "after-delete" in sink.delivered, timeout=20, what="an event delivered after the delete")


def _ready(consumer) -> bool:
    return requests.get(consumer.url + "/readyz", timeout=5).status_code == 200

"""The publisher's window of unconfirmed messages bounds memory without stalling a large batch."""

from __future__ import annotations

import time

import pika
import pytest

from sluice_common.amqp import Publisher
from sluice_common.config import AmqpSettings
from sluice_common.envelope import Event, encode

pytestmark = pytest.mark.integration


def test_a_batch_larger_than_the_window_is_published_without_waiting_for_its_timeout(rabbitmq, prefix):
    # Given a queue bound to the exchange and a publisher whose window holds 10 messages
    exchange = f"{prefix}.events"
    with pika.BlockingConnection(pika.URLParameters(rabbitmq.amqp_url)) as connection:
        channel = connection.channel()
        channel.exchange_declare(exchange, "topic", durable=True)
        channel.queue_declare(f"{prefix}.all", durable=True)
        channel.queue_bind(f"{prefix}.all", exchange, "#")
    publisher = Publisher(AmqpSettings(rabbitmq.amqp_url), exchange=exchange, max_outstanding=10, name="window-test")
    publisher.start()
    try:
        deadline = time.monotonic() + 20
        while not publisher.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publisher.ready
        # When one call publishes 60 messages with a generous timeout
        messages = [encode(Event("sensor.reading", {"n": i}, id=f"w-{i}"), exchange) for i in range(60)]
        started = time.monotonic()
        batch = publisher.publish(messages, timeout=30)
        # Then every message is confirmed long before that timeout: the window refills as confirms come
        assert batch.wait(30)
        assert batch.errors() == [None] * 60
        assert time.monotonic() - started < 10
        assert publisher.outstanding == 0
        assert rabbitmq.depth(f"{prefix}.all") == 60
    finally:
        publisher.stop()

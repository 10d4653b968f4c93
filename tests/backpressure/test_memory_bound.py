"""A consumer behind a slow sink holds what its prefetch allows, however long the queue grows."""

from __future__ import annotations

import json
import time
import uuid

import pika
import pytest

from sluice_testing.chaos.load import sensor_event
from sluice_testing.flaky_sink import FlakySink
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFETCH = 20
#: Each event carries this many bytes of labels, so the backlog is far larger than any bound.
BODY_BYTES = 64 * 1024
BACKLOG = 1200  # about 77 MB queued
#: How long the consumer works through the backlog while its memory is sampled.
LOAD_S = 10.0
#: Resident memory the consumer may gain over its idle size: a few copies of a prefetch's worth
#: of bodies (frame, bytes, decoded JSON, request) plus allocator and thread slack.
RSS_BOUND = 4 * PREFETCH * BODY_BYTES + 24 * 1024 * 1024


@pytest.fixture
def slow_sink():
    sink = FlakySink().start()
    sink.delay_s = 0.2  # 4 worker threads → about 20 events a second
    yield sink
    sink.stop()


def test_consumer_memory_stays_bounded_by_prefetch_under_a_slow_sink(own_broker, slow_sink):
    # Given a consumer with prefetch 20 in front of a sink that takes 0.2 s per event
    prefix = f"mem{uuid.uuid4().hex[:8]}"
    consumer = ServiceProcess("sluice_consumer", {
        "SLUICE_AMQP_URL": own_broker.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
        "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events", "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": slow_sink.url,
        "SLUICE_CONSUMER_PREFETCH": str(PREFETCH), "SLUICE_CONSUMER_CONCURRENCY": "4",
        "SLUICE_LOG_LEVEL": "WARNING", "SLUICE_LOG_FORMAT": "text"}, name="mem-consumer").start()
    try:
        consumer.wait_ready()
        idle = max(consumer.rss_bytes() for _ in range(3))
        # When a backlog of 1200 events of 64 KB (about 77 MB) is published
        body = json.dumps(sensor_event("x", padding=BODY_BYTES)["data"]).encode()
        with pika.BlockingConnection(pika.URLParameters(own_broker.amqp_url)) as connection:
            channel = connection.channel()
            channel.confirm_delivery()
            for i in range(BACKLOG):
                channel.basic_publish(f"{prefix}.events", "sensor.reading", body, pika.BasicProperties(
                    delivery_mode=2, message_id=f"m-{i}", content_type="application/json", type="sensor.reading"))
        # Then while it works through it for a while, its memory stays within the bound
        peak, started = idle, time.monotonic()
        while time.monotonic() - started < LOAD_S:
            peak = max(peak, consumer.rss_bytes())
            time.sleep(0.25)
        backlog_left = own_broker.depth(f"{prefix}.default")
        print(f"consumer RSS idle {idle / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB; "
              f"{len(slow_sink.delivered)} delivered, {backlog_left} still queued")
        assert peak - idle < RSS_BOUND, f"grew {(peak - idle) / 2**20:.1f} MiB"
        # and the backlog was real: most of it still waits in the broker, not in the consumer
        assert backlog_left > BACKLOG / 2
        assert len(slow_sink.delivered) >= 50
        wait_for(lambda: consumer.metric("sluice_messages_inflight") <= PREFETCH, timeout=5, what="in flight ≤ prefetch")
    finally:
        consumer.close()
        own_broker.delete_prefix(prefix)

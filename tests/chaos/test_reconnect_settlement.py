"""A consumer whose work finishes while its connection is down keeps settling after it reconnects."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from sluice_testing.events import READING
from sluice_testing.processes import ServiceProcess
from sluice_testing.tcp_proxy import TcpProxy
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration


def test_settlements_made_while_disconnected_do_not_wedge_the_consumer(rabbitmq, prefix, sink):
    # Given a consumer behind a proxy, with a slow sink so that work is in flight
    parsed = urllib.parse.urlsplit(rabbitmq.amqp_url)
    proxy = TcpProxy((parsed.hostname or "127.0.0.1", parsed.port or 5672)).start()
    sink.delay_s = 1.0
    consumer = ServiceProcess("sluice_consumer", {
        "SLUICE_AMQP_URL": proxy.rewrite(rabbitmq.amqp_url), "SLUICE_TOPOLOGY_PREFIX": prefix,
        "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events", "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": sink.url,
        "SLUICE_CONSUMER_PREFETCH": "4", "SLUICE_CONSUMER_CONCURRENCY": "4", "SLUICE_LOG_FORMAT": "text"},
        name="settle-consumer").start()
    try:
        consumer.wait_ready()
        for i in range(12):
            rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id=f"s-{i}")
        wait_for(lambda: consumer.metric("sluice_messages_inflight") >= 1, timeout=10, what="work in flight")
        # When its connection is cut while that work finishes (it settles with no connection)
        proxy.cut()
        wait_for(lambda: consumer.metric("sluice_messages_inflight") == 0, timeout=10, what="work finished")
        proxy.restore()
        sink.delay_s = 0.0
        # Then, reconnected, it delivers and acks everything: nothing stays unacked behind a stuck settlement
        wait_for(lambda: sink.delivered == {f"s-{i}" for i in range(12)}, timeout=45, what="all 12 delivered")
        wait_for(lambda: rabbitmq.messages(f"{prefix}.default") == 0, timeout=30,
                 interval=0.5, what="the work queue empty, nothing unacked")
    finally:
        consumer.close()
        proxy.stop()

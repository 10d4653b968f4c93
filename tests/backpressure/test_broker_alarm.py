"""A broker resource alarm pushes back on the producer: 503 + Retry-After, a slower generator, a bounded window."""

from __future__ import annotations

import time
import uuid

import pika
import pytest
import requests

from sluice_testing.chaos.load import sensor_event
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The generator's rate and the producer's window of unconfirmed messages in this test.
RATE = 100
WINDOW = 50
#: How long the alarm lasts: long enough that a generator catching up would burst far above its rate.
ALARM_S = 6.0
#: Growth of the producer's resident memory allowed during the alarm (interpreter noise, not events).
RSS_SLACK = 16 * 1024 * 1024


@pytest.fixture
def producer(own_broker):
    prefix = f"alarm{uuid.uuid4().hex[:8]}"
    exchange = f"{prefix}.events"
    with pika.BlockingConnection(pika.URLParameters(own_broker.amqp_url)) as connection:
        channel = connection.channel()
        channel.exchange_declare(exchange, "topic", durable=True)
        channel.queue_declare(f"{prefix}.sink", durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(f"{prefix}.sink", exchange, "#")
    process = ServiceProcess("sluice_producer", {
        "SLUICE_AMQP_URL": own_broker.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix, "SLUICE_TOPOLOGY_EXCHANGE": exchange,
        "SLUICE_GENERATOR_RATE": str(RATE), "SLUICE_PUBLISH_MAX_OUTSTANDING": str(WINDOW),
        "SLUICE_PUBLISH_TIMEOUT_SECONDS": "3", "SLUICE_LOG_FORMAT": "text"}, name="alarm-producer").start()
    try:
        yield process.wait_ready()
    finally:
        process.close()
        own_broker.ctl("set_vm_memory_high_watermark", "0.4")  # whatever happened, clear the alarm
        own_broker.delete_prefix(prefix)


def _confirmed(producer: ServiceProcess) -> float:
    return producer.metric("sluice_messages_published_total", outcome="confirmed")


def _ingest(producer: ServiceProcess, event_id: str) -> requests.Response:
    return requests.post(producer.url + "/events", json=sensor_event(event_id), timeout=30)


def test_a_memory_alarm_makes_the_producer_push_back_and_buffer_nothing_without_bound(own_broker, producer):
    # Given a producer generating events and accepting ingest
    wait_for(lambda: _confirmed(producer) >= RATE, timeout=30, what="generated events confirmed")
    assert _ingest(producer, "before").status_code == 202
    # When the broker raises a memory alarm (a watermark of 0 trips it at once)
    own_broker.ctl("set_vm_memory_high_watermark", "0")
    alarm_at = time.monotonic()
    wait_for(lambda: producer.metric("sluice_broker_blocked") == 1, timeout=20, what="producer sees the block")
    # Then ingest answers 503 with Retry-After and publishes nothing
    response = _ingest(producer, "during")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "alarm" in response.json()["error"]
    assert requests.get(producer.url + "/readyz", timeout=5).status_code == 503
    # and the generator stops at its window: no confirm, outstanding at most the window, memory flat
    confirmed, rss = _confirmed(producer), producer.rss_bytes()
    while time.monotonic() - alarm_at < ALARM_S:
        assert producer.metric("sluice_publish_outstanding") <= WINDOW
        assert producer.rss_bytes() - rss < RSS_SLACK
        time.sleep(0.5)
    assert _confirmed(producer) == confirmed
    # When the alarm clears
    own_broker.ctl("set_vm_memory_high_watermark", "0.4")
    cleared_at = time.monotonic()
    wait_for(lambda: producer.metric("sluice_broker_blocked") == 0, timeout=20, what="producer unblocked")
    # Then publishing resumes at the generator's rate, not in a burst of everything it missed
    wait_for(lambda: _confirmed(producer) > confirmed + WINDOW, timeout=20, what="confirms resume")
    time.sleep(max(3.0 - (time.monotonic() - cleared_at), 0))  # a 3 s window after the alarm cleared
    resumed = _confirmed(producer) - confirmed
    elapsed = time.monotonic() - cleared_at
    # what waited in the window, plus at most one second of lag, plus the rate since
    assert resumed <= WINDOW + RATE * (1 + elapsed) + RATE * 0.5, f"{resumed} confirms in {elapsed:.1f}s: a burst"
    assert own_broker.depth(f"{producer.env['SLUICE_TOPOLOGY_PREFIX']}.sink") > 0
    # and ingest is accepted again (it may have to wait for a place in the window)
    wait_for(lambda: _ingest(producer, f"after-{time.monotonic()}").status_code == 202, timeout=30,
             interval=0.5, what="ingest accepted again")

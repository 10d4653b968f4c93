"""``make bench``: sluice next to a naive pika baseline, measured in the same run on the same broker.

Messages/s (persistent, publisher confirms, manual acks) for the producer alone, the consumer alone
(null sink, full decode + schema validation) and end to end. The naive baselines are a
BlockingConnection waiting for each confirm, and a consumer with prefetch 1 acking each message.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import pika

from sluice_common.amqp import Publisher
from sluice_common.config import Settings
from sluice_common.envelope import Event, encode
from sluice_testing.broker import start_broker
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

N = int(os.environ.get("BENCH_MESSAGES", "500"))
READING = {"sensor_id": "s-1", "metric": "temperature", "value": 21.5, "unit": "celsius",
           "recorded_at": "2026-11-25T10:00:00Z"}
BODY = json.dumps(READING).encode()


def naive_produce(url: str, queue: str, n: int) -> float:
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.confirm_delivery()
        started = time.perf_counter()
        for _ in range(n):
            channel.basic_publish("", queue, BODY, pika.BasicProperties(delivery_mode=2, content_type="application/json"))
        return n / (time.perf_counter() - started)


def naive_consume(url: str, queue: str, n: int) -> float:
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        seen = 0
        started = time.perf_counter()
        for method, _props, body in channel.consume(queue):
            json.loads(body)
            channel.basic_ack(method.delivery_tag)
            seen += 1
            if seen == n:
                break
        rate = n / (time.perf_counter() - started)
        channel.cancel()
        return rate


def sluice_produce(url: str, prefix: str, n: int) -> float:

    settings = Settings.from_env({"SLUICE_AMQP_URL": url, "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events"})
    publisher = Publisher(settings.amqp, exchange=f"{prefix}.events")
    publisher.start()
    wait_for(lambda: publisher.ready, timeout=20, what="publisher ready")
    messages = [encode(Event("sensor.reading", READING), f"{prefix}.events") for _ in range(n)]
    started = time.perf_counter()
    errors = publisher.publish_and_wait(messages, timeout=300)
    rate = n / (time.perf_counter() - started)
    publisher.stop()
    assert not any(errors), "sluice publish not confirmed"
    return rate


def main() -> int:
    broker = start_broker("sluice-test")
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    rows = []
    try:
        naive_q = f"{prefix}.naive"
        rows.append(("producer", "naive pika (confirm per publish)", naive_produce(broker.amqp_url, naive_q, N)))
        rows.append(("consumer", "naive pika (prefetch 1, ack each)", naive_consume(broker.amqp_url, naive_q, N)))
        env = {"SLUICE_AMQP_URL": broker.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
               "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events", "SLUICE_SINK_KIND": "null", "SLUICE_LOG_LEVEL": "WARNING"}
        consumer = ServiceProcess("sluice_consumer", env).start().wait_ready()
        consumer.terminate()  # topology declared; now fill the queue with nobody consuming
        consumer.close()
        rows.append(("producer", "sluice Publisher (window 1000)", sluice_produce(broker.amqp_url, prefix, N)))
        consumer = ServiceProcess("sluice_consumer", env).start()
        started = time.perf_counter()
        consumer.wait_ready()
        wait_for(lambda: consumer.metric("sluice_messages_processed_total", outcome="acked") >= N, timeout=300,
                 interval=0.02, what="sluice consumer done")
        rows.append(("consumer", "sluice consumer (validate, null sink)", N / (time.perf_counter() - started)))
        consumer.terminate()
        consumer.close()
    finally:
        broker.delete_prefix(prefix)
    base = {side: rate for side, name, rate in rows if name.startswith("naive")}
    print(f"\n{N} persistent messages, quorum queue, RabbitMQ 4.0.5 on loopback\n")
    print("| side | implementation | msgs/s | vs naive |\n|---|---|---|---|")
    for side, name, rate in rows:
        print(f"| {side} | {name} | {rate:,.0f} | {rate / base[side]:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

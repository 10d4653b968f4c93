"""The naive pika baseline: what a first attempt looks like.

Producer: ``BlockingConnection``, one publisher-confirm round trip per message. Consumer: prefetch 1,
one ack per message.
"""

from __future__ import annotations

import json

import pika

from bench.workload import BODY, Meter, Report, Tally, paced_chunks, stamp, stamp_age

__all__ = ["consume", "produce"]

NAME = "naive pika"


def produce(url: str, exchange: str, routing_key: str, n: int, rate: float | None = None) -> Report:
    """Publish ``n`` persistent messages, waiting for each confirm before the next publish."""
    meter = Meter(NAME, "producer")
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        meter.begin()
        for chunk in paced_chunks(n, rate):
            for seq in chunk:
                properties = pika.BasicProperties(delivery_mode=2, content_type="application/json",
                                                  type="sensor.reading", message_id=stamp(seq))
                channel.basic_publish(exchange, routing_key, BODY, properties, mandatory=True)
        meter.end()
    return meter.report(n)


def consume(url: str, queue: str, tally: Tally) -> Report:
    """Consume with prefetch 1 and ack each message, until every expected message was counted."""
    meter = Meter(NAME, "consumer")
    seen, latencies = 0, []
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        tally.ready()
        for method, properties, body in channel.consume(queue, inactivity_timeout=0.1):
            if method is None:
                if tally.done.is_set():
                    break
                continue
            meter.begin()
            json.loads(body)
            channel.basic_ack(method.delivery_tag)
            seen += 1
            age = stamp_age(properties.message_id)
            if age is not None:
                latencies.append(age)
            meter.end()
            if tally.add():
                break
        channel.cancel()
    return meter.report(seen, latencies)

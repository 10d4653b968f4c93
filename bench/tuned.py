"""The tuned raw pika loop: the practical ceiling for a Python client on this broker.

Producer: ``SelectConnection`` with up to 1000 unconfirmed messages in flight (confirms arrive
asynchronously, often ``multiple``). Consumer: ``SelectConnection``, prefetch 300, one ``multiple``
ack per 50 messages. No reconnection, no retries, no validation: only what the protocol requires.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pika
from pika.adapters.select_connection import SelectConnection

from bench.workload import BODY, Meter, Report, Tally, stamp, stamp_age

__all__ = ["consume", "produce"]

NAME = "tuned raw pika"
MAX_OUTSTANDING = 1000
PREFETCH = 300
ACK_EVERY = 50


def _message(payload: str, seq: int) -> tuple[bytes, pika.BasicProperties]:
    if payload == "celery":
        from bench.celery_consumer import task_message  # only the celery run needs it

        body, props = task_message(seq)
        return body, pika.BasicProperties(delivery_mode=2, **props)
    return BODY, pika.BasicProperties(delivery_mode=2, content_type="application/json", type="sensor.reading",
                                      message_id=stamp(seq))


def _run_loop(url: str, on_channel: Callable[[Any], None]) -> None:
    """Open a connection and a channel, and run the I/O loop until the connection closes."""
    connection = SelectConnection(
        pika.URLParameters(url),
        on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
        on_open_error_callback=lambda c, e: c.ioloop.stop(),
        on_close_callback=lambda c, e: c.ioloop.stop(),
    )
    connection.ioloop.start()


def produce(url: str, exchange: str, routing_key: str, n: int, payload: str = "event") -> Report:
    """Publish ``n`` persistent messages with at most ``MAX_OUTSTANDING`` awaiting their confirm."""
    meter = Meter(NAME, "producer")
    state: dict[str, Any] = {"published": 0, "confirmed": 0, "nacked": 0}

    def publish_more(channel: Any) -> None:
        while state["published"] - state["confirmed"] < MAX_OUTSTANDING and state["published"] < n:
            body, properties = _message(payload, state["published"])
            channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
            state["published"] += 1

    def on_confirm(frame: Any) -> None:
        method = frame.method
        # Tags are 1-based publish counts: a multiple confirm settles everything up to its tag.
        state["confirmed"] = max(state["confirmed"], method.delivery_tag)
        if isinstance(method, pika.spec.Basic.Nack):
            state["nacked"] += 1
        if state["confirmed"] >= n:
            meter.end()
            channel_ref["channel"].connection.close()
        else:
            publish_more(channel_ref["channel"])

    channel_ref: dict[str, Any] = {}

    def on_channel(channel: Any) -> None:
        channel_ref["channel"] = channel
        channel.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _f: start(channel))

    def start(channel: Any) -> None:
        meter.begin()
        publish_more(channel)

    _run_loop(url, on_channel)
    if state["confirmed"] < n or state["nacked"]:
        raise RuntimeError(f"tuned producer: {state['confirmed']} of {n} confirmed, {state['nacked']} nacked")
    return meter.report(n)


def consume(url: str, queue: str, tally: Tally, prefetch: int = PREFETCH) -> Report:
    """Consume with ``prefetch`` and a ``multiple`` ack every ``ACK_EVERY`` messages."""
    meter = Meter(NAME, "consumer")
    state: dict[str, Any] = {"seen": 0, "unacked": 0, "last_tag": 0}
    latencies: list[float] = []

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        meter.begin()
        json.loads(body)
        state["seen"] += 1
        state["unacked"] += 1
        state["last_tag"] = method.delivery_tag
        age = stamp_age(properties.message_id)
        if age is not None:
            latencies.append(age)
        if state["unacked"] >= ACK_EVERY:
            flush(channel)

    def flush(channel: Any) -> None:
        if state["unacked"]:
            channel.basic_ack(state["last_tag"], multiple=True)
            meter.end()
            done = tally.add(state["unacked"])
            state["unacked"] = 0
            if done:
                channel.connection.close()

    def tick(channel: Any) -> None:
        # The last few messages of a run never fill a batch: ack them after a quiet moment.
        flush(channel)
        if tally.done.is_set():
            if channel.connection.is_open:
                channel.connection.close()
            return
        channel.connection.ioloop.call_later(0.01, lambda: tick(channel))

    def on_qos(channel: Any) -> None:
        channel.basic_consume(queue, on_message, callback=lambda _f: tally.ready())
        tick(channel)

    def on_channel(channel: Any) -> None:
        channel.basic_qos(prefetch_count=prefetch, callback=lambda _f: on_qos(channel))

    _run_loop(url, on_channel)
    return meter.report(state["seen"], latencies)

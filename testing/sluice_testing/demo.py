"""``make demo``: a producer, two consumers and a flaky webhook against a local RabbitMQ 4.x.

Uses the broker at ``SLUICE_AMQP_URL`` when one is reachable there, else starts the RabbitMQ 4.x
container (scripts/rabbitmq.sh). Prints one line a second; Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import urllib.parse

import pika
import requests

from sluice_common.config import Settings
from sluice_common.topology import group_topology
from sluice_testing.broker import start_broker
from sluice_testing.flaky_sink import FlakySink
from sluice_testing.processes import ServiceProcess

#: Events per second the demo's generator publishes, and the share of webhook calls that fail.
RATE = os.environ.get("DEMO_RATE", "50")
FAIL_RATIO = float(os.environ.get("DEMO_FAIL_RATIO", "0.2"))


def _reachable(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parsed.hostname or "localhost", parsed.port or 5672), timeout=1):
            return True
    except OSError:
        return False


def _start_clean(url: str, env: dict[str, str]) -> None:
    """Delete the demo's own queues (``demo.*``): each demo starts empty, with the current topology."""
    topology = group_topology(Settings.from_env(env).topology, "default", ("#",))
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        for queue in topology.queues:
            channel.queue_delete(queue.name)


def _status_line(producer: ServiceProcess, consumers: list[ServiceProcess]) -> str:
    def total(name: str, **labels: str) -> float:
        return sum(c.metric(name, **labels) for c in consumers)

    depth = {q: consumers[0].metric("sluice_queue_messages", queue=q)
             for q in ("demo.default", "demo.default.retry.1s", "demo.default.retry.5s", "demo.default.dead")}
    return (f"published {producer.metric('sluice_messages_published_total', outcome='confirmed'):.0f}  "
            f"acked {total('sluice_messages_processed_total', outcome='acked'):.0f}  "
            f"retried {total('sluice_messages_processed_total', outcome='retried'):.0f}  "
            f"dead-lettered {total('sluice_messages_processed_total', outcome='dead_lettered'):.0f}  "
            "queues " + " ".join(f"{q.removeprefix('demo.default') or 'work'}={n:.0f}" for q, n in depth.items()))


def main() -> int:
    url = os.environ.get("SLUICE_AMQP_URL", "")
    if not (url and _reachable(url)):
        print("Starting RabbitMQ 4.x in a container (scripts/rabbitmq.sh start sluice-demo)...", flush=True)
        url = start_broker("sluice-demo").amqp_url
    sink = FlakySink(fail_ratio=FAIL_RATIO).start()
    env = {"SLUICE_AMQP_URL": url, "SLUICE_TOPOLOGY_PREFIX": "demo", "SLUICE_TOPOLOGY_EXCHANGE": "demo.events",
           "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": sink.url, "SLUICE_RETRY_DELAYS": "1s,5s,30s",
           "SLUICE_RETRY_MAX_ATTEMPTS": "3", "SLUICE_CONSUMER_QUEUE_POLL_SECONDS": "1"}
    _start_clean(url, env)
    consumers = [ServiceProcess("sluice_consumer", env, name=f"consumer-{i}").start() for i in (1, 2)]
    for consumer in consumers:
        consumer.wait_ready()
    producer = ServiceProcess("sluice_producer", {**env, "SLUICE_GENERATOR_RATE": RATE}, name="producer").start()
    producer.wait_ready()
    print(f"Producer on {producer.url}/events, consumers on {consumers[0].url} and {consumers[1].url}, "
          f"sink failing {FAIL_RATIO:.0%}. Ctrl-C stops.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            try:
                print(_status_line(producer, consumers), flush=True)
            except requests.RequestException as e:
                # Ctrl-C reaches the services too (one process group): they may be gone before stop is set.
                if stop.wait(0.5):
                    break
                print(f"status unavailable: {e}", flush=True)
    finally:
        print("Stopping...", flush=True)
        for process in (producer, *consumers):
            process.terminate()
            process.close()
        sink.stop()
    print("Stopped cleanly.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``make dlq-example``: the example session of docs/dlq.md, run again against a fresh RabbitMQ 4.x.

A consumer whose webhook is down dead-letters every event after three attempts, and two invalid
events at once; then ``sluice dlq`` looks at them, replays the ones the outage killed once the
webhook is back, and purges the invalid ones. Prints each command and its real output. Starts its
own broker container (``sluice-dlq-example``) and removes it at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sluice_testing.broker import start_broker
from sluice_testing.events import READING
from sluice_testing.flaky_sink import FlakySink
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

DOWNLOAD = {"file_id": "f-1", "size_bytes": 1024, "speed_bytes_per_second": 2048.0,
            "coordinates": {"latitude": 52.5, "longitude": 13.4}, "completed_at": "2026-11-25T10:00:00Z"}


def sluice(env: dict[str, str], *args: str) -> None:
    """Run ``sluice ARGS`` and print the command line with its output, as a terminal would show it."""
    result = subprocess.run([sys.executable, "-m", "sluice_common.cli", *args], env=env, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)
    shown = " ".join(f"'{a}'" if "*" in a else a for a in args)
    print(f"$ sluice {shown}\n{result.stdout}{result.stderr}", end="")
    if result.returncode:
        print(f"(exit status {result.returncode})")
    print(flush=True)


def main() -> int:
    broker = start_broker("sluice-dlq-example")
    sink = FlakySink().start()
    sink.status = 503  # the outage
    env = {"SLUICE_AMQP_URL": broker.amqp_url, "SLUICE_RETRY_DELAYS": "200ms,400ms", "SLUICE_RETRY_MAX_ATTEMPTS": "3",
           "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": sink.url}
    consumer = ServiceProcess("sluice_consumer", env).start()
    try:
        consumer.wait_ready()
        for i in range(6):
            body = json.dumps({**READING, "value": 20 + i}).encode()
            broker.publish("sluice.events", "sensor.reading", body, message_id=f"reading-{i}")
        for i in range(2):
            broker.publish("sluice.events", "download.completed", json.dumps(DOWNLOAD).encode(), message_id=f"download-{i}")
        broker.publish("sluice.events", "sensor.reading", json.dumps({**READING, "value": "hot"}).encode(),
                       message_id="reading-hot")
        broker.publish("sluice.events", "download.completed", json.dumps({"file_id": "f-2"}).encode(),
                       message_id="download-short")
        wait_for(lambda: broker.depth("sluice.default.dead") == 10, timeout=60, what="10 dead letters")

        cli = {**os.environ, "SLUICE_AMQP_URL": broker.amqp_url}
        sluice(cli, "dlq", "stats")
        sluice(cli, "dlq", "list")
        sluice(cli, "dlq", "peek", "--reason", "invalid", "--routing-key", "sensor.*")
        sink.status = None
        print("# The webhook is back.\n", flush=True)
        sluice(cli, "dlq", "replay", "--reason", "max_attempts", "--rate", "20")
        wait_for(lambda: len(sink.delivered) == 8, timeout=60, what="8 replayed events delivered")
        sluice(cli, "dlq", "stats", "--json")
        sluice(cli, "dlq", "purge")
        sluice(cli, "dlq", "purge", "--reason", "invalid", "--yes")
        replayed = [line for line in consumer.metrics().splitlines() if line.startswith("sluice_dlq_replayed_total")]
        print("# The consumer's /metrics:\n" + "\n".join(replayed))
        print(f"# Delivered by the webhook: {len(sink.delivered)} events, {sink.duplicates} duplicates.")
    finally:
        consumer.close()
        sink.stop()
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

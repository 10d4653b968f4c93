"""`helm test`: publish one event through the producer and wait until a consumer processed it.

Runs in the producer image with the standard library only. Configured by the test Pod's env:
SLUICE_TEST_INGEST_URL (the producer's POST /events), SLUICE_TEST_CONSUMER_SERVICES (the consumer
groups' headless Services, comma-separated), SLUICE_TEST_TIMEOUT_SECONDS and, when the ingest
requires a bearer token, SLUICE_TEST_INGEST_TOKEN_FILE. "Processed" means the
sum of sluice_messages_processed_total{outcome="acked"} over the consumer pods went up after the
publish; a pod that appears meanwhile (autoscaling) counts from zero.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid

INGEST_URL = os.environ["SLUICE_TEST_INGEST_URL"]
CONSUMER_SERVICES = [s for s in os.environ["SLUICE_TEST_CONSUMER_SERVICES"].split(",") if s]
DEADLINE = time.monotonic() + float(os.environ.get("SLUICE_TEST_TIMEOUT_SECONDS", "60"))
METRIC = 'sluice_messages_processed_total{outcome="acked"}'
TOKEN_FILE = os.environ.get("SLUICE_TEST_INGEST_TOKEN_FILE", "")


def acked_per_pod() -> dict[str, float]:
    """The acked counter of every consumer pod the headless Services resolve to, by pod IP."""
    counts = {}
    for service in CONSUMER_SERVICES:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(service, 8080, proto=socket.IPPROTO_TCP)}
        except socket.gaierror:
            continue  # no pod yet (scaled to zero)
        for address in addresses:
            try:
                with urllib.request.urlopen(f"http://{address}:8080/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith(METRIC + " "):
                    counts[address] = float(line.split()[-1])
    return counts


def publish() -> str:
    """POST one sensor.reading; retried while the producer answers 503 (broker not ready)."""
    event_id = f"helm-test-{uuid.uuid4()}"
    now = datetime.datetime.now(datetime.UTC).isoformat()
    body = json.dumps(
        {
            "id": event_id,
            "type": "sensor.reading",
            "data": {"sensor_id": event_id, "metric": "temperature", "value": 21.5, "unit": "C", "recorded_at": now},
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if TOKEN_FILE:
        with open(TOKEN_FILE, encoding="ascii") as f:
            headers["Authorization"] = f"Bearer {f.read().strip()}"
    while True:
        request = urllib.request.Request(INGEST_URL, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                print(f"Published {event_id}: HTTP {response.status}.")
                return event_id
        except (urllib.error.URLError, OSError) as e:
            if time.monotonic() > DEADLINE:
                sys.exit(f"FAIL: the producer did not accept the event before the deadline: {e}")
            print(f"Producer not ready ({e}); retrying.")
            time.sleep(2)


def main() -> None:
    before = acked_per_pod()
    print(f"Acked before: {sum(before.values()):g} over {len(before)} consumer pod(s).")
    event_id = publish()
    while time.monotonic() < DEADLINE:
        now = acked_per_pod()
        gained = sum(max(0.0, count - before.get(pod, 0.0)) for pod, count in now.items())
        if gained >= 1:
            print(f"PASS: consumers acked {gained:g} more message(s) after {event_id} was published.")
            return
        time.sleep(2)
    sys.exit(f"FAIL: no consumer acked a message within the deadline after publishing {event_id}.")


if __name__ == "__main__":
    main()

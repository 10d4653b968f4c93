"""The ingest's access controls on a running producer: bearer token (401), size (413), rate (429).

Refused requests publish nothing; probes and /metrics stay open for the kubelet and Prometheus.
"""

from __future__ import annotations

import secrets
import uuid

import pytest
import requests

from sluice_testing.events import READING
from sluice_testing.processes import ServiceProcess

pytestmark = pytest.mark.integration

EVENT = {"type": "sensor.reading", "data": READING}


@pytest.fixture
def producer(rabbitmq, tmp_path):
    token = secrets.token_urlsafe(32)
    (tmp_path / "token").write_text(token + "\n")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    rabbitmq.bind_queue(f"{prefix}.everything", f"{prefix}.events")
    process = ServiceProcess("sluice_producer", {
        "SLUICE_AMQP_URL": rabbitmq.amqp_url, "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events",
        "SLUICE_INGEST_TOKEN_FILE": str(tmp_path / "token"), "SLUICE_INGEST_MAX_BYTES": "2000",
        "SLUICE_INGEST_RATE_LIMIT": "0.01", "SLUICE_INGEST_RATE_BURST": "4",  # no refill within the test
    }, name="access-producer")
    try:
        yield process.start().wait_ready(), token
    finally:
        process.close()
        rabbitmq.delete_prefix(prefix)


def post(producer: ServiceProcess, body: object, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.post(producer.url + "/events", json=body, headers=headers, timeout=30)


def test_tokens_sizes_and_rates_are_enforced_in_that_order(producer):
    process, token = producer
    # Without the token, or with a wrong one, even a huge body: 401 and a challenge
    for presented in (None, "wrong-" + token, token[:-1]):
        refused = post(process, EVENT, presented)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert post(process, {**EVENT, "data": {**READING, "sensor_id": "x" * 5000}}, None).status_code == 401
    # With the token: over the size limit 413, then events are accepted until the burst is spent
    assert post(process, {**EVENT, "data": {**READING, "sensor_id": "x" * 5000}}, token).status_code == 413
    assert [post(process, EVENT, token).status_code for _ in range(3)] == [202, 202, 202]
    # then 429 with a Retry-After
    limited = post(process, EVENT, token)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # and only the accepted events were published; probes and metrics need no token
    assert process.metric("sluice_messages_published_total", outcome="confirmed") == 3
    assert requests.get(process.url + "/readyz", timeout=5).status_code == 200
    counts = {code: process.metric("sluice_ingest_responses_total", code=code) for code in ("202", "401", "413", "429")}
    assert counts == {"202": 3, "401": 4, "413": 1, "429": 1}
    assert token not in process.metrics() and token not in process.logs()


def test_a_producer_with_an_unusable_token_file_does_not_start(rabbitmq, tmp_path):
    (tmp_path / "token").write_text("short\n")
    process = ServiceProcess("sluice_producer", {"SLUICE_AMQP_URL": rabbitmq.amqp_url,
                                                 "SLUICE_INGEST_TOKEN_FILE": str(tmp_path / "token")})
    try:
        assert process.start().process is not None and process.process.wait(30) == 2
        assert "SLUICE_INGEST_TOKEN_FILE" in process.logs() and "at least 16 characters" in process.logs()
        assert "short" not in process.logs()  # the rejected token itself is never shown
    finally:
        process.close()

"""No credential in any log line, metric or error message of a full run.

A producer and a consumer run over mutual TLS with an ingest token, at DEBUG level, through
accepted and refused requests, retries, a dead letter, a failed login, a configuration error and a
graceful shutdown. Then every secret the run used is searched for in everything they printed.
"""

from __future__ import annotations

import secrets
import signal
import urllib.parse
import uuid

import pytest
import requests

from sluice_testing.events import READING
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration

#: What a consumer logs when the broker refuses its login.
LOGIN_REFUSED = ("authentication failed", "ACCESS_REFUSED")


def test_no_secret_appears_in_logs_metrics_or_errors_of_a_full_run(tls_broker, tls_env, pki, sink, tmp_path):
    password = urllib.parse.unquote(urllib.parse.urlsplit(tls_broker.amqps_url).password or "")
    token, wrong_token, wrong_password = (secrets.token_urlsafe(32) for _ in range(3))
    key_material = pki.client.key.read_text().splitlines()[1]  # a line of the client key's base64
    (tmp_path / "token").write_text(token)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = {**tls_env(), "SLUICE_TOPOLOGY_PREFIX": prefix, "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events",
           "SLUICE_LOG_LEVEL": "DEBUG", "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": sink.url,
           "SLUICE_RETRY_DELAYS": "100ms", "SLUICE_RETRY_MAX_ATTEMPTS": "2"}
    consumer = ServiceProcess("sluice_consumer", env, name="leak-consumer")
    producer = ServiceProcess("sluice_producer", {**env, "SLUICE_INGEST_TOKEN_FILE": str(tmp_path / "token")},
                              name="leak-producer")
    locked_out = ServiceProcess("sluice_consumer", {**env, "SLUICE_AMQP_PASSWORD": wrong_password},
                                name="leak-locked-out")
    misconfigured = ServiceProcess("sluice_producer", {
        **env, "SLUICE_AMQP_URL": f"amqps://sluice:{password}@127.0.0.1:notaport/%2F"}, name="leak-misconfigured")
    everything = [consumer, producer, locked_out, misconfigured]
    try:
        consumer.start().wait_ready()
        producer.start().wait_ready()
        locked_out.start()
        misconfigured.start()
        # When events flow, one fails until it is dead-lettered, and requests are refused
        sink.fail_ids = {"doomed"}
        auth = {"Authorization": f"Bearer {token}"}
        events = [{"type": "sensor.reading", "data": READING, "id": i} for i in ("ok-1", "ok-2", "doomed")]
        assert requests.post(producer.url + "/events", json=events, headers=auth, timeout=30).status_code == 202
        assert requests.post(producer.url + "/events", json=events, timeout=30,
                             headers={"Authorization": f"Bearer {wrong_token}"}).status_code == 401
        assert requests.post(producer.url + "/events", data=b"{", headers=auth, timeout=30).status_code == 415
        wait_for(lambda: consumer.metric("sluice_dead_letters_total", reason="max_attempts") == 1, timeout=60,
                 what="the dead letter")
        # (pika reports a refused login as a probable authentication error or as the broker's 403)
        wait_for(lambda: any(s in locked_out.logs() for s in LOGIN_REFUSED), timeout=60, what="the failed login")
        assert misconfigured.process is not None and misconfigured.process.wait(30) == 2, misconfigured.logs()
        scraped = consumer.metrics() + producer.metrics()
        # and everything shuts down gracefully
        assert consumer.terminate() == 0, consumer.logs()[-3000:]
        assert producer.terminate() == 0, producer.logs()[-3000:]
        locked_out.signal(signal.SIGTERM)
        # Then no secret is in anything they printed or served
        printed = scraped + "".join(p.logs() for p in everything)
        assert "SLUICE_AMQP_URL" in misconfigured.logs()
        for name, secret in [("broker password", password), ("ingest token", token), ("presented token", wrong_token),
                             ("wrong password", wrong_password), ("client key", key_material)]:
            assert len(secret) >= 16, name
            assert secret not in printed, f"the {name} leaked"
    finally:
        for process in everything:
            process.close()

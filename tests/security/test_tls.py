"""TLS to the broker: services connect over mutual TLS; a wrong CA or a missing client certificate
fails with an error that says what to fix; a CA file that is not PEM stops start-up."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from sluice_testing.events import READING
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def processes():
    started: list[ServiceProcess] = []

    def start(module: str, env: dict[str, str], name: str) -> ServiceProcess:
        process = ServiceProcess(module, {"SLUICE_LOG_FORMAT": "json", **env}, name=name).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def test_producer_and_consumer_deliver_events_over_mutual_tls(tls_broker, tls_env, sink, processes):
    # Given a producer and a consumer that reach the broker only through its TLS port
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = {**tls_env(), "SLUICE_TOPOLOGY_PREFIX": prefix, "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events",
           "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": sink.url}
    processes("sluice_consumer", env, "tls-consumer").wait_ready()
    producer = processes("sluice_producer", env, "tls-producer").wait_ready()
    # When events are posted
    events = [{"type": "sensor.reading", "data": READING, "id": f"tls-{i}"} for i in range(20)]
    assert requests.post(producer.url + "/events", json=events, timeout=30).status_code == 202
    # Then every one is delivered, and each sluice connection the broker sees is encrypted
    wait_for(lambda: sink.delivered == {f"tls-{i}" for i in range(20)}, timeout=30, what="delivery over TLS")
    def sluice_connections() -> list[dict[str, Any]]:
        found = [c for c in tls_broker.connections()
                 if str(c.get("client_properties", {}).get("connection_name", "")).startswith("sluice")]
        return found if len(found) >= 2 else []  # the management API lists new connections a little later

    ours = wait_for(sluice_connections, timeout=30, what="both sluice connections in the management API")
    assert all(c["ssl"] is True for c in ours), ours
    assert {c["peer_cert_subject"] for c in ours} == {"CN=client"}


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("wrong-ca", ["TLS certificate of the broker not trusted", "SLUICE_AMQP_CA_FILE"]),
        ("no-client-cert", ["the broker requires a client certificate", "SLUICE_AMQP_CERT_FILE"]),
    ],
)
def test_a_failed_tls_handshake_is_logged_with_what_to_fix(tls_broker, tls_env, pki, processes, variant, expected):
    # Given a consumer that trusts another CA, or presents no client certificate
    env = tls_env(ca=pki.wrong_ca) if variant == "wrong-ca" else tls_env(client=False)
    consumer = processes("sluice_consumer", env, f"tls-{variant}")
    # Then it says why it cannot connect, stays unready, and keeps trying instead of crashing
    wait_for(lambda: all(e in consumer.logs() for e in expected), timeout=30, what=f"the {variant} error in the log")
    assert requests.get(consumer.url + "/readyz", timeout=5).status_code == 503
    assert consumer.process is not None and consumer.process.poll() is None
    password = tls_broker.amqps_url.split(":")[2].split("@")[0]
    assert password not in consumer.logs()


def test_a_ca_file_that_is_not_pem_stops_startup_naming_the_variable(tls_env, processes, tmp_path):
    garbage = tmp_path / "ca.crt"
    garbage.write_text("not a certificate\n")
    consumer = processes("sluice_consumer", tls_env(ca=garbage), "tls-garbage-ca")
    assert consumer.process is not None and consumer.process.wait(30) == 2
    assert "SLUICE_AMQP_CA_FILE" in consumer.logs() and "not a PEM CA bundle" in consumer.logs()

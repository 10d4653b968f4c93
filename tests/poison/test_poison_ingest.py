"""The poison corpus posted to the HTTP ingest: each gets its 4xx with a reason; nothing is published."""

from __future__ import annotations

import uuid

import pytest
import requests
from poison_corpus import CASES, MAX_BYTES, Case

from sluice_testing.processes import ServiceProcess

pytestmark = pytest.mark.integration

INGEST_CASES = [c for c in CASES if c.ingest]


@pytest.fixture(scope="module")
def deployment(rabbitmq):
    """A producer and a queue bound to every routing key of its exchange, to see anything published."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    rabbitmq.bind_queue(f"{prefix}.everything", f"{prefix}.events")
    producer = ServiceProcess("sluice_producer", {
        "SLUICE_AMQP_URL": rabbitmq.amqp_url, "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events",
        "SLUICE_MAX_MESSAGE_BYTES": str(MAX_BYTES), "SLUICE_INGEST_MAX_BYTES": str(MAX_BYTES),
    }, name="poison-producer")
    try:
        producer.start().wait_ready()
        yield prefix, producer
    finally:
        producer.close()
        rabbitmq.delete_prefix(prefix)


@pytest.mark.parametrize("case", INGEST_CASES, ids=lambda c: c.name)
def test_poison_gets_its_4xx_with_a_reason_and_nothing_is_published(deployment, rabbitmq, case: Case):
    prefix, producer = deployment
    assert case.ingest is not None
    # When the case is posted
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    response = requests.post(producer.url + "/events", data=case.body, headers=headers, timeout=30)
    # Then the answer is the expected status with a reason in its JSON body
    assert response.status_code == case.ingest["status"], response.text
    answer = response.json()
    assert case.ingest["error"] in " ".join([answer["error"], *answer.get("reasons", [])])
    # and nothing reached the broker, while the producer stays ready
    assert producer.metric("sluice_messages_published_total", outcome="confirmed") == 0
    assert rabbitmq.depth(f"{prefix}.everything") == 0
    assert producer.metric("sluice_ingest_responses_total", code=str(case.ingest["status"])) >= 1
    assert requests.get(producer.url + "/readyz", timeout=5).status_code == 200

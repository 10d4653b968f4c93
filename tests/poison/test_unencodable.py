"""A message AMQP cannot carry fails alone: the publisher rejects it and keeps publishing the rest."""

from __future__ import annotations

import pytest

from sluice_common.amqp import Publisher
from sluice_common.config import AmqpSettings
from sluice_common.envelope import OutgoingMessage
from sluice_common.errors import PublishError
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration


def message(message_id: str, exchange: str) -> OutgoingMessage:
    return OutgoingMessage(exchange=exchange, routing_key="sensor.reading", body=b"{}", message_id=message_id,
                           headers={})


def test_an_unencodable_message_is_rejected_and_does_not_block_the_queue(rabbitmq, prefix):
    # Given a publisher to an exchange with a queue bound
    rabbitmq.bind_queue(f"{prefix}.everything", f"{prefix}.events")
    publisher = Publisher(AmqpSettings(url=rabbitmq.amqp_url), exchange=f"{prefix}.events", max_outstanding=10)
    publisher.start()
    try:
        wait_for(lambda: publisher.ready, timeout=30, what="publisher ready")
        # When a message whose id overflows an AMQP short string is published between two good ones
        results = publisher.publish_and_wait(
            [message("first", f"{prefix}.events"), message("é" * 200, f"{prefix}.events"),
             message("last", f"{prefix}.events")], timeout=30)
        # Then only it fails, as invalid, and the others are confirmed and routed
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], PublishError) and results[1].outcome == "invalid"
        assert [m.message_id for m in rabbitmq.drain(f"{prefix}.everything")] == ["first", "last"]
    finally:
        publisher.stop()

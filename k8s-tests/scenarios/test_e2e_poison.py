"""Poison events end in the dead-letter queue with their reason; good events keep flowing."""

from __future__ import annotations

import json

from sluice_e2e.deployment import Deployment, sensor_events
from sluice_e2e.scenario import DELIVERY_DEADLINE
from sluice_testing.waiting import wait_for


def test_poison_events_are_dead_lettered_with_their_reason(deployment: Deployment) -> None:
    # Given good events and poison published by another client straight to the exchange
    tag = sensor_events(1)[0]["id"].split("-")[0]
    poison = {
        f"{tag}-not-json": (b"{not json", "application/json"),
        f"{tag}-schema": (json.dumps({"sensor_id": "s-1"}).encode(), "application/json"),
        f"{tag}-not-an-object": (b"[1, 2, 3]", "application/json"),
        f"{tag}-content-type": (b"<xml/>", "application/xml"),
    }
    for message_id, (body, content_type) in poison.items():
        deployment.publish_raw("sensor.reading", body, message_id=message_id, content_type=content_type)
    good = deployment.publish(sensor_events(20))

    # Then every poison message is dead-lettered as invalid, with the error that says why
    dead: dict[str, str] = {}

    def all_dead() -> bool:
        for letter in deployment.dead_letters():
            assert letter.reason == "invalid", letter
            dead[letter.event_id or ""] = letter.error
        return set(poison) <= set(dead)

    wait_for(all_dead, timeout=DELIVERY_DEADLINE, what="every poison message in the dead-letter queue")
    assert "not JSON" in dead[f"{tag}-not-json"]
    assert "schema violation" in dead[f"{tag}-schema"]
    assert "application/xml" in dead[f"{tag}-content-type"]
    # And the good events were delivered, none of the poison
    wait_for(lambda: set(good) <= set(deployment.sink.deliveries()), timeout=DELIVERY_DEADLINE,
             what="the good events delivered")
    assert not set(poison) & set(deployment.sink.deliveries())

from __future__ import annotations

import json

import pytest

from sluice_common.envelope import MAX_ID_BYTES, Delivery, Event, InvalidEvent, decode, encode, event_from_json
from sluice_common.errors import PoisonMessage


def delivery(body: bytes, *, content_type: str | None = "application/json", headers=None) -> Delivery:
    return Delivery(body=body, routing_key="sensor.reading", message_id="m-1", headers=headers or {},
                    content_type=content_type, type="sensor.reading", timestamp=0, redelivered=False, delivery_count=0)


def test_encode_then_decode_gives_back_the_event():
    event = Event("sensor.reading", {"value": 1.5, "name": "café"})
    message = encode(event, "sluice.events")
    assert (message.routing_key, message.type, message.message_id) == ("sensor.reading", "sensor.reading", event.id)
    assert message.headers["x-sluice-schema-version"] == "1"
    assert decode(delivery(message.body), max_bytes=1000).data == event.data


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"\xff\xfe", "application/json", "not UTF-8"),
        (b"{not json", "application/json", "not JSON"),
        (b"[1, 2]", "application/json", "not an array"),
        (b'{"a": 1}', "text/plain", "content type"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested too deeply"),
        (b'{"a": "' + b"x" * 2000 + b'"}', "application/json", "exceeds the limit"),
    ],
)
def test_undecodable_bodies_are_poison_with_reason_invalid(body, content_type, fragment):
    with pytest.raises(PoisonMessage) as raised:
        decode(delivery(body, content_type=content_type), max_bytes=1500 if b"x" * 2000 in body else 1 << 20)
    assert raised.value.reason == "invalid"
    assert fragment in str(raised.value)


def test_the_original_routing_key_header_wins_after_a_retry():
    d = delivery(b"{}", headers={"x-sluice-routing-key": b"download.completed"})
    assert d.event_type == "download.completed"


def test_event_from_json_lists_every_problem():
    with pytest.raises(InvalidEvent) as raised:
        event_from_json({"type": "bad key!", "data": [], "extra": 1})
    assert len(raised.value.reasons) == 3


def test_event_from_json_keeps_a_given_id_and_makes_one_otherwise():
    assert event_from_json({"type": "a.b", "data": {}, "id": "abc"}).id == "abc"
    assert len(event_from_json(json.loads('{"type": "a.b", "data": {}}')).id) == 36


def test_an_id_is_limited_in_utf8_bytes_not_characters():
    # Given ids of exactly the limit and one byte over, the second in two-byte characters
    at_limit = "\u00e9" * (MAX_ID_BYTES // 2)
    over = at_limit + "x"
    # Then the first is kept and the second refused, naming the limit
    assert event_from_json({"type": "a", "data": {}, "id": at_limit}).id == at_limit
    with pytest.raises(InvalidEvent) as refused:
        event_from_json({"type": "a", "data": {}, "id": over})
    assert refused.value.reasons == [f"'id' must be a non-empty string of at most {MAX_ID_BYTES} bytes in UTF-8"]

"""Property-based tests (hypothesis) of what hostile input reaches first: decoding, event parsing,
header parsing. Whatever the input, the outcome is a value or the one documented exception."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sluice_common.config import redact_url
from sluice_common.envelope import (
    MAX_ID_BYTES,
    MAX_JSON_DEPTH,
    ROUTING_KEY_HEADER,
    Delivery,
    Event,
    InvalidEvent,
    decode,
    encode,
    event_from_json,
    parse_json,
)
from sluice_common.errors import PoisonMessage
from sluice_testing.strategies import header_values, json_objects, json_values


def delivery(body: bytes, *, headers=None, content_type: str | None = "application/json") -> Delivery:
    return Delivery(body=body, routing_key="sensor.reading", message_id="m", headers=headers or {},
                    content_type=content_type, type="sensor.reading", timestamp=0, redelivered=False, delivery_count=0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
@example(b"\xef\xbb\xbf{}")  # a UTF-8 byte order mark
@example(b'{"a": NaN}')
@example(b"1e999")
@example(b"[" * 5000)
def test_decoding_any_bytes_gives_an_event_or_an_invalid_poison_message(body):
    try:
        event = decode(delivery(body), max_bytes=1000)
    except PoisonMessage as e:
        assert e.reason == "invalid" and e.detail
    else:
        assert isinstance(event.data, dict)


@settings(max_examples=200, deadline=None)
@given(json_objects)
def test_every_json_object_survives_encode_then_decode(data):
    message = encode(Event("sensor.reading", data), "x")
    assert decode(delivery(message.body), max_bytes=1 << 20).data == data


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=3 * MAX_JSON_DEPTH))
def test_nesting_is_accepted_up_to_the_limit_and_refused_beyond(depth):
    body = b"[" * depth + b"]" * depth
    if depth <= MAX_JSON_DEPTH:
        assert parse_json(body) is not None
    else:
        try:
            parse_json(body)
        except ValueError as e:
            assert "nested too deeply" in str(e)
        else:
            raise AssertionError(f"depth {depth} was accepted")


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_is_an_event_or_an_invalid_event_with_reasons(value):
    try:
        event = event_from_json(value)
    except InvalidEvent as e:
        assert e.reasons and all(isinstance(r, str) and r for r in e.reasons)
    else:
        assert isinstance(value, dict) and event.type == value["type"] and event.data == value["data"]


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,3}", fullmatch=True), json_objects,
       # An id is at most MAX_ID_BYTES (200) bytes in UTF-8, not 200 characters: 200 characters
       # outside ASCII are an invalid id (test_envelope.py tests that refusal).
       st.text(min_size=1, max_size=200).filter(lambda text: len(text.encode("utf-8")) <= MAX_ID_BYTES))
@example("a", {}, "x" * MAX_ID_BYTES)
@example("a", {}, "\u00e9" * (MAX_ID_BYTES // 2))
def test_well_formed_events_are_accepted_as_sent(event_type, data, event_id):
    event = event_from_json(json.loads(json.dumps({"type": event_type, "data": data, "id": event_id})))
    assert (event.type, event.data, event.id) == (event_type, data, event_id)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([ROUTING_KEY_HEADER, "x-death", "x-sluice-attempts", "other"]), header_values))
def test_any_headers_give_a_string_event_type(headers):
    assert isinstance(delivery(b"{}", headers=headers).event_type, str)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="@/:?#[]%"), min_size=1, max_size=30))
def test_a_redacted_url_never_contains_the_password(password):
    assert redact_url(f"amqp://user:{password}@broker:5672/%2F") == "amqp://user:***@broker:5672/%2F"

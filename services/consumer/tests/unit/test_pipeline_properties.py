"""Property-based tests (hypothesis) of the consumer's header parsing and of the pipeline as a whole:
forged headers and arbitrary bodies never crash it, never loop, and never trust a forged count."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from test_pipeline import READING, RecordingSink, make_pipeline

from sluice_common.envelope import ATTEMPTS_HEADER, Delivery
from sluice_consumer.retry import parse_attempts
from sluice_testing.strategies import header_values


@settings(max_examples=300, deadline=None)
@given(header_values)
def test_attempts_header_parses_to_a_bounded_count_or_raises_value_error(value):
    try:
        attempts = parse_attempts(value)
    except ValueError as e:
        assert "x-sluice-attempts" in str(e)
    else:
        assert 0 <= attempts <= 1_000_000


@given(st.integers(min_value=0, max_value=1_000_000))
def test_every_count_in_range_parses_back_from_int_str_and_bytes(count):
    assert parse_attempts(count) == parse_attempts(str(count)) == parse_attempts(str(count).encode()) == count


@settings(max_examples=200, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=200), st.just(json.dumps(READING).encode())),
    headers=st.dictionaries(st.sampled_from([ATTEMPTS_HEADER, "x-death", "x-sluice-routing-key", "x-delivery-count"]),
                            header_values | st.text(min_size=250, max_size=300), max_size=4),
    content_type=st.sampled_from([None, "", "application/json", "text/plain", "application/json; charset=utf-8"]),
    delivery_count=st.integers(min_value=0, max_value=100),
)
def test_the_pipeline_settles_any_delivery_without_raising(body, headers, content_type, delivery_count):
    # Given any body, headers and redelivery count, When handled
    delivery = Delivery(body=body, routing_key="sensor.reading", message_id="m", headers=headers,
                        content_type=content_type, type="sensor.reading", timestamp=0, redelivered=False,
                        delivery_count=delivery_count)
    decision = make_pipeline(RecordingSink()).handle(delivery)
    # Then it is acked or forwarded, never requeued, and a forwarded copy carries a sane attempt count
    assert decision.outcome in ("acked", "retried", "dead_lettered")
    if decision.forward is not None:
        assert 0 <= decision.forward.headers[ATTEMPTS_HEADER] <= 1_000_001
        assert "x-death" not in decision.forward.headers and "x-delivery-count" not in decision.forward.headers
        assert decision.forward.type is not None and len(decision.forward.type.encode()) <= 255  # AMQP short string
    if decision.outcome == "dead_lettered":
        assert decision.reason in ("invalid", "rejected", "max_attempts", "delivery_limit")

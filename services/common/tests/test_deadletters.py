from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice_common.deadletters import DeadLetter, Filter, replay_message, topic_matches
from sluice_common.envelope import Delivery


def letter(headers: dict[str, object], *, routing_key: str = "sluice.g.dead", message_id: str | None = "e-1") -> DeadLetter:
    return DeadLetter(Delivery(body=b'{"a":1}', routing_key=routing_key, message_id=message_id, headers=headers,
                               content_type="application/json", type="sensor.reading", timestamp=1764100000,
                               redelivered=False, delivery_count=0))


CONSUMER_DEAD = {
    "x-sluice-reason": "max_attempts", "x-sluice-error": "503 from sink", "x-sluice-dead-at": "2026-11-25T10:00:00.250Z",
    "x-sluice-attempts": 6, "x-sluice-routing-key": "sensor.reading", "x-sluice-group": "g",
    "x-sluice-first-seen": "2026-11-25T09:59:00.000Z", "x-sluice-schema-version": "1",
    "x-delivery-count": 3, "trace-id": "abc",
}


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("sensor.reading", "sensor.reading", True),
    ("sensor.*", "sensor.reading", True),
    ("sensor.*", "sensor.reading.raw", False),
    ("sensor.*", "sensor", False),
    ("#", "anything.at.all", True),
    ("sensor.#", "sensor", True),
    ("#.created", "deployment.created", True),
    ("#.created", "deployment.created.late", False),
    ("*.*.raw", "sensor.reading.raw", True),
    ("download.completed", "download.started", False),
])
def test_routing_keys_match_topic_patterns_as_the_broker_does(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


def test_a_dead_letter_reads_what_the_consumer_recorded():
    dead = letter(CONSUMER_DEAD)
    assert (dead.message_id, dead.routing_key, dead.reason, dead.error) == ("e-1", "sensor.reading", "max_attempts",
                                                                         "503 from sink")
    assert dead.dead_at == dt.datetime(2026, 11, 25, 10, 0, 0, 250000, tzinfo=dt.UTC)
    assert (dead.attempts, dead.replays) == (6, 0)


def test_a_dead_letter_from_the_broker_falls_back_on_x_death():
    when = dt.datetime(2026, 11, 25, 8, 0, 0)
    dead = letter({"x-first-death-reason": b"delivery_limit",
                   "x-death": [{"reason": "delivery_limit", "time": when, "queue": "sluice.g"}]},
                  routing_key="sensor.reading")
    assert (dead.reason, dead.routing_key) == ("delivery_limit", "sensor.reading")
    assert dead.dead_at == when.replace(tzinfo=dt.UTC)


@pytest.mark.parametrize("forged", [{"x-sluice-dead-at": "yesterday", "x-sluice-attempts": -4, "x-sluice-replays": "9"},
                                    {"x-sluice-attempts": True, "x-sluice-replays": -1},
                                    {"x-death": "not a list", "x-sluice-reason": 7}])
def test_forged_or_garbled_headers_are_ignored_not_trusted(forged):
    dead = letter(forged)
    assert dead.dead_at is None and dead.attempts is None and dead.replays == 0
    assert dead.reason == "unknown"


def test_filters_combine_reasons_and_routing_keys():
    dead = letter(CONSUMER_DEAD)
    assert Filter()(dead) and Filter().everything
    assert Filter(reasons=("invalid", "max_attempts"))(dead)
    assert not Filter(reasons=("invalid",))(dead)
    assert Filter(routing_keys=("download.*", "sensor.#"))(dead)
    assert not Filter(reasons=("max_attempts",), routing_keys=("download.*",))(dead)


def test_a_replayed_copy_goes_back_with_attempts_reset_and_death_headers_dropped():
    message = replay_message(letter(CONSUMER_DEAD), exchange="", routing_key="sluice.g")
    assert (message.exchange, message.routing_key, message.message_id) == ("", "sluice.g", "e-1")
    assert message.body == b'{"a":1}' and message.type == "sensor.reading"
    assert message.headers == {"x-sluice-routing-key": "sensor.reading", "x-sluice-first-seen": "2026-11-25T09:59:00.000Z",
                               "x-sluice-schema-version": "1", "trace-id": "abc", "x-sluice-replays": 1}


def test_each_replay_counts_up():
    again = replay_message(letter({**CONSUMER_DEAD, "x-sluice-replays": 2}), exchange="sluice.events",
                           routing_key="sensor.reading")
    assert again.headers["x-sluice-replays"] == 3
    assert (again.exchange, again.routing_key) == ("sluice.events", "sensor.reading")


WORD = st.text(alphabet="abcdefgh-_0123", min_size=1, max_size=6)
KEYS = st.lists(WORD, min_size=1, max_size=6).map(".".join)
HEADER_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary() | st.datetimes(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
#: The machine running the tests may be busy: no timing-based health checks or deadlines.
RELAXED = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=200)


@RELAXED
@given(KEYS)
def test_a_key_matches_itself_hash_and_its_words_replaced_by_stars(key):
    words = key.split(".")
    assert topic_matches(key, key) and topic_matches("#", key)
    assert topic_matches(".".join("*" for _ in words), key)
    assert topic_matches(words[0] + ".#", key)
    assert not topic_matches(key + ".extra", key)


@RELAXED
@given(st.dictionaries(st.sampled_from(["x-sluice-reason", "x-sluice-error", "x-sluice-dead-at", "x-sluice-attempts",
                                        "x-sluice-replays", "x-sluice-routing-key", "x-death", "x-first-death-reason"]),
                       HEADER_VALUES))
def test_any_header_values_are_read_without_raising_and_replay_resets_the_attempts(headers):
    dead = letter(headers)
    assert isinstance(dead.reason, str) and isinstance(dead.error, str) and isinstance(dead.routing_key, str)
    assert dead.dead_at is None or dead.dead_at.tzinfo is not None
    assert dead.attempts is None or dead.attempts >= 0
    message = replay_message(dead, exchange="", routing_key="sluice.g")
    assert "x-sluice-attempts" not in message.headers and message.headers["x-sluice-replays"] >= 1

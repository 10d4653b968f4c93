from __future__ import annotations

import pytest

from sluice_common.config import VARIABLES, Settings, parse_duration, redact_url
from sluice_common.errors import ConfigError


def test_defaults_are_valid_and_match_the_documented_table():
    # Given no SLUICE_* variable, When settings are read, Then every default parses
    settings = Settings.from_env({})
    assert settings.topology.retry_delays_s == (1.0, 5.0, 30.0, 120.0, 600.0)
    assert settings.topology.queue_type == "quorum"
    assert settings.topology.max_attempts == len(settings.topology.retry_delays_s) + 1
    assert settings.consumer.binding_keys == ("#",)
    assert settings.sink.success_codes == frozenset(range(200, 300))
    assert len({v.name for v in VARIABLES}) == len(VARIABLES)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("SLUICE_CONSUMER_PREFETCH", "lots", "whole number"),
        ("SLUICE_CONSUMER_PREFETCH", "0", "at least 1"),
        ("SLUICE_TOPOLOGY_QUEUE_TYPE", "stream", "quorum, classic"),
        ("SLUICE_RETRY_DELAYS", "1s,soon", "duration"),
        ("SLUICE_RETRY_DELAYS", "5s,5s", "distinct"),
        ("SLUICE_CONSUMER_BINDING_KEYS", "sensor..x", "binding key"),
        ("SLUICE_SINK_SUCCESS_CODES", "200-199", "outside"),
        ("SLUICE_AMQP_URL", "http://broker", "amqp://"),
        ("SLUICE_INGEST_ENABLED", "maybe", "true or false"),
        ("SLUICE_CONSUMER_GROUP", "amq.group", "amq."),
        ("SLUICE_GENERATOR_KINDS", "sensor,weather", "subset"),
    ],
)
def test_a_bad_value_is_rejected_with_the_variable_named(variable, value, problem):
    # When a variable has a bad value, Then the error names it and says what is wrong
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}=")
    assert problem in str(raised.value)


def test_http_sink_needs_a_url():
    with pytest.raises(ConfigError, match="SLUICE_SINK_URL"):
        Settings.from_env({"SLUICE_SINK_KIND": "http"})


def test_credentials_from_separate_variables_replace_the_urls_and_are_quoted():
    settings = Settings.from_env(
        {"SLUICE_AMQP_URL": "amqp://x:y@rabbit:5672/%2F", "SLUICE_AMQP_USERNAME": "app", "SLUICE_AMQP_PASSWORD": "p@ss/w:rd"}
    )
    assert settings.amqp.url == "amqp://app:p%40ss%2Fw%3Ard@rabbit:5672/%2F"
    assert "p%40ss" not in repr(settings.amqp)


def test_a_bad_url_error_does_not_leak_the_password():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"SLUICE_AMQP_URL": "amqp://user:s3cret@host:notaport/"})
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(("text", "seconds"), [("250ms", 0.25), ("5s", 5.0), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5)])
def test_durations_accept_units(text, seconds):
    assert parse_duration(text) == seconds


def test_redact_url_hides_only_the_password():
    assert redact_url("amqps://app:secret@rabbit:5671/vh") == "amqps://app:***@rabbit:5671/vh"
    assert redact_url("amqp://rabbit/") == "amqp://rabbit/"

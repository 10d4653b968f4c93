"""SLUICE_CONSUMER_PROCESSORS: built-in names and user processors by import path."""

from __future__ import annotations

import pytest

from sluice_common.config import Settings
from sluice_common.envelope import Event
from sluice_common.errors import ConfigError
from sluice_consumer.processors import StampProcessor, build_processors
from sluice_testing.processors import Fahrenheit


def test_processors_are_built_in_the_order_named():
    processors = build_processors(["stamp", "sluice_testing.processors:Fahrenheit"], "audit")
    assert [type(p) for p in processors] == [StampProcessor, Fahrenheit]
    event = Event("sensor.reading", {"value": 100, "unit": "celsius"}, id="e")
    for processor in processors:
        event = processor.process(event)
    assert event.data["processed_by"] == "audit"
    assert (event.data["value"], event.data["unit"]) == (212, "fahrenheit")


def test_no_processors_by_default():
    assert Settings.from_env({}).consumer.processors == ()
    assert build_processors((), "g") == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("enrich", "unknown built-in processor (known: stamp)"),
        ("no_such_module:Thing", "cannot import no_such_module"),
        ("sluice_testing.processors:Missing", "sluice_testing.processors has no Missing"),
        ("collections:OrderedDict", "returned a OrderedDict, not a Processor"),
        ("sluice_consumer.processors:StampProcessor", "StampProcessor() failed: TypeError"),
    ],
)
def test_a_processor_that_cannot_be_built_stops_start_up_naming_the_setting(name, problem):
    with pytest.raises(ConfigError) as caught:
        build_processors([name], "g")
    assert caught.value.variable == "SLUICE_CONSUMER_PROCESSORS"
    assert problem in str(caught.value)


@pytest.mark.parametrize("value", ["stamp,not a name", "Module.Path", "a:b:c", "pkg.mod:"])
def test_a_malformed_processor_list_is_a_config_error(value):
    with pytest.raises(ConfigError, match="SLUICE_CONSUMER_PROCESSORS"):
        Settings.from_env({"SLUICE_CONSUMER_PROCESSORS": value})


def test_the_list_is_comma_separated_and_blanks_are_ignored():
    settings = Settings.from_env({"SLUICE_CONSUMER_PROCESSORS": " stamp , pkg.mod:Name ,"})
    assert settings.consumer.processors == ("stamp", "pkg.mod:Name")

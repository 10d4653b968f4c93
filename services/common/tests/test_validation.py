from __future__ import annotations

import json

import pytest

from sluice_common.errors import ConfigError
from sluice_common.validation import SchemaRegistry
from sluice_testing.events import READING


def test_builtin_schemas_cover_the_synthetic_event_kinds():
    assert SchemaRegistry.load().event_types == ["deployment.created", "download.completed", "sensor.reading"]


def test_a_valid_event_has_no_errors():
    assert SchemaRegistry.load().errors("sensor.reading", READING) == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"value": "hot"}, "value: 'hot' is not of type 'number'"),
        ({"recorded_at": "yesterday"}, "recorded_at"),
        ({"recorded_at": "2026-11-25T10:00:00"}, "recorded_at"),  # no offset
        ({"unexpected": 1}, "Additional properties"),
    ],
)
def test_schema_violations_are_reported_with_their_path(change, fragment):
    errors = SchemaRegistry.load().errors("sensor.reading", {**READING, **change})
    assert any(fragment in e for e in errors), errors


def test_an_unknown_event_type_is_an_error():
    assert "unknown event type 'weather.report'" in SchemaRegistry.load().errors("weather.report", {})[0]


def test_a_schema_dir_replaces_the_builtin_schemas(tmp_path):
    (tmp_path / "order.placed.json").write_text(json.dumps({"type": "object", "required": ["order_id"]}))
    registry = SchemaRegistry.load(str(tmp_path))
    assert registry.event_types == ["order.placed"]
    assert registry.errors("order.placed", {}) == ["(root): 'order_id' is a required property"]


def test_a_broken_schema_dir_names_the_variable(tmp_path):
    (tmp_path / "bad.json").write_text('{"type": 12}')
    with pytest.raises(ConfigError, match="SLUICE_SCHEMA_DIR"):
        SchemaRegistry.load(str(tmp_path))
    with pytest.raises(ConfigError, match="SLUICE_SCHEMA_DIR"):
        SchemaRegistry.load(str(tmp_path / "missing"))

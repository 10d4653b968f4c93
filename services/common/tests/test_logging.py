"""The two log formats: JSON objects, and text lines that keep the same fields."""

from __future__ import annotations

import json
import logging
import sys

from sluice_common.logging import JsonFormatter, TextFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("sluice.sink", logging.INFO, __file__, 1, "Delivered %s event.", ("sensor.reading",), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_message_fields():
    entry = json.loads(JsonFormatter().format(_record(message_id="evt-1", event_type="sensor.reading")))
    assert entry["message"] == "Delivered sensor.reading event."
    assert (entry["message_id"], entry["event_type"]) == ("evt-1", "sensor.reading")


def test_text_lines_name_the_message_they_are_about():
    line = TextFormatter().format(_record(message_id="evt-1", event_type="sensor.reading", attempts=None))
    assert line.endswith(" INFO    sluice.sink: Delivered sensor.reading event. message_id=evt-1 event_type=sensor.reading")
    assert "attempts" not in line


def test_text_lines_without_fields_are_the_plain_message_and_a_traceback_follows_the_fields():
    assert TextFormatter().format(_record()).endswith("sluice.sink: Delivered sensor.reading event.")
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record(message_id="evt-2")
        record.exc_info = sys.exc_info()
    first, *rest = TextFormatter().format(record).splitlines()
    assert first.endswith("Delivered sensor.reading event. message_id=evt-2")
    assert rest[-1] == "ValueError: boom"

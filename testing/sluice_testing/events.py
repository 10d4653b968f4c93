"""Event data the tests, the demo and the examples share."""

from __future__ import annotations

__all__ = ["READING"]

#: A valid ``sensor.reading`` event's data.
READING = {"sensor_id": "s-1", "metric": "temperature", "value": 21.5, "unit": "celsius",
           "recorded_at": "2026-11-25T10:00:00Z"}

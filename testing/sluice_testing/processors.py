"""A processor defined outside sluice, as a user's would be: ``sluice_testing.processors:Fahrenheit``."""

from __future__ import annotations

import dataclasses

from sluice_common.envelope import Event
from sluice_consumer.processors import ProcessingError, Processor

__all__ = ["Fahrenheit"]


class Fahrenheit(Processor):
    """Converts a sensor reading in celsius to fahrenheit; a reading without a number is rejected."""

    def process(self, event: Event) -> Event:
        if event.data.get("unit") != "celsius":
            return event
        value = event.data.get("value")
        if not isinstance(value, (int, float)):
            raise ProcessingError("a celsius reading needs a numeric value", retryable=False)
        return dataclasses.replace(event, data=dict(event.data, value=value * 9 / 5 + 32, unit="fahrenheit"))

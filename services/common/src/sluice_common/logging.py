"""Structured logs: one JSON object per line on stderr (or a line of text, for a terminal).

Call :func:`configure_logging` once, from a service's ``__main__``. Pass ``extra={"message_id": ...}``
on every line about a message; it becomes a field of the JSON object, or ``message_id=...`` after
the text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging"]

#: ``extra=`` keys copied into the JSON object when present.
_EXTRA_FIELDS = ("message_id", "event_type", "queue", "reason", "attempts", "outcome", "group")


class JsonFormatter(logging.Formatter):
    """Formats a record as a single-line JSON object with time, level, logger and message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message``, then the ``extra=`` fields as ``key=value`` (a traceback below)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging.Formatter's name
        fields = [f"{key}={record.__dict__[key]}" for key in _EXTRA_FIELDS if record.__dict__.get(key) is not None]
        return " ".join([super().formatMessage(record), *fields])


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send sluice's logs to stderr as JSON (or plain text with ``fmt="text"``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pika logs every failed connection attempt as ERROR, with a traceback; sluice_common.amqp logs
    # the same event once, as a sentence with the retry delay. pika speaks again at DEBUG.
    logging.getLogger("pika").setLevel(logging.CRITICAL if level != "DEBUG" else logging.INFO)

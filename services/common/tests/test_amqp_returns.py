"""Returned messages: each is counted for its confirm, but only the first of a routing key is logged."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from sluice_common.amqp import Publisher
from sluice_common.config import AmqpSettings


def _return(publisher: Publisher, routing_key: str, message_id: str) -> None:
    method = SimpleNamespace(reply_text="NO_ROUTE", routing_key=routing_key)
    publisher._on_return(None, method, SimpleNamespace(message_id=message_id), b"")


def test_only_the_first_return_of_each_routing_key_is_a_warning(caplog) -> None:
    # Given a publisher (not connected: returns are handed to it directly)
    publisher = Publisher(AmqpSettings("amqp://guest:guest@localhost/"), exchange="sluice.events")
    caplog.set_level(logging.DEBUG, logger="sluice.amqp")
    # When 1,000 messages of one routing key and 1 of another come back
    for i in range(1000):
        _return(publisher, "sensor.reading", f"e-{i}")
    _return(publisher, "download.completed", "d-0")
    # Then two warnings were logged, one per routing key, and every return is remembered for its confirm
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.args[1] for r in warnings] == ["sensor.reading", "download.completed"]  # type: ignore[index]
    assert sum(1 for r in caplog.records if r.levelno == logging.DEBUG) == 999
    assert sum(publisher._returned.values()) == 1001
    # When the connection is lost, Then a new connection warns again
    publisher._on_disconnected()
    _return(publisher, "sensor.reading", "e-again")
    assert caplog.records[-1].levelno == logging.WARNING

"""Steady load through the producer's ``POST /events``, recording which ids the broker confirmed."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from sluice_testing.chaos.accounting import Ledger

__all__ = ["REQUEST_TIMEOUT_S", "STOP_TIMEOUT_S", "IngestLoad", "sensor_event"]

#: How long one ingest request may take; the producer answers 503 well before (publish timeout).
REQUEST_TIMEOUT_S = 20.0
#: The longest :meth:`IngestLoad.stop` waits for the request in progress.
STOP_TIMEOUT_S = REQUEST_TIMEOUT_S + 5


def sensor_event(event_id: str, *, padding: int = 0) -> dict[str, Any]:
    """A valid ``sensor.reading`` event with a chosen id; ``padding`` adds label bytes to the body."""
    data: dict[str, Any] = {"sensor_id": "chaos-1", "metric": "temperature", "value": 21.5, "unit": "celsius",
                            "recorded_at": "2026-11-26T00:00:00Z"}
    if padding:
        data["labels"] = {"pad": "x" * padding}
    return {"id": event_id, "type": "sensor.reading", "data": data}


class IngestLoad:
    """Posts batches of events to ``url`` at ``rate`` events per second, for at most ``max_events``.

    Each id goes in the ledger as confirmed (a 202, or listed as confirmed in a 503) or unconfirmed
    (any other answer, or no answer). Every ``doomed_every``-th id it may send is in ``ledger.doomed``
    from the start, so a sink elsewhere can be told them before the first is sent: the round's sink
    refuses those for good.
    """

    def __init__(self, url: str, ledger: Ledger, *, prefix: str, rate: float = 50.0, batch: int = 10,
                 doomed_every: int = 25, max_events: int = 5000) -> None:
        self._url = url
        self._ledger = ledger
        self._prefix = prefix
        self._interval = batch / rate
        self._batch = batch
        self._max_events = max_events
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-load", daemon=True)
        self._session = requests.Session()
        self._session.trust_env = False  # loopback only: never through a proxy from the environment
        self.sent = 0
        self.answers: dict[int, int] = {}  # HTTP status (0: no answer) → requests
        # Whole batches: the last one may pass max_events.
        ledger.doomed.update(self._id(n) for n in range(0, max_events + batch, doomed_every))

    def start(self) -> IngestLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the request in progress and wait for it."""
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_S)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set() and self.sent < self._max_events:
            ids = [self._id(self.sent + i) for i in range(self._batch)]
            self.sent += len(ids)
            self._post(ids)
            next_at += self._interval
            self._stop.wait(max(next_at - time.monotonic(), 0))
            next_at = max(next_at, time.monotonic() - self._interval)  # after a slow answer, do not burst

    def _id(self, n: int) -> str:
        return f"{self._prefix}-{n:05d}"

    def _post(self, ids: list[str]) -> None:
        try:
            response = self._session.post(self._url, json=[sensor_event(i) for i in ids], timeout=REQUEST_TIMEOUT_S)
        except requests.RequestException:
            self.answers[0] = self.answers.get(0, 0) + 1
            self._ledger.record(unconfirmed=ids)
            return
        self.answers[response.status_code] = self.answers.get(response.status_code, 0) + 1
        if response.status_code == 202:
            self._ledger.record(confirmed=ids)
            return
        confirmed = set(_json(response).get("confirmed") or ()) & set(ids)
        self._ledger.record(confirmed=confirmed, unconfirmed=set(ids) - confirmed)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

"""A webhook that records what it receives and fails on demand: the sink of the tests and the demo.

    python -m sluice_testing.flaky_sink --port 9000 --fail-ratio 0.2

Every request's ``Idempotency-Key`` is counted, so a test can tell delivered from duplicated.
Besides ``POST /events`` it serves a control API, so a test can drive a sink running elsewhere (the
end-to-end suite runs this file as a pod in a kind cluster, with the standard library only):

- ``GET /state``: ``{"received": {id: times delivered}, "failed": n, "delivery_times": [...],
  "delayed_successes": n, "now": t}``, the times on the sink's monotonic clock (``now`` is that
  clock at the answer, so a client can map them onto its own);
- ``POST /control`` with any of ``{"status": 500 | null, "delay_s": 0.2, "fail_ids": [...],
  "reject_ids": [...], "reset": true}``: set the failure mode (``reset`` forgets what was
  received first).
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FlakySink"]


class FlakySink:
    """An HTTP sink on 127.0.0.1.

    Parameters:
        fail_ratio: share of requests answered 500 at random.
        status: when set, every request gets this status (an outage: 500; a rejection: 400).
        delay_s: time taken by each request before answering (a slow sink).
        fail_ids: event ids answered 500 every time (a message that can never be delivered).
        reject_ids: event ids answered 422 every time (a message the sink refuses for good).

    ``delivery_times`` holds the monotonic time of every success, for throughput over time;
    ``delayed_successes`` counts successes answered after ``delay_s``, which a client that timed
    out first records as failures (and so delivers again).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, fail_ratio: float = 0.0,
                 seed: int | None = None) -> None:
        self.fail_ratio = fail_ratio
        self.status: int | None = None
        self.delay_s = 0.0
        self.fail_ids: set[str] = set()
        self.reject_ids: set[str] = set()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.received: collections.Counter[str] = collections.Counter()  # delivered ids → times answered 2xx
        self.failed = 0
        self.delivery_times: list[float] = []
        self.delayed_successes = 0
        self.documents: dict[str, dict[str, Any]] = {}
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="flaky-sink", daemon=True)

    @property
    def url(self) -> str:
        """The webhook URL consumers deliver to (``/events`` on loopback)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/events"

    def start(self) -> FlakySink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def delivered(self) -> set[str]:
        """Ids answered with success at least once."""
        with self._lock:
            return set(self.received)

    @property
    def duplicates(self) -> int:
        """Successful deliveries beyond the first of each id."""
        with self._lock:
            return sum(n - 1 for n in self.received.values())

    def reset(self) -> None:
        """Forget every request received so far."""
        with self._lock:
            self.received.clear()
            self.documents.clear()
            self.failed = 0
            self.delivery_times.clear()
            self.delayed_successes = 0

    def state(self) -> dict[str, Any]:
        """What ``GET /state`` answers: delivered ids with their counts, failed requests, when each success was answered."""
        with self._lock:
            return {"received": dict(self.received), "failed": self.failed, "delivery_times": list(self.delivery_times),
                    "delayed_successes": self.delayed_successes, "now": time.monotonic()}

    def control(self, settings: dict[str, Any]) -> None:
        """Apply a ``POST /control`` document (see the module docstring).

        Raises:
            ValueError: an unknown key or a value of the wrong type.
        """
        unknown = set(settings) - {"status", "delay_s", "fail_ids", "reject_ids", "reset"}
        if unknown:
            raise ValueError(f"unknown control keys: {sorted(unknown)}")
        status, delay = settings.get("status"), settings.get("delay_s", self.delay_s)
        fail_ids, reject_ids = settings.get("fail_ids"), settings.get("reject_ids")
        if status is not None and not (isinstance(status, int) and 100 <= status <= 599):
            raise ValueError(f"status must be an HTTP status or null, not {status!r}")
        if not isinstance(delay, int | float) or delay < 0:
            raise ValueError(f"delay_s must be a number >= 0, not {delay!r}")
        for key, ids in (("fail_ids", fail_ids), ("reject_ids", reject_ids)):
            if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
                raise ValueError(f"{key} must be a list of strings, not {ids!r}")
        if settings.get("reset"):
            self.reset()
        if "status" in settings:
            self.status = status
        self.delay_s = float(delay)
        if fail_ids is not None:
            self.fail_ids = set(fail_ids)
        if reject_ids is not None:
            self.reject_ids = set(reject_ids)

    def _answer(self, key: str, document: dict[str, Any]) -> int:
        delay = self.delay_s
        if delay:
            time.sleep(delay)
        with self._lock:
            if self.status is not None:
                status = self.status
            elif key in self.reject_ids:
                status = 422
            elif key in self.fail_ids or self._rng.random() < self.fail_ratio:
                status = 500
            else:
                status = 200
            if status < 300:
                self.received[key] += 1
                self.documents[key] = document
                self.delivery_times.append(time.monotonic())
                self.delayed_successes += 1 if delay else 0
            else:
                self.failed += 1
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/control":
                    try:
                        sink.control(json.loads(body or b"{}"))
                    except ValueError as e:  # json.JSONDecodeError is a ValueError too
                        self._reply(400, json.dumps({"error": str(e)}).encode())
                        return
                    self._reply(204)
                    return
                self._reply(sink._answer(self.headers.get("Idempotency-Key", ""), json.loads(body or b"{}")))

            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/state":
                    self._reply(404)
                    return
                self._reply(200, json.dumps(sink.state()).encode())

            def _reply(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A webhook sink that fails a share of requests.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--fail-ratio", type=float, default=0.1)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a pod)")
    args = parser.parse_args()
    sink = FlakySink(host=args.host, port=args.port, fail_ratio=args.fail_ratio).start()
    print(f"Flaky sink on {sink.url}, failing {args.fail_ratio:.0%} of requests.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sink.stop()


if __name__ == "__main__":
    main()

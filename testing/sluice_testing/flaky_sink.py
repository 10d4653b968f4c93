"""A webhook that records what it receives and fails on demand: the sink of the tests and the demo.

    python -m sluice_testing.flaky_sink --port 9000 --fail-ratio 0.2

Every request's ``Idempotency-Key`` is counted, so a test can tell delivered from duplicated.
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

    def __init__(self, *, port: int = 0, fail_ratio: float = 0.0, seed: int | None = None) -> None:
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
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="flaky-sink", daemon=True)

    @property
    def url(self) -> str:
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
                status = sink._answer(self.headers.get("Idempotency-Key", ""), json.loads(body or b"{}"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A webhook sink that fails a share of requests.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--fail-ratio", type=float, default=0.1)
    args = parser.parse_args()
    sink = FlakySink(port=args.port, fail_ratio=args.fail_ratio).start()
    print(f"Flaky sink on {sink.url}, failing {args.fail_ratio:.0%} of requests.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sink.stop()


if __name__ == "__main__":
    main()

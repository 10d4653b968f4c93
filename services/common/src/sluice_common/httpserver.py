"""The HTTP port every service serves: ``/metrics``, ``/healthz``, ``/readyz``, plus extra routes.

Built on the standard library's threading HTTP server: the routes are few and small, and the
producer's ingest handler blocks on broker confirms, which a thread per request suits.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["Response", "Route", "StatusServer", "json_response"]

_log = logging.getLogger("sluice.http")


@dataclass(frozen=True)
class Response:
    """What a route answers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, **headers: str) -> Response:
    """A JSON response."""
    return Response(status, json.dumps(payload).encode("utf-8") + b"\n", headers=headers)


#: A route handler gets the request headers and body and returns a response.
Route = Callable[[dict[str, str], bytes], Response]


class StatusServer:
    """Serves metrics, probes and any extra routes on one port, in background threads.

    Parameters:
        host, port: where to listen (port 0 picks a free one; see ``port`` after ``start``).
        alive: liveness check for ``/healthz``.
        ready: readiness check for ``/readyz``.
        routes: extra ``{("POST", "/events"): handler}``.
        max_body: request bodies above this many bytes get 413 before they are read.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        routes: Mapping[tuple[str, str], Route] | None = None,
        max_body: int = 1 << 20,
    ) -> None:
        self._routes: dict[tuple[str, str], Route] = {
            ("GET", "/metrics"): lambda _h, _b: Response(200, generate_latest(), CONTENT_TYPE_LATEST),
            ("GET", "/healthz"): lambda _h, _b: _probe(alive()),
            ("GET", "/readyz"): lambda _h, _b: _probe(ready()),
            **(routes or {}),
        }
        self._server = ThreadingHTTPServer((host, port), _make_handler(self._routes, max_body))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        """The port actually listened on."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()
        _log.info("Serving /metrics, /healthz and /readyz on port %d.", self.port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


def _probe(ok: bool) -> Response:
    return json_response(200 if ok else 503, {"status": "ok" if ok else "unavailable"})


def _make_handler(routes: dict[tuple[str, str], Route], max_body: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "sluice"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._dispatch("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            route = routes.get((method, path))
            if route is None:
                known = any(p == path for _m, p in routes)
                self._send(json_response(405 if known else 404, {"error": "method not allowed" if known else "not found"}))
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send(json_response(400, {"error": "bad Content-Length"}))
                return
            if length > max_body:
                self.close_connection = True  # the unread body would corrupt the next request
                self._send(json_response(413, {"error": f"body of {length} bytes exceeds the limit of {max_body}"}))
                return
            body = self.rfile.read(length) if length else b""
            try:
                response = route({k.lower(): v for k, v in self.headers.items()}, body)
            except Exception:
                _log.exception("Unhandled error serving %s %s.", method, path)
                response = json_response(500, {"error": "internal error"})
            self._send(response)

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass  # probes and scrapes every few seconds would drown the logs

    return Handler

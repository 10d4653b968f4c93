"""The HTTP port every service serves: ``/metrics``, ``/healthz``, ``/readyz``, plus extra routes.

Built on the standard library's threading HTTP server: the routes are few and small, and the
producer's ingest handler blocks on broker confirms, which a thread per request suits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sluice_common.httpparse import BadRequest, read_header_fields, request_version

__all__ = ["Guard", "Response", "Route", "StatusServer", "json_response"]

_log = logging.getLogger("sluice.http")

#: Seconds a client may take to send a request line, headers or body (slow clients hold a thread).
REQUEST_TIMEOUT_S = 30.0
#: A refused request's body is read and dropped up to this size, for at most DRAIN_TIMEOUT_S, so that
#: closing the socket does not reset it before the client has read the answer (a "lingering close").
DRAIN_MAX_BYTES = 4 << 20
DRAIN_TIMEOUT_S = 2.0
#: Connections the kernel queues for accept (socketserver's default is 5).
LISTEN_BACKLOG = 1024
#: Responses are assembled in a buffer of this size and sent with one write.
WRITE_BUFFER_BYTES = 64 << 10


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
#: A guard sees the headers before the body is read and answers to refuse (401, 429...), or None.
Guard = Callable[[dict[str, str]], Response | None]
#: Called after each response of an extra route with its method, path and status.
ResponseObserver = Callable[[str, str, int], None]


class StatusServer:
    """Serves metrics, probes and any extra routes on one port, in background threads.

    Parameters:
        host, port: where to listen (port 0 picks a free one; see ``port`` after ``start``).
        alive: liveness check for ``/healthz``.
        ready: readiness check for ``/readyz``.
        routes: extra ``{("POST", "/events"): handler}``.
        max_body: request bodies above this many bytes get 413 before they are read.
        guards: run in order before an extra route reads its body; the first answer wins.
        observer: told the status of every response of an extra route (for metrics).
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
        guards: Sequence[Guard] = (),
        observer: ResponseObserver | None = None,
    ) -> None:
        builtin: dict[tuple[str, str], Route] = {
            ("GET", "/metrics"): lambda _h, _b: Response(200, generate_latest(), CONTENT_TYPE_LATEST),
            ("GET", "/healthz"): lambda _h, _b: _probe(alive()),
            ("GET", "/readyz"): lambda _h, _b: _probe(ready()),
        }
        # Probes and scrapes stay open: guards and the observer concern the extra (API) routes only.
        self._routes: dict[tuple[str, str], _Guarded] = {
            **{key: _Guarded(route, (), None) for key, route in builtin.items()},
            **{key: _Guarded(route, tuple(guards), observer) for key, route in (routes or {}).items()},
        }
        self._server = _Server((host, port), _make_handler(self._routes, max_body))
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


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: 64 clients connecting at once overflowed it, and the
    # connections the kernel dropped were retried a second later (and timed out at the client).
    request_queue_size = LISTEN_BACKLOG


@dataclass(frozen=True)
class _Guarded:
    route: Route
    guards: tuple[Guard, ...]
    observer: ResponseObserver | None


def _probe(ok: bool) -> Response:
    return json_response(200 if ok else 503, {"status": "ok" if ok else "unavailable"})


def _make_handler(routes: dict[tuple[str, str], _Guarded], max_body: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "sluice"
        timeout = REQUEST_TIMEOUT_S
        # One write per response (http.server flushes after each request), sent at once: unbuffered,
        # the headers and the body left in two segments, and Nagle's algorithm held the body back
        # until the client's delayed ACK of the headers, about 40 ms per request on a kept-alive
        # connection.
        wbufsize = WRITE_BUFFER_BYTES
        disable_nagle_algorithm = True
        #: The request's header fields, names lower-cased (set by ``parse_request``).
        fields: dict[str, str]
        raw_requestline: bytes  # set by handle_one_request
        _date: tuple[int, str] = (0, "")

        def parse_request(self) -> bool:
            # http.server's own reads the header fields with the email package (see httpparse).
            # HTTP/1.0 and 1.1 only: the request line is "METHOD target HTTP/x.y".
            self.command, self.close_connection = "", True
            self.request_version = "HTTP/1.0"  # error answers carry a status line
            self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
            words = self.requestline.split()
            try:
                if len(words) != 3:
                    raise BadRequest(400, f"bad request line {self.requestline[:80]!r}")
                version = request_version(words[2])
                self.fields = read_header_fields(self.rfile)
            except BadRequest as e:
                if words:
                    self.send_error(e.status, e.message)
                return False
            self.command, self.path, self.request_version = words[0], words[1], version
            connection = self.fields.get("connection", "").lower()
            self.close_connection = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
            if self.fields.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
                return self.handle_expect_100()
            return True

        def date_time_string(self, timestamp: float | None = None) -> str:
            # The Date header changes once a second; formatting it is 3% of a small request.
            if timestamp is not None:
                return super().date_time_string(timestamp)
            second = int(time.time())
            if Handler._date[0] != second:
                Handler._date = (second, super().date_time_string(second))
            return Handler._date[1]

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
            response = self._serve(route.route, method, path, route.guards)
            if response is None:
                return
            self._send(response)
            if route.observer is not None:
                route.observer(method, path, response.status)
            if self.close_connection:
                self._drain()

        def _serve(self, route: Route, method: str, path: str, guards: tuple[Guard, ...] = ()) -> Response | None:
            """The response to send, or None when the client went away mid-request."""
            headers = self.fields
            for guard in guards:
                refusal = guard(headers)
                if refusal is not None:
                    self.close_connection = True  # the body stays unread
                    return refusal
            if "transfer-encoding" in headers:
                self.close_connection = True
                return json_response(411, {"error": "send the body with a Content-Length, not chunked"})
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                return json_response(400, {"error": "bad Content-Length"})
            if length > max_body:
                self.close_connection = True  # the unread body would corrupt the next request
                return json_response(413, {"error": f"body of {length} bytes exceeds the limit of {max_body}"})
            try:
                body = self.rfile.read(length) if length else b""
            except OSError:  # a timeout included: a client that stalls mid-body
                self.close_connection = True
                return None
            if len(body) < length:
                self.close_connection = True
                return None  # the client closed before sending the whole body
            try:
                return route(headers, body)
            except Exception:
                _log.exception("Unhandled error serving %s %s.", method, path)
                return json_response(500, {"error": "internal error"})

        def _drain(self) -> None:
            """Read and drop what the client still sends, boundedly, before the socket closes."""
            try:
                self.wfile.flush()
                self.connection.settimeout(DRAIN_TIMEOUT_S)
                remaining = DRAIN_MAX_BYTES
                while remaining > 0 and (chunk := self.connection.recv(min(remaining, 65536))):
                    remaining -= len(chunk)
            except OSError:
                pass  # the client went away or stalled: nothing more to protect

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass  # probes and scrapes every few seconds would drown the logs

    return Handler

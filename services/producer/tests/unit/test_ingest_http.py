"""The ingest's HTTP front door without a broker: guards, limits and malformed requests.

The route behind it is a stand-in that records what reached it, so each test shows what the
server refused before the body was read or handed on.
"""

from __future__ import annotations

import socket

import pytest
import requests

from sluice_common.httpserver import Response, StatusServer, json_response
from sluice_producer.ratelimit import RateLimit


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, _headers: dict[str, str], body: bytes) -> Response:
        self.bodies.append(body)
        return json_response(202, {"accepted": 1})


def deny_without_header(headers: dict[str, str]) -> Response | None:
    return None if headers.get("x-allow") == "yes" else json_response(401, {"error": "no"})


@pytest.fixture
def server():
    servers: list[StatusServer] = []

    def start(**options):
        recorder = Recorder()
        seen: list[int] = []
        srv = StatusServer("127.0.0.1", 0, alive=lambda: True, ready=lambda: True,
                           routes={("POST", "/events"): recorder}, max_body=100,
                           observer=lambda _m, _p, status: seen.append(status), **options)
        srv.start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.port}", recorder, seen

    yield start
    for srv in servers:
        srv.stop()


def test_a_guard_refuses_before_the_route_sees_the_body_and_probes_stay_open(server):
    url, recorder, seen = server(guards=[deny_without_header])
    assert requests.post(url + "/events", data=b"{}", timeout=5).status_code == 401
    assert requests.post(url + "/events", data=b"{}", headers={"x-allow": "yes"}, timeout=5).status_code == 202
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    assert recorder.bodies == [b"{}"] and seen == [401, 202]


def test_rate_limited_requests_get_429_with_retry_after(server):
    url, recorder, seen = server(guards=[RateLimit(0.01, 2)])
    statuses = [requests.post(url + "/events", data=b"{}", timeout=5) for _ in range(4)]
    assert [r.status_code for r in statuses] == [202, 202, 429, 429]
    assert int(statuses[2].headers["Retry-After"]) >= 1
    assert len(recorder.bodies) == 2


def raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (b"Content-Length: 101\r\n", b"413"),
        (b"Content-Length: -5\r\n", b"400"),
        (b"Content-Length: ten\r\n", b"400"),
        (b"Transfer-Encoding: chunked\r\n", b"411"),
    ],
    ids=["too-large", "negative-length", "non-numeric-length", "chunked"],
)
def test_malformed_or_oversized_requests_are_refused_without_reading_the_body(server, headers, status):
    url, recorder, _ = server()
    reply = raw_request(url, b"POST /events HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + b"x" * 101)
    assert reply.split(b" ", 2)[1] == status
    assert recorder.bodies == []


def test_a_body_shorter_than_its_content_length_never_reaches_the_route(server):
    url, recorder, _ = server()
    reply = raw_request(url, b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{}")
    assert reply == b"" and recorder.bodies == []

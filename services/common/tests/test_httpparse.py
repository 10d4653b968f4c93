"""Reading a request head: header fields as RFC 9112 has them, and what a server must refuse."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from sluice_common.httpparse import (
    MAX_HEADER_LINES,
    MAX_LINE_BYTES,
    BadRequest,
    read_header_fields,
    request_version,
)
from sluice_common.httpserver import StatusServer, json_response


def fields(head: bytes) -> dict[str, str]:
    return read_header_fields(io.BytesIO(head))


def test_names_are_lower_cased_values_trimmed_and_repeats_joined() -> None:
    head = b"Content-Type:  application/json \r\nX-Tag: a\r\nx-tag:b\r\n\r\nbody"
    assert fields(head) == {"content-type": "application/json", "x-tag": "a, b"}


def test_reading_stops_at_the_empty_line_and_leaves_the_body() -> None:
    # Given a head followed by a body on the same stream
    stream = io.BytesIO(b"Content-Length: 2\r\n\r\n{}")
    # When the head is read, Then the body is still there to read
    assert read_header_fields(stream) == {"content-length": "2"}
    assert stream.read() == b"{}"


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"X: " + b"a" * MAX_LINE_BYTES + b"\r\n\r\n", 431),
        (b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADER_LINES + 1)) + b"\r\n", 431),
        (b"X-Long: a\r\n  folded\r\n\r\n", 400),
        (b"Content-Length : 5\r\n\r\n", 400),
        (b"no colon here\r\n\r\n", 400),
        (b"Content-Length: 5\r\nContent-Length: 500\r\n\r\n", 400),
    ],
    ids=["line-too-long", "too-many-lines", "folded", "space-before-colon", "no-colon", "two-lengths"],
)
def test_heads_a_server_must_refuse(head: bytes, status: int) -> None:
    with pytest.raises(BadRequest) as refused:
        fields(head)
    assert refused.value.status == status


def test_a_repeated_identical_content_length_is_one_length() -> None:
    assert fields(b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n") == {"content-length": "5"}


def test_only_http_1_0_and_1_1_are_spoken() -> None:
    assert request_version("HTTP/1.1") == "HTTP/1.1"
    assert request_version("HTTP/1.0") == "HTTP/1.0"
    with pytest.raises(BadRequest) as newer:
        request_version("HTTP/2.0")
    assert newer.value.status == 505
    with pytest.raises(BadRequest) as garbage:
        request_version("HTTQ/1.1")
    assert garbage.value.status == 400


# -- the same rules on the HTTP port -------------------------------------------------------------


@pytest.fixture
def port() -> Iterator[int]:
    served = StatusServer("127.0.0.1", 0, alive=lambda: True, ready=lambda: True,
                          routes={("POST", "/events"): lambda _h, body: json_response(202, {"got": body.decode()})})
    served.start()
    yield served.port
    served.stop()


def exchange(port: int, request: bytes, *, keep_open: bool = False) -> bytes:
    """Send ``request`` and read until the server closes (or, with ``keep_open``, until 1 s of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        if keep_open:
            s.settimeout(1)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def test_http_1_0_closes_unless_kept_alive_and_1_1_keeps_unless_closed(port: int) -> None:
    post = b"POST /events HTTP/1.%d\r\nContent-Length: 2\r\n%s\r\n{}"
    # HTTP/1.0 without keep-alive, and 1.1 with "Connection: close": answered, then closed by the server
    assert exchange(port, post % (0, b"")).startswith(b"HTTP/1.1 202")
    assert exchange(port, post % (1, b"Connection: close\r\n")).startswith(b"HTTP/1.1 202")
    # HTTP/1.0 with keep-alive: the connection stays open for a second request
    twice = exchange(port, (post % (0, b"Connection: keep-alive\r\n")) * 2, keep_open=True)
    assert twice.count(b"HTTP/1.1 202") == 2


def test_a_client_that_expects_100_continue_gets_it_before_the_answer(port: int) -> None:
    reply = exchange(port, b"POST /events HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
                           b"Connection: close\r\n\r\n{}")
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202")
    assert reply.endswith(b'{"got": "{}"}\n')


@pytest.mark.parametrize(
    ("request_line", "status"),
    [(b"POST /events HTTP/2.0", b"505"), (b"POST /events", b"400"), (b"POST /events HTTP/1.1 extra", b"400")],
    ids=["http-2", "no-version", "four-words"],
)
def test_a_bad_request_line_is_answered_with_a_status_and_closed(port: int, request_line: bytes, status: bytes) -> None:
    reply = exchange(port, request_line + b"\r\nContent-Length: 2\r\n\r\n{}")
    assert reply.split(b" ", 2)[1] == status

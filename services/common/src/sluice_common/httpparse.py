"""Reading the head of an HTTP/1.0 or 1.1 request: the request line's version and the header fields.

``http.server`` reads header fields with the ``email`` package, which builds a generic MIME
message: 18% of the ingest's CPU for a small ``POST /events`` (``make profile``, side ``ingest``).
Header fields are simpler than MIME (RFC 9112, section 5): ``name ":" OWS value OWS`` per line.
This reads them with the same limits as ``http.client`` and stricter rules where RFC 9112 asks a
server to refuse: no line folding, no whitespace before the colon, names that are tokens, and no
two different ``Content-Length`` values (the request-smuggling cases).
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["MAX_HEADER_LINES", "MAX_LINE_BYTES", "BadRequest", "read_header_fields", "request_version"]

#: Longest request or header line, and most header lines (``http.client``'s limits).
MAX_LINE_BYTES = 65536
MAX_HEADER_LINES = 100

#: A field name is a token (RFC 9110, section 5.1).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _Lines(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


class BadRequest(Exception):  # noqa: N818 - an answer to send, not an error of ours
    """The request head cannot be served: answer ``status`` with ``message``, then close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def request_version(version: str) -> str:
    """The request line's protocol version if it is ``HTTP/1.0`` or ``HTTP/1.1``.

    Raises:
        BadRequest: 505 for another ``HTTP/x.y``, 400 for anything else.
    """
    if version in ("HTTP/1.1", "HTTP/1.0"):
        return version
    if re.fullmatch(r"HTTP/\d{1,10}\.\d{1,10}", version):
        raise BadRequest(505, f"HTTP version {version[5:]!r} is not supported; use HTTP/1.1")
    raise BadRequest(400, f"bad request version {version[:40]!r}")


def read_header_fields(rfile: _Lines) -> dict[str, str]:
    """Read header lines up to the empty line; names lower-cased, repeated fields joined with ``", "``.

    Raises:
        BadRequest: 431 for a line or a head over the limits, 400 for a malformed field, a folded
            line, or two different ``Content-Length`` values.
    """
    fields: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES + 1):
        line = rfile.readline(MAX_LINE_BYTES + 1)
        if len(line) > MAX_LINE_BYTES:
            raise BadRequest(431, "header line too long")
        if line in (b"\r\n", b"\n", b""):
            return fields
        if line[:1] in (b" ", b"\t"):
            raise BadRequest(400, "folded header lines are not accepted")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise BadRequest(400, f"malformed header line {line[:60]!r}")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t\r\n").decode("iso-8859-1")
        if key in fields:
            if key == "content-length" and fields[key] != text:
                raise BadRequest(400, "two different Content-Length values")
            if key != "content-length":
                fields[key] = f"{fields[key]}, {text}"
            continue
        fields[key] = text
    raise BadRequest(431, f"more than {MAX_HEADER_LINES} header lines")

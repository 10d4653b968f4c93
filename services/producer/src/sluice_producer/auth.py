"""Bearer-token authentication of the ingest API, with the token read from a file (a mounted Secret).

The file is read again when it changes, so a rotated Secret takes effect without a restart. Tokens
are compared in constant time, and never logged or echoed.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading

from sluice_common.errors import ConfigError
from sluice_common.httpserver import Response, json_response

__all__ = ["MIN_TOKEN_CHARS", "BearerAuth"]

#: Shortest token accepted: a guessable token is no authentication (16 random bytes make 22+ characters).
MIN_TOKEN_CHARS = 16
#: The variable that names the token file, for error messages.
TOKEN_VARIABLE = "SLUICE_INGEST_TOKEN_FILE"


class BearerAuth:
    """A guard answering 401 unless the request carries ``Authorization: Bearer <token>``.

    Usage::

        auth = BearerAuth("/etc/sluice/ingest/token")   # raises ConfigError if unusable
        auth({"authorization": "Bearer s3cr3t..."})     # None: let the request through
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._log = logging.getLogger("sluice.ingest.auth")
        self._stamp: tuple[float, int] = (0.0, 0)
        self._token = self._read()

    def __call__(self, headers: dict[str, str]) -> Response | None:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        token = self._current()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token):
            return json_response(
                401, {"error": "a valid bearer token is required"}, **{"WWW-Authenticate": 'Bearer realm="sluice"'}
            )
        return None

    def _read(self) -> bytes:
        try:
            stat = os.stat(self._path)
            with open(self._path, "rb") as f:
                token = f.read().strip()
        except OSError as e:
            raise ConfigError(TOKEN_VARIABLE, self._path, f"cannot read the token: {e.strerror}") from None
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(TOKEN_VARIABLE, self._path, f"the token must have at least {MIN_TOKEN_CHARS} characters")
        if any(byte <= 0x20 or byte >= 0x7F for byte in token):
            raise ConfigError(TOKEN_VARIABLE, self._path, "the token must be printable ASCII without spaces")
        self._stamp = (stat.st_mtime, stat.st_ino)
        return token

    def _current(self) -> bytes:
        """The token, read again if the file changed (Kubernetes swaps a Secret's files atomically)."""
        try:
            stat = os.stat(self._path)
        except OSError:
            return self._token  # mid-swap or gone: keep the last good token
        if (stat.st_mtime, stat.st_ino) == self._stamp:
            return self._token
        with self._lock:
            try:
                self._token = self._read()
                self._log.info("Ingest token reloaded from %r.", self._path)
            except ConfigError as e:
                self._log.warning("Keeping the previous ingest token: %s.", e)
        return self._token

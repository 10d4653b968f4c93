"""A stable loopback address in front of a broker whose port changes: what a Kubernetes Service is.

A RabbitMQ container restarted by the tests comes back on new ephemeral host ports, while the
services keep the URL they started with. :class:`TcpProxy` listens on one fixed 127.0.0.1 port and
forwards each connection to wherever the broker is now; :meth:`TcpProxy.retarget` moves it and
drops the open connections, as a pod's death would.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["TcpProxy"]

#: Bytes copied per read; AMQP frames of the tests are far smaller.
_CHUNK = 65536


class TcpProxy:
    """Forwards connections from ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>``.

    Loopback only, on both sides: the proxy never reaches another host.
    """

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def retarget(self, target_port: int) -> None:
        """Send new connections to ``target_port`` and close the ones open now."""
        with self._lock:
            self._target_port = target_port
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed.set()
        _close(self._listener)
        self.retarget(self._target_port)
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                port = self._target_port
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)  # the broker is down: the client sees a refused connection and retries
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), name="tcp-proxy-pipe", daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                target.sendall(data)
        except OSError:
            pass
        finally:
            # Either side ending ends both, so neither waits for a peer that is gone.
            with self._lock:
                self._open.discard(source)
                self._open.discard(target)
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

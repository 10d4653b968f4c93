"""A TCP proxy on 127.0.0.1 that a test controls: cut every connection, refuse new ones.

    proxy = TcpProxy(("127.0.0.1", broker_port)).start()
    env["SLUICE_AMQP_URL"] = proxy.rewrite(broker.amqp_url)   # clients go through the proxy
    proxy.cut()                                               # resets every open connection, refuses new ones
    proxy.restore()

Only loopback addresses are accepted as targets: chaos never leaves the machine.
"""

from __future__ import annotations

import selectors
import socket
import threading
import urllib.parse

__all__ = ["TcpProxy"]

#: Bytes moved per read; AMQP frames larger than this simply take several reads.
CHUNK = 65536
#: How long a connection attempt to the target may take.
CONNECT_TIMEOUT_S = 2.0


class TcpProxy:
    """Forwards connections from a loopback port to ``target``, one pair of threads per connection.

    Parameters:
        target: (host, port) to forward to; the host must be a loopback address.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self._check_loopback(target[0])
        self._target = target
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._refusing = False
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def rewrite(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's."""
        parsed = urllib.parse.urlsplit(url)
        userinfo = parsed.netloc.rpartition("@")[0]
        netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{self.port}"
        return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, parsed.query, parsed.fragment))

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every connection."""
        self._closed.set()
        self._listener.close()
        self._reset_all()

    def cut(self) -> int:
        """Reset every open connection and refuse new ones until :meth:`restore`; returns how many were cut."""
        with self._lock:
            self._refusing = True
        return self._reset_all()

    def restore(self) -> None:
        """Accept and forward connections again."""
        with self._lock:
            self._refusing = False

    @property
    def connections(self) -> int:
        """Client connections open right now."""
        with self._lock:
            return len(self._open) // 2

    @staticmethod
    def _check_loopback(host: str) -> None:
        if not (host == "localhost" or host.startswith("127.") or host == "::1"):
            raise ValueError(f"the proxy only forwards to loopback addresses, not {host!r}")

    def _reset_all(self) -> int:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            try:
                # SO_LINGER 0: close sends a RST, as a dropped network path eventually does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()
            except OSError:
                pass
        return len(sockets) // 2

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing, target = self._refusing, self._target
            if refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT_S)
            except OSError:
                client.close()  # the target is down: the client sees its connection closed
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), name="tcp-proxy-pump", daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes, then close both."""
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peer:
                selector.register(sock, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select(timeout=1.0):
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(CHUNK)
                        if not data:
                            raise ConnectionError("closed")
                        peer[source].sendall(data)
                    if self._closed.is_set() or client.fileno() < 0 or upstream.fileno() < 0:
                        return  # stopped, or cut() closed this pair under us
            except (OSError, ValueError):
                pass  # closed by either side or by cut(): both ends go
            finally:
                with self._lock:
                    self._open.discard(client)
                    self._open.discard(upstream)
                for sock in peer:
                    try:
                        sock.close()
                    except OSError:
                        pass

"""The loopback TCP proxy the chaos suite cuts connections with."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest

from sluice_testing.tcp_proxy import TcpProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def echo_servers():
    servers = [socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo) for _ in range(2)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [s.server_address for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(echo_servers):
    proxy = TcpProxy(echo_servers[0]).start()
    yield proxy
    proxy.stop()


def _roundtrip(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


def test_the_proxy_forwards_both_ways(proxy):
    assert _roundtrip(proxy.port) == b"ping"


def test_a_cut_resets_open_connections_and_refuses_new_ones_until_restored(proxy):
    # Given an open connection through the proxy
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.sendall(b"a")
    assert sock.recv(16) == b"a"
    # When the proxy cuts
    assert proxy.cut() == 1
    # Then the open connection is gone and a new one is closed at once
    with pytest.raises(OSError):
        sock.sendall(b"b")
        if not sock.recv(16):
            raise ConnectionResetError("closed")
    sock.close()
    assert _roundtrip_or_empty(proxy.port) == b""
    # And after restore it forwards again
    proxy.restore()
    assert _roundtrip(proxy.port) == b"ping"


def _roundtrip_or_empty(port: int) -> bytes:
    try:
        return _roundtrip(port)
    except OSError:
        return b""


def test_the_proxy_refuses_a_target_off_this_machine():
    with pytest.raises(ValueError, match="loopback"):
        TcpProxy(("10.0.0.1", 5672))


def test_rewrite_keeps_credentials_and_vhost(proxy):
    assert proxy.rewrite("amqp://u:p@127.0.0.1:1234/%2F") == f"amqp://u:p@127.0.0.1:{proxy.port}/%2F"

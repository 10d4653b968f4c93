"""The loopback proxy that stands in for the broker's Service in the local deployment."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest

from sluice_testing.tcp_proxy import TcpProxy


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(self.server.prefix + data)  # type: ignore[attr-defined]


@pytest.fixture
def echo_servers():
    servers = []
    for prefix in (b"one:", b"two:"):
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
        server.daemon_threads = True
        server.prefix = prefix  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield [s.server_address[1] for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(1024)


def test_connections_are_forwarded_and_retarget_moves_new_ones_and_drops_old_ones(echo_servers):
    first, second = echo_servers
    proxy = TcpProxy(first).start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as old:
            assert roundtrip(old, b"hi") == b"one:hi"
            proxy.retarget(second)
            # The open connection is dropped, as a dying pod's would be
            assert old.recv(1024) == b""
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as new:
            assert roundtrip(new, b"hi") == b"two:hi"
    finally:
        proxy.close()


def test_a_target_that_is_down_refuses_the_client_and_the_proxy_keeps_serving(echo_servers):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = s.getsockname()[1]
    proxy = TcpProxy(down).start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            assert client.recv(1024) == b""
        proxy.retarget(echo_servers[0])
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            assert roundtrip(client, b"ok") == b"one:ok"
    finally:
        proxy.close()

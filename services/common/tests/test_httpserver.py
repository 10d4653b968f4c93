"""The HTTP port on a kept-alive connection: each answer leaves at once, in one write."""

from __future__ import annotations

import http.client
import statistics
import subprocess
import time
from collections.abc import Iterator

import pytest

from sluice_common.httpserver import StatusServer, json_response

#: Linux delays an ACK by 40 ms at least; a response held back by Nagle's algorithm waits for it.
DELAYED_ACK_S = 0.040


@pytest.fixture
def server() -> Iterator[StatusServer]:
    served = StatusServer("127.0.0.1", 0, alive=lambda: True, ready=lambda: True,
                          routes={("POST", "/events"): lambda _h, _b: json_response(202, {"accepted": 1})})
    served.start()
    yield served
    served.stop()


def test_a_kept_alive_connection_is_not_held_up_by_delayed_acks(server: StatusServer) -> None:
    # Given one connection kept alive across requests, as requests.Session or Go's net/http keep it
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    seconds = []
    for _ in range(20):
        started = time.monotonic()
        connection.request("POST", "/events", body=b"{}", headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert (response.status, response.read()) == (202, b'{"accepted": 1}\n')
        seconds.append(time.monotonic() - started)
    connection.close()
    # Then a typical request takes far less than one delayed ACK (headers and body were sent
    # apart, and the body waited for the ACK of the headers: 44 ms a request)
    assert statistics.median(seconds) < DELAYED_ACK_S / 2, [f"{s * 1000:.1f} ms" for s in seconds]


def test_many_clients_connecting_at_once_are_queued_not_dropped(server: StatusServer) -> None:
    # The listening socket's backlog (ss shows it as Send-Q): socketserver's default of 5 made the kernel
    # drop most of 64 simultaneous connects, which clients retried a second later or timed out on.
    listing = subprocess.run(["ss", "-ltnH", f"sport = :{server.port}"], capture_output=True, text=True, check=True)
    backlog = int(listing.stdout.split()[2])
    assert backlog >= 64, listing.stdout

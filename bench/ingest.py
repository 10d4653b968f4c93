"""The ingest rows of ``make bench``: ``POST /events`` over kept-alive connections, driven by wrk.

Two contenders publish into the same quorum queue, one after the other, each answering 202 only
after the broker confirmed: sluice's producer service (``python -m sluice_producer``, schema
validation on) and the FastAPI + uvicorn + aio-pika ingest of :mod:`bench.fastapi_ingest`. Cases:
single events at 1, 16 and 64 connections, and 100-event batches at 16. wrk (Debian's package)
keeps every connection alive, reports requests/s, p50/p99 latency, socket errors (connect, read,
write, timeouts over its 2 s default) and non-2xx answers; events/s is requests/s times the batch.
Then sluice's p99 at half its own single-event maximum (16 connections, each pausing between
requests so that together they offer at most that rate; the table shows the rate they reached). The work
queue is purged between cases. Every case runs ``BENCH_REPEATS`` times, the contenders taking turns, and
the table shows the median run, with the errors of all runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import requests

from bench import sluice
from bench.workload import READING, median_run
from sluice_testing.broker import Broker
from sluice_testing.processes import ServiceProcess, free_port
from sluice_testing.waiting import wait_for

__all__ = ["CASES", "CONTENDERS", "IngestRow", "producer_service", "run", "wrk"]

SLUICE, FASTAPI = "sluice", "FastAPI + aio-pika"
CONTENDERS = (SLUICE, FASTAPI)
#: (name, connections, events per request).
CASES = (("single, 1 connection", 1, 1), ("single, 16 connections", 16, 1), ("single, 64 connections", 64, 1),
         ("batches of 100, 16 connections", 16, 100))
HALF_RATE_CASE = "single, 16 connections, half of sluice's maximum"
#: The lines of wrk's own report this module reads: what its ``done`` hook prints.
_REPORT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
local pause = {pause_ms}
if pause > 0 then
  function delay() return pause end
end
function done(summary, latency, requests)
  io.write(string.format('WRK {{"requests": %d, "seconds": %f, "connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "non_2xx": %d, "p50_ms": %f, "p99_ms": %f}}\\n', summary.requests, summary.duration / 1e6,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass(frozen=True)
class IngestRow:
    """One case of one contender: what wrk measured."""

    case: str
    contender: str
    connections: int
    batch: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int
    offered_rate: float | None = None  # requests/s offered by the paced case
    repeats: int = 1  # runs this row is the median of (errors: their sum)

    @property
    def events_per_s(self) -> float:
        return self.requests_per_s * self.batch


def _body(batch: int) -> str:
    event = {"type": "sensor.reading", "data": READING}
    return json.dumps(event if batch == 1 else [event] * batch, separators=(",", ":"))


def wrk(url: str, *, connections: int, batch: int, seconds: float, pause_ms: float = 0.0) -> dict[str, float]:
    """Run wrk against ``url`` and return its ``done`` report (requests, seconds, errors, percentiles)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: `scripts/install-system-deps.sh` installs it (Debian package wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-ingest-") as script:
        script.write(_REPORT.format(body=json.dumps(_body(batch)), pause_ms=f"{pause_ms:.3f}"))
        script.flush()
        threads = min(2, connections)
        result = subprocess.run([binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                                 "-s", script.name, url], capture_output=True, text=True, timeout=seconds + 60,
                                check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("WRK ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"wrk exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    report: dict[str, float] = json.loads(lines[-1][4:])
    return report


def _row(case: str, contender: str, connections: int, batch: int, report: dict[str, float],
         offered: float | None = None) -> IngestRow:
    errors = int(report["connect"] + report["read"] + report["write"] + report["timeout"])
    return IngestRow(case, contender, connections, batch, report["requests"] / max(report["seconds"], 1e-9),
                     report["p50_ms"], report["p99_ms"], errors, int(report["non_2xx"]), offered)


@contextmanager
def producer_service(broker: Broker, prefix: str) -> Iterator[tuple[str, int]]:
    """``python -m sluice_producer`` publishing to ``prefix``'s exchange: its ``/events`` URL and its pid."""
    env = {"SLUICE_AMQP_URL": broker.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
           "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events", "SLUICE_TOPOLOGY_QUEUE_TYPE": "quorum",
           "SLUICE_LOG_LEVEL": "WARNING"}
    service = ServiceProcess("sluice_producer", env, name="bench-ingest-sluice").start()
    try:
        service.wait_ready(timeout=60)
        assert service.process is not None
        yield service.url + "/events", service.process.pid
    finally:
        service.close()


@contextmanager
def _sluice(broker: Broker, prefix: str) -> Iterator[str]:
    with producer_service(broker, prefix) as (url, _pid):
        yield url


@contextmanager
def _fastapi(broker: Broker, prefix: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BENCH_AMQP_URL": broker.amqp_url, "BENCH_EXCHANGE": f"{prefix}.events"}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.fastapi_ingest:app", "--host", "127.0.0.1",
                                    "--port", str(port), "--log-level", "warning", "--no-access-log"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])

        def ready() -> bool:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{log.read().decode()[-3000:]}")
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_for(ready, timeout=60, interval=0.1, what="the FastAPI ingest ready")
            yield f"http://127.0.0.1:{port}/events"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def run(broker: Broker, *, seconds: float = 10.0, repeats: int = 1,
        progress: Callable[[str], None] = lambda _line: None) -> list[IngestRow]:
    """Every case for both contenders ``repeats`` times, the contenders taking turns, then sluice's
    half-rate latency ``repeats`` times; one row per case and contender: the median repeat (by
    requests/s; by p99 for the half-rate case), with the socket errors and non-2xx answers of every
    repeat added up. The queues are removed afterwards."""
    prefix = f"benchingest{time.monotonic_ns() % 1_000_000:06d}"
    topology = sluice.topology(broker.amqp_url, prefix, "quorum")
    broker.declare(topology)  # the queue both contenders' events land in, as a consumer group would declare it
    runs: list[IngestRow] = []
    try:
        for repeat in range(1, repeats + 1):
            for contender, serve in ((SLUICE, _sluice), (FASTAPI, _fastapi)):
                with serve(broker, prefix) as url:
                    for case, connections, batch in CASES:
                        progress(f"ingest, repeat {repeat}/{repeats}: {contender}, {case} ({seconds:g} s)")
                        runs.append(_row(case, contender, connections, batch,
                                         wrk(url, connections=connections, batch=batch, seconds=seconds)))
                        broker.purge(topology.work.name)
        rows = [_median([r for r in runs if (r.contender, r.case) == (contender, case)], lambda r: r.requests_per_s)
                for contender in CONTENDERS for case, _, _ in CASES]
        peak = next(r for r in rows if r.contender == SLUICE and r.case == "single, 16 connections")
        offered = peak.requests_per_s / 2
        pause_ms = 16 / offered * 1000  # per connection; its answers' time comes on top
        half: list[IngestRow] = []
        with _sluice(broker, prefix) as url:
            for repeat in range(1, repeats + 1):
                progress(f"ingest, repeat {repeat}/{repeats}: {SLUICE}, {HALF_RATE_CASE} "
                         f"({offered:,.0f} requests/s offered)")
                half.append(_row(HALF_RATE_CASE, SLUICE, 16, 1,
                                 wrk(url, connections=16, batch=1, seconds=seconds, pause_ms=pause_ms), offered))
                broker.purge(topology.work.name)
        return [*rows, _median(half, lambda r: r.p99_ms)]
    finally:
        broker.delete_prefix(prefix)


def _median(repeats: list[IngestRow], key: Callable[[IngestRow], float]) -> IngestRow:
    """The middle repeat by ``key``, carrying the errors of all of them (a failure is never a median away)."""
    return replace(median_run(repeats, key), socket_errors=sum(r.socket_errors for r in repeats),
                   non_2xx=sum(r.non_2xx for r in repeats), repeats=len(repeats))

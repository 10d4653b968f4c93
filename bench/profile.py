"""``make profile``: where sluice's producer, consumer or ingest spends its time, sampled by py-spy.

``python -m bench.profile producer`` (or ``consumer``) runs that side on the RabbitMQ test container
under ``py-spy record --gil`` and prints the functions with the most samples, by their own time and
with what they call. For the consumer, the queue is filled first, outside the profiled process.
``python -m bench.profile ingest`` starts the producer service (``python -m sluice_producer``) and
samples it while wrk sends it single events over 16 kept-alive connections, as ``make bench`` does.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice_testing.broker import Broker

__all__ = ["main", "top_functions"]


def top_functions(raw: str, limit: int) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """From py-spy's ``--format raw`` output: the top (share, frame) by own samples and by inclusive samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, samples = stack.split(";"), int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    total = max(total, 1)
    return ([(n / total, f) for f, n in own.most_common(limit)], [(n / total, f) for f, n in inclusive.most_common(limit)])


def _prepare(side: str, messages: int) -> tuple[Broker, str]:
    """Declare a fresh prefix's topology (and fill its queue for the consumer); returns the broker and prefix."""
    import uuid

    from bench import sluice
    from sluice_testing.broker import start_broker

    broker = start_broker("sluice-test")
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    broker.declare(sluice.topology(broker.amqp_url, prefix, "quorum"))
    if side == "consumer":
        sluice.produce(broker.amqp_url, prefix, "quorum", messages)
    return broker, prefix


def _workload(side: str, messages: int, url: str, prefix: str) -> None:
    """Runs in the profiled process: one side of sluice, nothing else."""
    from bench import sluice
    from bench.runner import _tally

    if side == "consumer":
        report = sluice.consume(url, prefix, "quorum", _tally(messages))
    else:
        report = sluice.produce(url, prefix, "quorum", messages)
    rate = report.messages / max(report.finished - report.started, 1e-9)
    print(f"sluice {side}: {report.messages} messages, {rate:,.0f} msgs/s, "
          f"{report.cpu_s / report.messages * 1e6:.0f} us CPU per message", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("side", choices=["producer", "consumer", "ingest"])
    # Enough messages that the run, not the interpreter's start-up, fills the profile.
    parser.add_argument("--messages", type=int, default=100_000, help="producer, consumer: messages (default 100000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="ingest: seconds of wrk (default 10)")
    parser.add_argument("--top", type=int, default=30, help="functions to list (default 30)")
    parser.add_argument("--workload", nargs=2, metavar=("URL", "PREFIX"), help=argparse.SUPPRESS)  # the child
    args = parser.parse_args(argv)
    if args.workload:
        _workload(args.side, args.messages, *args.workload)
        return 0
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is missing: `make venv` installs it (requirements-dev.txt).", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sluice-profile-") as tmp:
        out = Path(tmp) / "samples.txt"
        # --gil: only samples of threads holding the GIL, i.e. running Python; waiting threads are left out.
        record = [py_spy, "record", "--gil", "--rate", "250", "--format", "raw", "--output", str(out)]
        broker, prefix = _prepare(args.side, args.messages)
        try:
            if args.side == "ingest":
                returncode = _record_ingest(record, broker, prefix, args.seconds)
            else:
                returncode = _record(record, broker.amqp_url, prefix, args)
        finally:
            broker.delete_prefix(prefix)
        if returncode != 0 or not out.exists():
            print(f"py-spy failed (exit {returncode}); it needs ptrace (root or CAP_SYS_PTRACE).", file=sys.stderr)
            return 1
        own, inclusive = top_functions(out.read_text(), args.top)
    print(f"## sluice {args.side}: functions by own samples\n")
    print("\n".join(f"{share:6.1%}  {frame}" for share, frame in own))
    print(f"\n## sluice {args.side}: functions by inclusive samples\n")
    print("\n".join(f"{share:6.1%}  {frame}" for share, frame in inclusive))
    return 0


def _record(record: list[str], url: str, prefix: str, args: argparse.Namespace) -> int:
    """py-spy runs one side of sluice in a process of its own; returns py-spy's exit status."""
    command = [*record, "--", sys.executable, "-m", "bench.profile", args.side, "--messages", str(args.messages),
               "--workload", url, prefix]
    return subprocess.run(command, check=False, stdout=subprocess.DEVNULL).returncode


def _record_ingest(record: list[str], broker: Broker, prefix: str, seconds: float) -> int:
    """py-spy samples the producer service while wrk drives ``POST /events``; returns py-spy's exit status."""
    from bench import ingest

    with ingest.producer_service(broker, prefix) as (url, pid):
        spy = subprocess.Popen([*record, "--duration", str(max(1, round(seconds))), "--pid", str(pid)],
                               stdout=subprocess.DEVNULL)
        report = ingest.wrk(url, connections=16, batch=1, seconds=seconds)
        returncode = spy.wait(timeout=seconds + 60)
    print(f"sluice ingest: {report['requests'] / report['seconds']:,.0f} requests/s over 16 connections, "
          f"p50 {report['p50_ms']:.1f} ms, p99 {report['p99_ms']:.1f} ms", file=sys.stderr)
    return returncode


if __name__ == "__main__":
    sys.exit(main())

"""``make profile``: where sluice's producer or consumer spends its time, sampled by py-spy.

``python -m bench.profile producer`` (or ``consumer``) runs that side on the RabbitMQ test container
under ``py-spy record`` and prints the functions with the most samples, by their own time and with
what they call. The consumer side first fills its queue with the producer (not profiled).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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


def _workload(side: str, messages: int) -> None:
    """Runs in the profiled process: one side of sluice on a fresh prefix, then cleans up."""
    import uuid

    from bench import sluice
    from bench.runner import _tally
    from sluice_testing.broker import start_broker

    broker = start_broker("sluice-test")
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    topology = sluice.topology(broker.amqp_url, prefix, "quorum")
    try:
        import pika

        with pika.BlockingConnection(pika.URLParameters(broker.amqp_url)) as connection:
            channel = connection.channel()
            channel.exchange_declare(topology.exchange, "topic", durable=True)
            for spec in topology.queues:
                channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
            channel.queue_bind(topology.work.name, topology.exchange, "#")
        report = sluice.produce(broker.amqp_url, prefix, "quorum", messages)
        if side == "consumer":
            report = sluice.consume(broker.amqp_url, prefix, "quorum", _tally(messages))
        rate = report.messages / max(report.finished - report.started, 1e-9)
        print(f"sluice {side}: {report.messages} messages, {rate:,.0f} msgs/s, "
              f"{report.cpu_s / report.messages * 1e6:.0f} us CPU per message", file=sys.stderr)
    finally:
        broker.delete_prefix(prefix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("side", choices=["producer", "consumer"])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=30, help="functions to list (default 30)")
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)  # the profiled child
    args = parser.parse_args(argv)
    if args.workload:
        _workload(args.side, args.messages)
        return 0
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is missing: `make venv` installs it (requirements-dev.txt).", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sluice-profile-") as tmp:
        out = Path(tmp) / "samples.txt"
        command = [py_spy, "record", "--rate", "250", "--format", "raw", "--output", str(out), "--",
                   sys.executable, "-m", "bench.profile", args.side, "--messages", str(args.messages), "--workload"]
        result = subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
        if result.returncode != 0 or not out.exists():
            print(f"py-spy failed (exit {result.returncode}); it needs ptrace (root or CAP_SYS_PTRACE).", file=sys.stderr)
            return 1
        own, inclusive = top_functions(out.read_text(), args.top)
    print(f"## sluice {args.side}: functions by own samples\n")
    print("\n".join(f"{share:6.1%}  {frame}" for share, frame in own))
    print(f"\n## sluice {args.side}: functions by inclusive samples\n")
    print("\n".join(f"{share:6.1%}  {frame}" for share, frame in inclusive))
    return 0


if __name__ == "__main__":
    sys.exit(main())

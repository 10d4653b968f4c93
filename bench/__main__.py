"""``python -m bench``: run every contender, print the table with the ratios, write docs/bench/."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import ingest, report, runner
from sluice_testing.broker import start_broker

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=int(os.environ.get("BENCH_MESSAGES", "10000")),
                        help="messages per run (naive contenders move a fifth); default 10000 or $BENCH_MESSAGES")
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_REPEATS", "3")),
                        help="runs of each scenario; the table shows the median (default 3 or $BENCH_REPEATS)")
    parser.add_argument("--queue-types", default="quorum,classic", help="comma-separated: quorum, classic")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench",
                        help="directory for results.md and throughput.png (default docs/bench)")
    parser.add_argument("--readme", action="store_true", help="also replace the results block in README.md")
    parser.add_argument("--broker", default="sluice-test", help="name of the RabbitMQ test container to use")
    parser.add_argument("--ingest-seconds", type=float, default=float(os.environ.get("BENCH_INGEST_SECONDS", "10")),
                        help="seconds of wrk per ingest case, 0 to leave the ingest out (default 10 or "
                             "$BENCH_INGEST_SECONDS)")
    args = parser.parse_args(argv)
    if args.messages < 50 or args.repeats < 1:
        parser.error("--messages must be at least 50 and --repeats at least 1")
    if args.ingest_seconds and args.ingest_seconds < 1:
        parser.error("--ingest-seconds must be 0 (no ingest rows) or at least 1")
    queue_types = tuple(q.strip() for q in args.queue_types.split(",") if q.strip())
    if not queue_types or set(queue_types) - {"quorum", "classic"}:
        parser.error("--queue-types takes quorum and/or classic")

    broker = start_broker(args.broker)
    options = runner.Options(messages=args.messages, repeats=args.repeats, queue_types=queue_types)
    started = time.monotonic()
    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    measurements, startup = runner.run(broker, options, progress=progress)
    ingest_rows = (ingest.run(broker, seconds=args.ingest_seconds, repeats=options.repeats, progress=progress)
                   if args.ingest_seconds else [])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    conditions = (
        f"{options.messages:,} persistent messages per run ({max(50, int(options.messages * runner.NAIVE_SHARE)):,} "
        f"for the naive contenders), publisher confirms, manual acks; median of {options.repeats}. "
        f"RabbitMQ {broker.version()} in a container on loopback, {runner.cpu_count()} cores shared by everything "
        f"(load average {load} at the end); run took {time.monotonic() - started:.0f} s, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Absolute numbers depend on the machine and its load: "
        f"compare the ratios."
    )
    summary = report.summarize(measurements, startup, conditions, ingest_rows)
    text = report.markdown(summary)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text("# Benchmark results\n\n`make bench` wrote this file.\n\n" + text,
                                         encoding="utf-8")
    report.plot(summary, args.out / "throughput.png")
    print(f"Wrote {args.out / 'results.md'} and {args.out / 'throughput.png'}.", file=sys.stderr)
    if args.readme and not report.update_readme(REPO / "README.md", text, "docs/bench/results.md"):
        print("README.md has no bench markers: not updated.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

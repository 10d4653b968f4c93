"""``sluice publish``: publish JSON-lines events from a file or stdin, with confirms.

    sluice publish events.jsonl          # one {"type": ..., "data": {...}} per line
    cat events.jsonl | sluice publish -

Shows a progress bar on a terminal, then a summary (published, confirmed, failed). Exits 1 if any
event was invalid or not confirmed, 2 on a configuration error. Broker settings come from the same
``SLUICE_*`` variables as the services.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import IO, TextIO

from sluice_common.config import Settings
from sluice_common.envelope import InvalidEvent, OutgoingMessage, event_from_json
from sluice_common.errors import ConfigError
from sluice_common.logging import configure_logging
from sluice_common.validation import SchemaRegistry
from sluice_producer.publisher import EventPublisher

__all__ = ["main"]

#: Events sent to the broker per round of confirms.
BATCH = 500
#: How long to wait for the first connection to the broker.
CONNECT_TIMEOUT_S = 15.0


class Progress:
    """A one-line progress bar on stderr, drawn only on a terminal and at most 10 times a second."""

    def __init__(self, stream: TextIO, total: int | None) -> None:
        self._stream = stream
        self._total = total
        self._enabled = stream.isatty()
        self._last = 0.0
        self._started = time.monotonic()

    def update(self, done: int, failed: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self._enabled or (not force and now - self._last < 0.1):
            return
        self._last = now
        rate = done / max(now - self._started, 1e-6)
        if self._total:
            filled = int(30 * done / self._total)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{self._total}"
        else:
            bar = f"{done} events"
        self._stream.write(f"\r{bar}  {failed} failed  {rate:,.0f}/s ")
        self._stream.flush()

    def close(self) -> None:
        if self._enabled:
            self._stream.write("\n")


def _lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def publish(stream: IO[str], publisher: EventPublisher, *, total: int | None, err: TextIO) -> tuple[int, int, int]:
    """Publish every line of ``stream``; returns (published, confirmed, failed)."""
    published = confirmed = failed = 0
    progress = Progress(err, total)
    batch: list[OutgoingMessage] = []

    def flush() -> None:
        nonlocal confirmed, failed
        for result in publisher.publish(batch):
            if result.confirmed:
                confirmed += 1
            else:
                failed += 1
                print(f"event {result.event_id}: not confirmed: {result.error}", file=err)
        batch.clear()
        progress.update(confirmed, failed)

    for number, line in _lines(stream):
        try:
            batch.append(publisher.check(event_from_json(json.loads(line))))
            published += 1
        except (ValueError, RecursionError) as e:
            failed += 1
            reasons = "; ".join(e.reasons) if isinstance(e, InvalidEvent) else f"not JSON: {e}"
            print(f"line {number}: invalid: {reasons}", file=err)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    progress.update(confirmed, failed, force=True)
    progress.close()
    return published, confirmed, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sluice", description="sluice command-line tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    pub = commands.add_parser("publish", help="publish JSON-lines events from a file or stdin (-)")
    pub.add_argument("file", help="path of a JSON-lines file, or - for stdin")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env(os.environ)
        schemas = SchemaRegistry.load(settings.schema_dir)
    except ConfigError as e:
        print(f"sluice: configuration error: {e}", file=sys.stderr)
        return 2
    configure_logging("WARNING", "text")
    try:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        print(f"sluice: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    total = None
    if stream is not sys.stdin and sys.stderr.isatty():
        total = sum(1 for _ in _lines(stream))
        stream.seek(0)

    try:
        publisher = EventPublisher(settings, schemas=schemas, name="sluice-cli")
    except ConfigError as e:  # TLS files that do not load
        print(f"sluice: configuration error: {e}", file=sys.stderr)
        return 2
    publisher.start()
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not publisher.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    if not publisher.ready:
        publisher.stop()
        print(f"sluice: the broker is not reachable within {CONNECT_TIMEOUT_S:g}s (SLUICE_AMQP_URL).", file=sys.stderr)
        return 1
    try:
        published, confirmed, failed = publish(stream, publisher, total=total, err=sys.stderr)
    finally:
        publisher.stop()
        if stream is not sys.stdin:
            stream.close()
    print(json.dumps({"published": published, "confirmed": confirmed, "failed": failed}))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

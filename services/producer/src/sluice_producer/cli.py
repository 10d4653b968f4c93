"""``sluice publish``: publish JSON-lines events from a file or stdin, with confirms.

    sluice publish events.jsonl          # one {"type": ..., "data": {...}} per line
    cat events.jsonl | sluice publish -
    sluice publish --json events.jsonl   # a JSON summary on stdout, for CI

On a terminal it redraws one progress line on stderr; off a terminal it draws none. At the end it
writes a summary to stderr: counts, failures by reason and the first few failed events, never one
line per event. Broker settings come from the same ``SLUICE_*`` variables as the services.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import IO

from sluice_common.config import Settings
from sluice_common.envelope import InvalidEvent, OutgoingMessage, event_from_json
from sluice_common.errors import ConfigError
from sluice_common.logging import configure_logging
from sluice_common.validation import SchemaRegistry
from sluice_producer.publisher import EventPublisher
from sluice_producer.report import FIRST_FAILURES, REASONS, Progress, Summary, Tally

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_OK", "main", "publish"]

#: Events sent to the broker per round of confirms.
BATCH = 500
#: How long to wait for the first connection to the broker.
CONNECT_TIMEOUT_S = 15.0
#: Exit statuses.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

_REASON_LINES = "\n".join(f"  {reason:<17} {text}" for reason, text in REASONS.items())
EPILOG = f"""\
exit status:
  0  every event was confirmed by the broker
  1  some events failed (see the summary), or the broker was not reachable
  2  usage or configuration error: bad arguments, an unreadable file, or a bad SLUICE_* setting
     (the message names the setting)

failure reasons (by_reason keys):
{_REASON_LINES}

--json prints one object on stdout:
  published       events sent to the broker (valid ones)
  confirmed       events the broker confirmed
  failed          events not confirmed, for any reason
  by_reason       {{reason: count}} of the failed events
  first_failures  the first {FIRST_FAILURES}: [{{"line", "id", "reason", "error"}}] (id is null for a line that is no event)
  seconds         time spent publishing
  rate            events handled (confirmed or failed) per second
"""


class _ErasingProgress(logging.Filter):
    """Erases the progress line before a log line is written, so that the two never share a line."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self._progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self._progress.clear()
        return True


def _lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def publish(stream: IO[str], publisher: EventPublisher, *, tally: Tally, progress: Progress) -> Summary:
    """Publish every line of ``stream``, counting outcomes in ``tally``; returns the summary."""
    batch: list[tuple[int, OutgoingMessage]] = []

    def flush() -> None:
        results = publisher.publish([message for _, message in batch])
        for (number, _), result in zip(batch, results, strict=True):
            if result.error is None:
                tally.confirmed += 1
            else:
                tally.fail(result.error.outcome, str(result.error), line=number, event_id=result.event_id)
        batch.clear()

    for number, line in _lines(stream):
        try:
            event = event_from_json(json.loads(line))
        except InvalidEvent as e:
            tally.fail("invalid_event", "invalid: " + "; ".join(e.reasons), line=number)
        except (ValueError, RecursionError) as e:
            tally.fail("invalid_json", f"not JSON: {e}", line=number)
        else:
            try:
                batch.append((number, publisher.check(event)))
                tally.published += 1
            except InvalidEvent as e:
                tally.fail("schema_violation", "invalid: " + "; ".join(e.reasons), line=number, event_id=event.id)
        if len(batch) >= BATCH:
            flush()
        progress.update(tally)
    if batch:
        flush()
    progress.update(tally, force=True)
    progress.clear()
    return tally.summary()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description="sluice command-line tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    pub = commands.add_parser(
        "publish", help="publish JSON-lines events from a file or stdin (-)",
        description="Publish JSON-lines events, one {\"type\", \"data\", \"id\"} object per line, with confirms.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pub.add_argument("file", help="path of a JSON-lines file, or - for stdin")
    pub.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout (fields below)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = sys.stderr
    try:
        settings = Settings.from_env(os.environ)
        schemas = SchemaRegistry.load(settings.schema_dir)
        publisher = EventPublisher(settings, schemas=schemas, name="sluice-cli")
    except ConfigError as e:  # the message names the variable
        print(f"sluice: configuration error: {e}", file=err)
        return EXIT_CONFIG
    except ValueError as e:  # pika refuses a URL that our own checks let through (an unknown query option)
        print(f"sluice: configuration error: SLUICE_AMQP_URL: {e}", file=err)
        return EXIT_CONFIG
    try:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        print(f"sluice: cannot read {args.file}: {e.strerror}", file=err)
        return EXIT_CONFIG
    total = None
    if stream is not sys.stdin and err.isatty():
        total = sum(1 for _ in _lines(stream))
        stream.seek(0)
    progress = Progress(err, total)
    configure_logging("WARNING", "text")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ErasingProgress(progress))

    publisher.start()
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not publisher.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    if not publisher.ready:
        publisher.stop()
        print(f"sluice: the broker is not reachable within {CONNECT_TIMEOUT_S:g}s (SLUICE_AMQP_URL).", file=err)
        return EXIT_FAILED
    try:
        summary = publish(stream, publisher, tally=Tally(), progress=progress)
    finally:
        publisher.stop()
        if stream is not sys.stdin:
            stream.close()
    print(summary.as_text(), file=err)
    if args.json:
        print(json.dumps(summary.as_dict()))
    return EXIT_OK if summary.failed == 0 else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

"""``sluice dlq``: inspect, replay and purge a consumer group's dead-letter queue.

    sluice dlq stats                              # count by reason, oldest and newest
    sluice dlq list --reason max_attempts         # one line per dead letter
    sluice dlq peek -n 3 --routing-key 'sensor.*' # headers and body, left in the queue
    sluice dlq replay --rate 50                   # back to the work queue, attempts reset
    sluice dlq purge --reason invalid --yes

The group and broker come from the same ``SLUICE_*`` variables as the consumer, so the command
works as is inside a consumer pod (``kubectl exec``); from a laptop, port-forward the broker and
set ``SLUICE_AMQP_URL``. Human tables by default, ``--json`` for scripts. Exit status: 0 done,
1 the broker failed or a replay stopped, 2 bad arguments or configuration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TextIO

from sluice_common.amqp import QueueClient
from sluice_common.config import Settings
from sluice_common.deadletters import MAX_SCAN, DeadLetter, DeadLetterQueue, Filter, ReplayResult, Stats
from sluice_common.errors import BrokerError, ConfigError
from sluice_common.logging import configure_logging
from sluice_common.topology import group_topology

__all__ = ["add_parser", "run"]

#: Longest error shown in a ``list`` row; ``peek`` and ``--json`` show it whole.
ERROR_COLUMN_CHARS = 60


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _scan(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_SCAN:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SCAN} (the largest AMQP prefetch)")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected messages per second, not {text!r}") from None
    if not 0 < value <= 10000:
        raise argparse.ArgumentTypeError("must be above 0 and at most 10000 messages per second")
    return value


def add_parser(commands: Any) -> None:
    """Add ``dlq`` and its subcommands to the ``sluice`` command's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--group", help="consumer group (default: SLUICE_CONSUMER_GROUP)")
    common.add_argument("--queue", help="dead-letter queue name (default: <SLUICE_TOPOLOGY_PREFIX>.<group>.dead)")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("--reason", action="append", default=[],
                           help="only dead letters with this reason (repeatable): invalid, rejected, max_attempts, ...")
    selection.add_argument("--routing-key", action="append", default=[], metavar="PATTERN",
                           help="only events whose routing key matches this topic pattern, e.g. 'sensor.*' (repeatable)")
    selection.add_argument("--scan", type=_scan, default=MAX_SCAN,
                           help=f"examine at most this many dead letters from the head (default and maximum {MAX_SCAN})")
    parents = [common, selection]

    dlq = commands.add_parser("dlq", help="inspect, replay and purge a dead-letter queue",
                              description=(__doc__ or "").replace("``", "`"), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = dlq.add_subparsers(dest="dlq_command", required=True)
    sub.add_parser("stats", parents=parents, help="count dead letters by reason, with the oldest and newest")
    listing = sub.add_parser("list", parents=parents, help="one line per dead letter, oldest death first, left in the queue")
    listing.add_argument("--limit", dest="count", type=_positive_int, default=50, help="show at most this many (default 50)")
    peek = sub.add_parser("peek", parents=parents, help="headers and body of the N dead letters that died first, left in the queue")
    peek.add_argument("-n", "--count", type=_positive_int, default=1, help="how many (default 1)")
    replay = sub.add_parser("replay", parents=parents,
                            help="send dead letters back to work, attempts reset; each removed once its copy is confirmed")
    replay.add_argument("--limit", type=_positive_int, default=MAX_SCAN, help="replay at most this many")
    replay.add_argument("--rate", type=_rate, default=50.0, help="messages per second, at most (default 50)")
    replay.add_argument("--to-exchange", action="store_true",
                        help="publish to the events exchange with the original routing key (every matching group "
                             "gets it) instead of this group's work queue")
    purge = sub.add_parser("purge", parents=parents, help="delete dead letters (all, or those matching the filters)")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run a parsed ``sluice dlq`` command; returns the exit status."""
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as e:
        print(f"sluice dlq: configuration error: {e}", file=err)
        return 2
    configure_logging("WARNING", "text")
    topology = group_topology(settings.topology, args.group or settings.consumer.group)
    where = Filter(reasons=tuple(args.reason), routing_keys=tuple(args.routing_key))
    try:
        with QueueClient(settings.amqp, name="sluice-dlq") as client:
            queue = DeadLetterQueue(client, topology, queue=args.queue)
            return _COMMANDS[args.dlq_command](queue, where, args, out, err)
    except BrokerError as e:
        print(f"sluice dlq: {e}", file=err)
        return 1
    except KeyboardInterrupt:
        # Nothing to undo: whatever was received and not yet acked goes back to the queue.
        print("\nsluice dlq: interrupted; dead letters not yet handled stay in the queue.", file=err)
        return 130


# -- commands ------------------------------------------------------------------------------------


def _stats(queue: DeadLetterQueue, where: Filter, args: argparse.Namespace, out: TextIO, _err: TextIO) -> int:
    stats = queue.stats(where, limit=args.scan)
    if args.json:
        _print_json(_stats_json(stats), out)
        return 0
    scanned = "all scanned" if stats.complete else f"the first {stats.scanned} scanned"
    print(f"{stats.queue}: {stats.depth} dead letter(s), {scanned}, {stats.matched.count} matching.", file=out)
    if stats.matched.count:
        rows = [[reason, str(s.count), _time(s.oldest), _time(s.newest)]
                for reason, s in sorted(stats.by_reason.items(), key=lambda item: -item[1].count)]
        rows.append(["(all)", str(stats.matched.count), _time(stats.matched.oldest), _time(stats.matched.newest)])
        _table(["REASON", "COUNT", "OLDEST", "NEWEST"], rows, out)
        print(file=out)
        keys = sorted(stats.by_routing_key.items(), key=lambda item: -item[1])
        _table(["ROUTING KEY", "COUNT"], [[key, str(n)] for key, n in keys], out)
    return 0


def _show(queue: DeadLetterQueue, where: Filter, args: argparse.Namespace, out: TextIO, _err: TextIO) -> int:
    """``list`` (one line each) and ``peek`` (headers and body): the matching letters that died first, left in place."""
    detail = args.dlq_command == "peek"
    letters = queue.peek(where, count=args.count, scan=args.scan)
    if args.json:
        _print_json([_letter_json(d, body=detail) for d in letters], out)
        return 0
    if not detail:
        rows = [[d.message_id, d.routing_key, d.reason, _attempts(d), _time(d.dead_at), _short(d.error)] for d in letters]
        _table(["MESSAGE ID", "ROUTING KEY", "REASON", "ATTEMPTS", "DEAD AT", "ERROR"], rows, out)
    for number, dead in enumerate(letters if detail else [], start=1):
        delivery = dead.delivery
        print(f"--- {number}: {dead.message_id or '(no message id)'}", file=out)
        fields = {"routing key": dead.routing_key, "reason": dead.reason, "error": dead.error,
                  "dead at": _time(dead.dead_at), "attempts": _attempts(dead), "replays": str(dead.replays),
                  "content type": delivery.content_type or ""}
        for name, value in fields.items():
            print(f"{name + ':':14} {value}", file=out)
        print("headers:", file=out)
        for name, value in sorted(delivery.headers.items()):
            print(f"  {name}: {json.dumps(_plain(value), ensure_ascii=False)}", file=out)
        print(f"body ({len(delivery.body)} bytes):", file=out)
        print(_body_text(delivery.body), file=out)
    print(f"{len(letters)} shown, left in {queue.name}.", file=out)
    return 0


def _replay(queue: DeadLetterQueue, where: Filter, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    target = "the events exchange" if args.to_exchange else f"queue {queue.work_queue}"
    show = err.isatty() and not args.json

    def progress(result: ReplayResult) -> None:
        if show:
            err.write(f"\rreplayed {result.replayed}, skipped {result.skipped} ")
            err.flush()

    result = queue.replay(where, limit=args.limit, rate=args.rate, to_exchange=args.to_exchange,
                          scan=args.scan, progress=progress)
    if show:
        err.write("\n")
    if args.json:
        _print_json({"queue": queue.name, "target": target, "replayed": result.replayed, "skipped": result.skipped,
                     "failed": result.failed, "errors": result.errors}, out)
    else:
        print(f"Replayed {result.replayed} dead letter(s) from {queue.name} to {target} "
              f"({result.skipped} skipped by the filter, {result.failed} failed).", file=out)
        for error in result.errors:
            print(f"not replayed, left in the queue: {error}", file=err)
    return 1 if result.failed else 0


def _purge(queue: DeadLetterQueue, where: Filter, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not args.yes:
        what = "every dead letter" if where.everything else "the matching dead letters"
        if not sys.stdin.isatty():
            print(f"sluice dlq purge: refusing to delete {what} of {queue.name} without --yes.", file=err)
            return 2
        err.write(f"Delete {what} of {queue.name} ({queue.depth()} in the queue)? Type 'yes' to confirm: ")
        err.flush()
        if sys.stdin.readline().strip().lower() != "yes":
            print("Nothing deleted.", file=err)
            return 2
    deleted = queue.purge(where, scan=args.scan)
    if args.json:
        _print_json({"queue": queue.name, "purged": deleted}, out)
    else:
        print(f"Deleted {deleted} dead letter(s) from {queue.name}.", file=out)
    return 0


_COMMANDS = {"stats": _stats, "list": _show, "peek": _show, "replay": _replay, "purge": _purge}


# -- output --------------------------------------------------------------------------------------


def _time(when: dt.datetime | None) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if when else "-"


def _attempts(dead: DeadLetter) -> str:
    return "-" if dead.attempts is None else str(dead.attempts)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_COLUMN_CHARS else text[: ERROR_COLUMN_CHARS - 1] + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


def _body_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return "(not UTF-8, base64) " + base64.b64encode(body).decode("ascii")


def _plain(value: Any) -> Any:
    """A header value as JSON can hold it: bytes as text, times as ISO 8601, tables recursively."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.datetime):
        return _time(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _letter_json(dead: DeadLetter, *, body: bool) -> dict[str, Any]:
    delivery = dead.delivery
    entry: dict[str, Any] = {
        "message_id": dead.message_id, "routing_key": dead.routing_key, "reason": dead.reason, "error": dead.error,
        "dead_at": _time(dead.dead_at) if dead.dead_at else None, "attempts": dead.attempts, "replays": dead.replays,
    }
    if body:
        entry["content_type"] = delivery.content_type
        entry["headers"] = _plain(delivery.headers)
        try:
            entry["body"] = delivery.body.decode("utf-8")
        except UnicodeDecodeError:
            entry["body_base64"] = base64.b64encode(delivery.body).decode("ascii")
    return entry


def _stats_json(stats: Stats) -> dict[str, Any]:
    def reason(s: Any) -> dict[str, Any]:
        return {"count": s.count, "oldest": _time(s.oldest) if s.oldest else None,
                "newest": _time(s.newest) if s.newest else None}

    return {"queue": stats.queue, "depth": stats.depth, "scanned": stats.scanned, "complete": stats.complete,
            "matching": reason(stats.matched), "by_reason": {k: reason(v) for k, v in stats.by_reason.items()},
            "by_routing_key": stats.by_routing_key}


def _print_json(value: Any, out: TextIO) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2), file=out)

"""``sluice``: the command-line tool, in every sluice image.

    sluice publish events.jsonl     # needs sluice-producer (the producer image); docs/publish.md
    sluice dlq stats                # dead-letter operations (see ``dlq_cli.py``)

It lives in sluice-common so that ``sluice dlq`` also runs in a consumer pod, whose image has no
producer code; ``publish`` is handed to the producer package when it is installed.
"""

from __future__ import annotations

import argparse
import sys

from sluice_common import __version__, dlq_cli

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["publish"]:
        return _publish(argv)  # the producer package parses its own options (and its --help)
    parser = argparse.ArgumentParser(prog="sluice", description="sluice command-line tools.")
    parser.add_argument("--version", action="version", version=f"sluice {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    publish = commands.add_parser("publish", help="publish JSON-lines events from a file or stdin (-)")
    publish.add_argument("file", help="path of a JSON-lines file, or - for stdin")
    dlq_cli.add_parser(commands)
    args = parser.parse_args(argv)

    return dlq_cli.run(args)


def _publish(argv: list[str]) -> int:
    try:
        from sluice_producer import cli as producer_cli  # only in the producer image
    except ImportError:
        print("sluice publish: needs the sluice-producer package (it is in the producer image).", file=sys.stderr)
        return 2
    return producer_cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())

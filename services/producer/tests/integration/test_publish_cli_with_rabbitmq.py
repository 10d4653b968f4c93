"""``sluice publish`` through the ``sluice`` command of sluice-common, against a real RabbitMQ 4.x.

Run from a pipe (as in CI) and from a pseudo-terminal (as by a person), since the two differ: only
a terminal gets the progress line.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from sluice_common.config import TopologySettings
from sluice_common.topology import group_topology
from sluice_testing.events import READING

pytestmark = pytest.mark.integration

COMMAND = [sys.executable, "-m", "sluice_common.cli", "publish"]
#: One redraw of the progress line for a file of known length: "\r1,500/3,000 (50%)".
REDRAW = re.compile(r"\r[\d,]+/[\d,]+ \(\d+%\)")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def environment(rabbitmq, prefix):
    return {**os.environ, "SLUICE_AMQP_URL": rabbitmq.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
            "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events"}


def events(count, *, start=0):
    return [json.dumps({"type": "sensor.reading", "data": READING, "id": f"cli-{i}"}) for i in range(start, start + count)]


def run_piped(args, env, stdin=""):
    started = time.monotonic()
    result = subprocess.run([*COMMAND, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


def run_on_terminal(args, env, *, timeout=120.0):
    """Run with stderr on a pseudo-terminal, as from an interactive shell; stdout stays a pipe."""
    controller, terminal = pty.openpty()
    started = time.monotonic()
    process = subprocess.Popen([*COMMAND, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=terminal)
    os.close(terminal)
    received = bytearray()
    deadline = started + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed its end of the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(controller)
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    returncode = process.wait(timeout=10)
    return Run(returncode, stdout, received.decode(errors="replace"), time.monotonic() - started)


def test_sluice_publish_confirms_valid_lines_and_reports_invalid_ones(rabbitmq, prefix):
    # Given a group bound to the events exchange
    topology = group_topology(TopologySettings(prefix=prefix, exchange=f"{prefix}.events"), "default")
    rabbitmq.declare(topology)
    lines = [*events(3), '{"type": "sensor.reading"}', "{not json"]
    # When five lines are piped to `sluice publish --json -`, two of them invalid
    result = run_piped(["--json", "-"], environment(rabbitmq, prefix), "\n".join(lines))
    # Then three are confirmed and in the queue, the others are named by line and reason
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert (summary["published"], summary["confirmed"], summary["failed"]) == (3, 3, 2)
    assert summary["by_reason"] == {"invalid_event": 1, "invalid_json": 1}
    assert [(f["line"], f["reason"]) for f in summary["first_failures"]] == [(4, "invalid_event"), (5, "invalid_json")]
    assert summary["seconds"] > 0 and summary["rate"] > 0
    assert "line 4: invalid" in result.stderr
    assert sorted(m.message_id for m in rabbitmq.drain(topology.work.name)) == ["cli-0", "cli-1", "cli-2"]


def test_from_a_pipe_there_is_no_progress_line_only_the_summary(rabbitmq, prefix, tmp_path):
    # Given 3,000 events for a bound group
    rabbitmq.declare(group_topology(TopologySettings(prefix=prefix, exchange=f"{prefix}.events"), "default"))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(events(3000)) + "\n")
    # When they are published with stderr on a pipe
    result = run_piped([str(path)], environment(rabbitmq, prefix))
    # Then stderr holds the summary and nothing redrawn, and stdout (no --json) is empty
    assert result.returncode == 0, result.stderr
    assert "sluice publish: 3,000 of 3,000 event(s) confirmed, 0 failed" in result.stderr
    assert "\r" not in result.stderr and "\x1b[" not in result.stderr
    assert result.stdout == ""


def test_on_a_terminal_a_progress_line_is_redrawn_then_erased(rabbitmq, prefix, tmp_path):
    # Given 20,000 events for a bound group, in a file (so the total is known)
    rabbitmq.declare(group_topology(TopologySettings(prefix=prefix, exchange=f"{prefix}.events"), "default"))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(events(20_000)) + "\n")
    # When they are published from a terminal
    result = run_on_terminal(["--json", str(path)], environment(rabbitmq, prefix))
    # Then the progress line showed count, total, rate and failures, at most ~10 times a second,
    # and was erased before the summary
    assert result.returncode == 0, result.stderr
    redraws = REDRAW.findall(result.stderr)
    assert redraws, result.stderr[:2000]
    assert len(redraws) <= 10 * result.seconds + 2
    assert re.search(r"\r20,000/20,000 \(100%\)  [\d,]+/s  0 failed\x1b\[K\r\x1b\[K", result.stderr)
    assert "sluice publish: 20,000 of 20,000 event(s) confirmed, 0 failed" in result.stderr
    assert json.loads(result.stdout)["confirmed"] == 20_000


def test_unroutable_events_are_counted_not_logged_one_by_one(rabbitmq, prefix):
    # Given no queue bound to the exchange at all
    count = 5000
    # When 5,000 events are published
    result = run_piped(["--json", "-"], environment(rabbitmq, prefix), "\n".join(events(count)))
    # Then every one failed as unroutable, and stderr stays a few lines: counts and the first five
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) <= 12, result.stderr[:3000]
    assert f"{count:,}  unroutable: no queue is bound for its routing key [returned]" in result.stderr
    assert sum(1 for line in result.stderr.splitlines() if line.startswith("  line ")) == 5
    summary = json.loads(result.stdout)
    assert summary["failed"] == count and summary["by_reason"] == {"returned": count}
    assert [f["id"] for f in summary["first_failures"]] == [f"cli-{i}" for i in range(5)]

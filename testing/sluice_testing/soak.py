"""``make soak-broker-kill``: every broker-restart and broker-SIGKILL test, run after run, on each tested RabbitMQ.

Usage: ``python -m sluice_testing.soak --runs 20 [--versions 4.3.6,4.0.5]``. Each run is one pytest
process over :data:`SOAK_TESTS` against a fresh broker of that version (scripts/rabbitmq.sh); its
JUnit report gives each test's outcome. Tests that can tell how long the pipeline took to confirm an
event again after the fault report it with :func:`record_recovery` (:func:`resumed_after`: the end of
the longest pause in confirms after the fault); the chaos rounds measure throughput recovery
instead, in their own table. At the end a table per version
and test: runs, passes, and the time to the first confirm after the fault (median / max). Exit
status 0 only when every run of every test passed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

__all__ = ["SOAK_TESTS", "main", "record_recovery", "resumed_after"]

REPO = Path(__file__).resolve().parents[2]
#: The broker-restart and broker-SIGKILL tests: the local end-to-end scenario, the producer's own
#: integration test, and the chaos suite's two broker faults.
SOAK_TESTS = (
    "k8s-tests/scenarios/test_e2e_broker_restart.py",
    "services/producer/tests/integration/test_broker_restart.py",
    "tests/chaos/test_chaos.py::test_a_fault_under_load_loses_no_confirmed_event[broker restart-1]",
    "tests/chaos/test_chaos.py::test_a_fault_under_load_loses_no_confirmed_event[broker SIGKILL-1]",
)
#: Where a soak run wants :func:`record_recovery`'s measurements (unset: they are dropped).
LOG_VARIABLE = "SLUICE_SOAK_LOG"


def resumed_after(fault_at: float, confirmed_at: list[float]) -> float | None:
    """Seconds from ``fault_at`` to the confirm that ended the longest pause in confirms after it.

    ``confirmed_at`` holds the moments of the confirms, in order. The broker dies a moment after the
    fault is started (a graceful stop takes seconds), and the confirms it still gives meanwhile are
    not a recovery: the outage is the longest pause after the fault, and publishing resumed at its
    end. None when no confirm came after the fault.
    """
    after = [t for t in confirmed_at if t > fault_at]
    if not after:
        return None
    previous = [fault_at, *after[:-1]]
    _gap, resumed = max((t - p, t) for p, t in zip(previous, after, strict=True))
    return resumed - fault_at


def record_recovery(seconds: float | None) -> None:
    """Report the seconds from a fault until publishing resumed (:func:`resumed_after`), for the running test."""
    path = os.environ.get(LOG_VARIABLE)
    if not path or seconds is None:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").rsplit(" ", 1)[0]
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps({"test": test, "seconds": round(seconds, 2)}) + "\n")


def _run(version: str, report: Path, log: Path) -> dict[str, bool]:
    env = {**os.environ, "SLUICE_RABBITMQ_VERSION": version, LOG_VARIABLE: str(log), "CI": "true"}
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}",
                    *SOAK_TESTS], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    outcomes: dict[str, bool] = {}
    if report.exists():
        for case in ElementTree.parse(report).iter("testcase"):
            name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
            if any(child.tag == "skipped" for child in case):
                continue  # the scenarios' kind variants, which run only on a cluster (make e2e)
            outcomes[name] = not any(child.tag in ("failure", "error") for child in case)
    return outcomes


def _table(version: str, results: dict[str, list[bool]], recoveries: dict[str, list[float]]) -> str:
    rows = [f"RabbitMQ {version}", "| test | runs | passed | first confirm after the fault, s (median / max) |",
            "|---|---:|---:|---|"]
    for test, outcomes in sorted(results.items()):
        times = next((v for k, v in recoveries.items() if k.endswith(test.split("::", 1)[1])), [])
        timing = f"{statistics.median(times):.1f} / {max(times):.1f}" if times else "-"
        rows.append(f"| {test} | {len(outcomes)} | {sum(outcomes)} | {timing} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sluice_testing.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per version (default 20)")
    parser.add_argument("--versions", default="4.3.6,4.0.5", help="comma-separated RabbitMQ versions")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    tables, every_run_passed = [], True
    for version in args.versions.split(","):
        results: dict[str, list[bool]] = defaultdict(list)
        with tempfile.TemporaryDirectory() as work:
            log = Path(work) / "recoveries.jsonl"
            for run in range(1, args.runs + 1):
                started = time.monotonic()
                outcomes = _run(version, Path(work) / f"run-{run}.xml", log)
                if not outcomes:
                    outcomes = {test: False for test in SOAK_TESTS}  # pytest did not even report
                for test, passed in outcomes.items():
                    results[test].append(passed)
                failed = [test for test, passed in outcomes.items() if not passed]
                every_run_passed &= not failed
                print(f"RabbitMQ {version} run {run}/{args.runs}: {len(outcomes) - len(failed)} of {len(outcomes)} "
                      f"passed in {time.monotonic() - started:.0f}s" + (f"; failed: {', '.join(failed)}" if failed else ""),
                      flush=True)
            recoveries: dict[str, list[float]] = defaultdict(list)
            if log.exists():
                for line in log.read_text().splitlines():
                    entry = json.loads(line)
                    recoveries[entry["test"]].append(entry["seconds"])
        tables.append(_table(version, results, recoveries))
    print("\n\n".join(tables))
    return 0 if every_run_passed else 1


if __name__ == "__main__":
    sys.exit(main())

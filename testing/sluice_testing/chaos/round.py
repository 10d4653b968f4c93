"""One chaos round on any rig: load, a baseline, a fault, recovery, settling, and the accounting."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sluice_testing.chaos.accounting import Accounting, Ledger, account, recovery_seconds
from sluice_testing.chaos.base import ChaosRig
from sluice_testing.chaos.faults import FAULTS
from sluice_testing.chaos.load import STOP_TIMEOUT_S, IngestLoad
from sluice_testing.waiting import wait_for

__all__ = ["RoundResult", "check", "deadline_s", "rounds_per_fault", "run_round"]

#: Events per second the load sends through the producer.
RATE = 50.0
#: Longest wait for the first deliveries, before the baseline.
FIRST_DELIVERIES_TIMEOUT_S = 30.0
#: Load before the fault, giving the baseline throughput that recovery is measured against.
BASELINE_S = 3.0
#: Load after throughput recovered, so the backlog drains while new events still arrive.
AFTER_S = 2.0
#: Longest wait for throughput to recover, and for every confirmed event to settle.
RECOVERY_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class RoundResult:
    """A round's fault, accounting, duplicate budget and recovery time (None: not recovered)."""

    fault: str
    accounting: Accounting
    duplicate_budget: int
    recovery_s: float | None
    logs: str = ""


def rounds_per_fault(environ: Mapping[str, str] | None = None) -> int:
    """``CHAOS_ROUNDS``: how many rounds of each fault to run (1 by default).

    Raises:
        ValueError: it is not a whole number of at least 1.
    """
    text = (os.environ if environ is None else environ).get("CHAOS_ROUNDS", "1")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"CHAOS_ROUNDS must be a whole number of at least 1, not {text!r}")
    return int(text)


def deadline_s(*, fault_s: float, rig_s: float) -> float:
    """The longest a round can take when every wait runs to its deadline.

    Parameters:
        fault_s: the longest the rig's slowest fault can take, repairs included.
        rig_s: the longest the rig's start, finish and close can take together.
    """
    return (rig_s + FIRST_DELIVERIES_TIMEOUT_S + BASELINE_S + fault_s + RECOVERY_TIMEOUT_S + AFTER_S
            + STOP_TIMEOUT_S + SETTLE_TIMEOUT_S)


def run_round(rig: ChaosRig, fault: str, *, seed: int) -> RoundResult:
    """Start ``rig``, run one round of ``fault`` against it, and close it."""
    rng = random.Random(seed)
    ledger = Ledger()
    rig.start()
    try:
        load = IngestLoad(rig.ingest_url(), ledger, prefix=rig.prefix, rate=RATE)
        rig.refuse(ledger.doomed)  # every id the load may doom, before the first is sent
        load.start()
        try:
            wait_for(lambda: len(rig.delivery_times()) >= RATE * BASELINE_S / 2, timeout=FIRST_DELIVERIES_TIMEOUT_S,
                     interval=0.1, what="deliveries before the fault")
            time.sleep(BASELINE_S)  # the baseline window: throughput before the fault
            fault_at = time.monotonic()
            budget = FAULTS[fault](rig, rng)
            recovered = _wait_recovery(rig, fault_at)
            time.sleep(AFTER_S)  # more load once recovered
        finally:
            load.stop()
        settled = _settle(rig, ledger)
        queued, dead = rig.finish()
        result = account(ledger, delivered=rig.deliveries(), dead=dead, queued=queued)
        logs = "" if result.sound and settled else rig.logs()
        return RoundResult(fault, result, budget, recovered, logs)
    finally:
        rig.close()


def check(result: RoundResult) -> None:
    """Fail unless the round lost nothing, kept its duplicates within the fault's budget, and recovered.

    Raises:
        AssertionError: saying which promise the round broke, with its accounting (and the logs).
    """
    accounting = result.accounting
    # Every confirmed event was delivered or dead-lettered, exactly one of the two
    if accounting.events == 0:
        raise AssertionError("the load had no event confirmed")
    if not accounting.sound:
        raise AssertionError(accounting.explain() + "\n" + result.logs)
    # and the duplicates are within what this fault can cause
    if accounting.duplicates > result.duplicate_budget:
        raise AssertionError(f"{accounting.duplicates} duplicates, more than the {result.duplicate_budget} "
                             f"{result.fault!r} can explain: {accounting.explain()}")
    # and throughput came back
    if result.recovery_s is None:
        raise AssertionError("throughput did not recover\n" + result.logs)


def _wait_recovery(rig: ChaosRig, fault_at: float) -> float | None:
    def recovery() -> float | None:
        return recovery_seconds(rig.delivery_times(), fault_at, baseline_s=BASELINE_S)

    try:
        wait_for(lambda: recovery() is not None, timeout=RECOVERY_TIMEOUT_S, interval=0.2, what="throughput restored")
    except TimeoutError:
        return None
    return recovery()


def _settle(rig: ChaosRig, ledger: Ledger) -> bool:
    """Wait until every confirmed event is delivered or dead-lettered and the queues are empty."""
    def settled() -> bool:
        confirmed, _ = ledger.snapshot()
        if not confirmed - ledger.doomed <= set(rig.deliveries()):
            return False
        dead, others = rig.backlog()
        return dead >= len(confirmed & ledger.doomed) and others == 0 and rig.in_flight() == 0

    try:
        wait_for(settled, timeout=SETTLE_TIMEOUT_S, interval=0.5, what="every confirmed event settled")
        return True
    except TimeoutError:
        return False

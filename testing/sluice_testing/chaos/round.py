"""One chaos round: load, a fault, recovery, settling, and the accounting."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass

from sluice_testing.broker import Broker
from sluice_testing.chaos.accounting import Accounting, Ledger, account, recovery_seconds
from sluice_testing.chaos.faults import FAULTS
from sluice_testing.chaos.load import IngestLoad
from sluice_testing.chaos.rig import Rig
from sluice_testing.waiting import wait_for

__all__ = ["RoundResult", "run_round"]

#: Events per second the load sends through the producer.
RATE = 50.0
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


def run_round(broker: Broker, fault: str, *, seed: int) -> RoundResult:
    """Run one round of ``fault`` against ``broker`` on a topology prefix of its own."""
    rng = random.Random(seed)
    prefix = f"chaos{uuid.uuid4().hex[:8]}"
    ledger = Ledger()
    rig = Rig(broker, prefix=prefix, seed=seed).start()
    rig.sink.reject_ids = ledger.doomed  # the same set: the load adds to it before sending
    try:
        assert rig.producer is not None
        load = IngestLoad(rig.producer.url + "/events", ledger, prefix=prefix, rate=RATE).start()
        try:
            wait_for(lambda: len(rig.sink.delivery_times) >= RATE * BASELINE_S / 2, timeout=30,
                     what="deliveries before the fault")
            time.sleep(BASELINE_S)  # the baseline window: throughput before the fault
            fault_at = time.monotonic()
            budget = FAULTS[fault](rig, rng)
            recovered = _wait_recovery(rig, fault_at)
            time.sleep(AFTER_S)  # more load once recovered
        finally:
            load.stop()
        settled = _settle(rig, ledger)
        rig.stop_services()
        queued = [m.message_id or "" for q in broker.queue_names(rig.work_queue) if q != rig.dead_queue
                  for m in broker.drain(q)]
        dead = [m.message_id or "" for m in broker.drain(rig.dead_queue)]
        result = account(ledger, delivered=rig.sink.received.copy(), dead=dead, queued=queued)
        logs = "" if result.sound and settled else rig.logs()
        return RoundResult(fault, result, budget, recovered, logs)
    finally:
        rig.close()


def _wait_recovery(rig: Rig, fault_at: float) -> float | None:
    def recovery() -> float | None:
        return recovery_seconds(rig.sink.delivery_times, fault_at, baseline_s=BASELINE_S)

    try:
        wait_for(lambda: recovery() is not None, timeout=RECOVERY_TIMEOUT_S, interval=0.2, what="throughput restored")
    except TimeoutError:
        return None
    return recovery()


def _settle(rig: Rig, ledger: Ledger) -> bool:
    """Wait until every confirmed event is delivered or dead-lettered and the queues are empty."""
    broker = rig.broker

    def settled() -> bool:
        confirmed, _ = ledger.snapshot()
        good = confirmed - ledger.doomed
        if not good <= set(rig.sink.received):
            return False
        depths = broker.depths(broker.queue_names(rig.work_queue))
        if depths[rig.dead_queue] < len(confirmed & ledger.doomed):
            return False
        return all(n == 0 for q, n in depths.items() if q != rig.dead_queue) and \
            all(c.metric("sluice_messages_inflight") == 0 for c in rig.consumers)

    try:
        wait_for(settled, timeout=SETTLE_TIMEOUT_S, interval=0.5, what="every confirmed event settled")
        return True
    except TimeoutError:
        return False

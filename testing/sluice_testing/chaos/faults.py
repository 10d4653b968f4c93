"""The faults a chaos round injects, one function each, written once for every rig.

A fault takes the round's :class:`~sluice_testing.chaos.base.ChaosRig` and a random source, injects
its failure through the rig (a process killed locally, a pod deleted on kind), lets the rig repair
what an operator or Kubernetes would (a replacement consumer, the broker back up), and returns its
duplicate budget: the most duplicate deliveries this fault can explain under at-least-once. The
round asserts the duplicates it counts stay within that budget.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from sluice_testing.chaos.base import ChaosRig

__all__ = ["CUT_S", "FAULTS", "FLAP_PHASES", "FLAP_PHASE_S", "Fault"]

Fault = Callable[[ChaosRig, random.Random], int]

#: How long the consumers' network stays cut.
CUT_S = 3.0
#: The sink's phases while it flaps, each lasting ``FLAP_PHASE_S``: errors, timeouts, success.
FLAP_PHASES = ("500", "timeout", "200", "timeout", "500", "200")
FLAP_PHASE_S = 1.0


def kill_consumer(rig: ChaosRig, rng: random.Random) -> int:
    """SIGKILL a random consumer; a replacement starts. Its unacked deliveries are redelivered."""
    rig.kill_consumer(rng)
    # Each delivery it held (at most the prefetch) may have reached the sink before its ack.
    return rig.limits.prefetch


def stop_consumer(rig: ChaosRig, rng: random.Random) -> int:
    """SIGTERM a random consumer: it finishes and settles its work, so no duplicate is allowed."""
    rig.stop_consumer(rng)
    return 0


def _held_by_consumers(rig: ChaosRig) -> int:
    # Every consumer's unacked deliveries and their in-flight forwards.
    return rig.consumer_count() * (rig.limits.prefetch + rig.limits.concurrency)


def _broker_budget(rig: ChaosRig) -> int:
    # What the consumers hold, plus every publish the producers had not had confirmed, may be delivered twice.
    return _held_by_consumers(rig) + rig.limits.producers * rig.limits.max_outstanding


def restart_broker(rig: ChaosRig, rng: random.Random) -> int:
    """Restart the broker gracefully, on the same volume."""
    budget = _broker_budget(rig)
    rig.restart_broker(hard=False)
    return budget


def kill_broker(rig: ChaosRig, rng: random.Random) -> int:
    """Kill the broker once its queues are durable, and start it again on the same volume."""
    budget = _broker_budget(rig)
    rig.restart_broker(hard=True)
    return budget


def flap_sink(rig: ChaosRig, rng: random.Random) -> int:
    """The sink flaps between 500s, answers slower than the consumers' timeout, and 200s."""
    slow_s = rig.limits.sink_timeout_s * 1.5
    delayed_before = rig.delayed_successes()
    for phase in FLAP_PHASES:
        rig.set_sink(status=500 if phase == "500" else None, delay_s=slow_s if phase == "timeout" else 0.0)
        time.sleep(FLAP_PHASE_S)  # the phase itself: the fault lasts this long
    rig.set_sink(status=None, delay_s=0.0)
    time.sleep(slow_s)  # let the slow answers already started finish
    # A slow 200 after the consumer gave up is a delivery it retries: each may come twice.
    return rig.delayed_successes() - delayed_before


def cut_consumer_connections(rig: ChaosRig, rng: random.Random) -> int:
    """Reset every consumer connection to the broker and refuse new ones for a while."""
    try:
        if rig.cut_consumers() == 0:
            raise AssertionError("no consumer connection was open to cut")
        time.sleep(CUT_S)  # the outage itself
    finally:
        rig.restore_consumers()
    # Deliveries unacked at the cut are redelivered; each may already have reached the sink.
    return _held_by_consumers(rig)


#: Every fault, by the name the table shows.
FAULTS: dict[str, Fault] = {
    "consumer SIGKILL": kill_consumer,
    "consumer SIGTERM": stop_consumer,
    "broker restart": restart_broker,
    "broker SIGKILL": kill_broker,
    "sink flapping": flap_sink,
    "connection cut": cut_consumer_connections,
}

"""The faults a chaos round injects, one function each.

A fault takes the round's :class:`~sluice_testing.chaos.rig.Rig` and a random source, injects its
failure, repairs what an operator or Kubernetes would (a replacement consumer, the broker back up),
and returns its duplicate budget: the most duplicate deliveries this fault can explain under
at-least-once. The round asserts the duplicates it counts stay within that budget.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from sluice_testing.chaos.rig import CONCURRENCY, MAX_OUTSTANDING, PREFETCH, SINK_TIMEOUT_S, Rig

__all__ = ["FAULTS", "Fault"]

Fault = Callable[[Rig, random.Random], int]

#: How long the consumers' network stays cut.
CUT_S = 3.0
#: The sink's phases while it flaps, each lasting ``FLAP_PHASE_S``: errors, timeouts, success.
FLAP_PHASES = ("500", "timeout", "200", "timeout", "500", "200")
FLAP_PHASE_S = 1.0


def kill_consumer(rig: Rig, rng: random.Random) -> int:
    """SIGKILL a random consumer; a replacement starts. Its unacked deliveries are redelivered."""
    victim = rng.choice(rig.consumers)
    victim.kill()
    rig.retire(victim)
    rig.add_consumer()
    # Each delivery it held (at most the prefetch) may have reached the sink before its ack.
    return PREFETCH


def stop_consumer(rig: Rig, rng: random.Random) -> int:
    """SIGTERM a random consumer: it finishes and settles its work, so no duplicate is allowed."""
    victim = rng.choice(rig.consumers)
    status = victim.terminate(timeout=60)
    if status != 0:
        raise AssertionError(f"{victim.name} exited with {status} after SIGTERM:\n{victim.logs()[-3000:]}")
    rig.retire(victim)
    rig.add_consumer()
    return 0


def _broker_budget(rig: Rig) -> int:
    # Every consumer's unacked deliveries and their in-flight forwards, plus every publish the
    # producer had not had confirmed, may be delivered twice.
    return len(rig.consumers) * (PREFETCH + CONCURRENCY) + MAX_OUTSTANDING


def restart_broker(rig: Rig, rng: random.Random) -> int:
    """Restart the broker's container gracefully (same volume and ports)."""
    budget = _broker_budget(rig)
    rig.broker.restart()
    return budget


def kill_broker(rig: Rig, rng: random.Random) -> int:
    """SIGKILL the broker, once its queues are durable (Broker.restart), and start it again on the same volume and ports."""
    budget = _broker_budget(rig)
    rig.broker.restart(hard=True)
    return budget


def flap_sink(rig: Rig, rng: random.Random) -> int:
    """The sink flaps between 500s, answers slower than the consumers' timeout, and 200s."""
    sink = rig.sink
    delayed_before = sink.delayed_successes
    for phase in FLAP_PHASES:
        sink.status = 500 if phase == "500" else None
        sink.delay_s = SINK_TIMEOUT_S * 1.5 if phase == "timeout" else 0.0
        time.sleep(FLAP_PHASE_S)  # the phase itself: the fault lasts this long
    sink.status, sink.delay_s = None, 0.0
    time.sleep(SINK_TIMEOUT_S * 1.5)  # let the slow answers already started finish
    # A slow 200 after the consumer gave up is a delivery it retries: each may come twice.
    return sink.delayed_successes - delayed_before


def cut_consumer_connections(rig: Rig, rng: random.Random) -> int:
    """Reset every consumer connection to the broker and refuse new ones for a while."""
    cut = rig.consumer_proxy.cut()
    if cut == 0:
        raise AssertionError("no consumer connection was open to cut")
    time.sleep(CUT_S)  # the outage itself
    rig.consumer_proxy.restore()
    # Deliveries unacked at the cut are redelivered; each may already have reached the sink.
    return len(rig.consumers) * (PREFETCH + CONCURRENCY)


#: Every fault, by the name the table shows.
FAULTS: dict[str, Fault] = {
    "consumer SIGKILL": kill_consumer,
    "consumer SIGTERM": stop_consumer,
    "broker restart": restart_broker,
    "broker SIGKILL": kill_broker,
    "sink flapping": flap_sink,
    "connection cut": cut_consumer_connections,
}

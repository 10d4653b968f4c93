"""What a chaos round needs from the services it runs against: the one interface both rigs implement.

A rig is a producer (HTTP ingest), consumers of one group delivering to a webhook sink the round
controls, and a broker. :func:`~sluice_testing.chaos.round.run_round` drives any rig; each fault of
:mod:`~sluice_testing.chaos.faults` is written once against this interface. :class:`~sluice_testing.chaos.rig.Rig`
runs local processes; ``sluice_e2e.chaos.KindRig`` runs the chart on a kind cluster, where the
faults strike pods.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice_testing.broker import Broker

__all__ = ["CONSUMERS", "ChaosRig", "Limits", "drain_group", "group_backlog"]

#: Consumers a round runs.
CONSUMERS = 2


@dataclass(frozen=True)
class Limits:
    """The services' settings that bound how many duplicates a fault can explain."""

    #: Unacknowledged deliveries the broker may hand one consumer.
    prefetch: int
    #: Deliveries one consumer forwards to the sink at once.
    concurrency: int
    #: Publishes one producer may have waiting for a confirm.
    max_outstanding: int
    #: Producers running.
    producers: int
    #: How long a consumer waits for the sink's answer.
    sink_timeout_s: float


class ChaosRig(ABC):
    """The services of one round. Every method blocks until its effect is observable."""

    #: The start of every event id the round sends, unique to the round.
    prefix: str
    limits: Limits

    # -- lifecycle -------------------------------------------------------------------------------

    @abstractmethod
    def start(self) -> ChaosRig:
        """Have :data:`CONSUMERS` consumers and the producer ready, the sink healthy with no records, the queues empty."""
        raise NotImplementedError

    @abstractmethod
    def finish(self) -> tuple[list[str], list[str]]:
        """Stop the consumers, so what they hold goes back to its queue, and empty the group's queues.

        Returns:
            The message ids taken out of the work and retry queues, and those taken out of the
            dead-letter queue (one entry per message).
        """
        raise NotImplementedError

    @abstractmethod
    def close(self) -> None:
        """Undo what :meth:`start` and the faults changed, and release what the rig holds."""
        raise NotImplementedError

    def logs(self) -> str:
        """The services' recent logs, for a failed round's report."""
        return ""

    # -- load and sink ---------------------------------------------------------------------------

    @abstractmethod
    def ingest_url(self) -> str:
        """The producer's ``POST /events`` URL, reachable from this process."""
        raise NotImplementedError

    @abstractmethod
    def refuse(self, ids: set[str]) -> None:
        """Make the sink answer 422 (refused for good) to every id in ``ids``, for the rest of the round."""
        raise NotImplementedError

    @abstractmethod
    def deliveries(self) -> Counter[str]:
        """Ids the sink answered with success, with how many times each."""
        raise NotImplementedError

    @abstractmethod
    def delivery_times(self) -> list[float]:
        """The moment of every successful delivery, in order, on this process's ``time.monotonic()``."""
        raise NotImplementedError

    @abstractmethod
    def set_sink(self, *, status: int | None, delay_s: float) -> None:
        """Make the sink answer ``status`` to every call (None: as usual), each after ``delay_s``."""
        raise NotImplementedError

    @abstractmethod
    def delayed_successes(self) -> int:
        """Successes the sink answered after a delay so far: a consumer that timed out first delivers them again."""
        raise NotImplementedError

    # -- queues and consumers --------------------------------------------------------------------

    @abstractmethod
    def backlog(self) -> tuple[int, int]:
        """Messages ready now in the dead-letter queue, and in the work and retry queues together."""
        raise NotImplementedError

    @abstractmethod
    def in_flight(self) -> float:
        """Deliveries the consumers are processing now (their ``sluice_messages_inflight``)."""
        raise NotImplementedError

    @abstractmethod
    def consumer_count(self) -> int:
        """Consumers running now."""
        raise NotImplementedError

    # -- faults ----------------------------------------------------------------------------------

    @abstractmethod
    def kill_consumer(self, rng: random.Random) -> None:
        """Kill a consumer chosen with ``rng`` abruptly (no drain), and wait until its replacement is ready."""
        raise NotImplementedError

    @abstractmethod
    def stop_consumer(self, rng: random.Random) -> None:
        """Stop a consumer chosen with ``rng`` with SIGTERM, and wait until its replacement is ready.

        Raises:
            AssertionError: it did not exit with status 0 (it did not drain cleanly).
        """
        raise NotImplementedError

    @abstractmethod
    def restart_broker(self, *, hard: bool) -> None:
        """Restart the broker on its volume and wait until it serves again.

        Parameters:
            hard: kill it, once its queues are durable, instead of stopping it cleanly.
        """
        raise NotImplementedError

    @abstractmethod
    def cut_consumers(self) -> int:
        """Reset every consumer connection to the broker and refuse new ones until :meth:`restore_consumers`.

        Returns:
            The connections reset.
        """
        raise NotImplementedError

    @abstractmethod
    def restore_consumers(self) -> None:
        """Let the consumers reach the broker again after :meth:`cut_consumers`."""
        raise NotImplementedError


def group_backlog(broker: Broker, work_queue: str) -> tuple[int, int]:
    """What :meth:`ChaosRig.backlog` answers for the group whose work queue is ``work_queue``."""
    dead_queue = f"{work_queue}.dead"
    depths = broker.depths(broker.queue_names(work_queue))
    return depths[dead_queue], sum(n for q, n in depths.items() if q != dead_queue)


def drain_group(broker: Broker, work_queue: str) -> tuple[list[str], list[str]]:
    """Take every message out of a group's queues: the ids from its work and retry queues, and from its dead-letter queue."""
    dead_queue = f"{work_queue}.dead"
    queued = [m.message_id or "" for q in broker.queue_names(work_queue) if q != dead_queue for m in broker.drain(q)]
    return queued, [m.message_id or "" for m in broker.drain(dead_queue)]

"""Names and arguments of sluice's exchange and queues, as plain data.

For each consumer group ``G`` (prefix ``P``)::

    exchange  sluice.events (topic) --binding keys--> P.G              (work queue)
    P.G  --consumer: transient failure--> P.G.retry.<delay>   (TTL queue, one per tier)
    P.G.retry.<delay> --TTL expires, dead-lettered via ""--> P.G  (this group only)
    P.G  --consumer: permanent failure / attempts exhausted--> P.G.dead
    P.G  --broker: delivery limit (quorum)--> P.G.dead

Retry tiers dead-letter through the default exchange with the work queue's name as routing key,
never through the shared topic exchange: that would hand a retry to every group whose binding
matches the event's key.

Nothing here talks to the broker; ``amqp/consumer.py`` declares what this module describes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sluice_common.config import TopologySettings

__all__ = ["GroupTopology", "QueueSpec", "format_delay", "group_topology"]


@dataclass(frozen=True)
class QueueSpec:
    """One durable queue: its name and its ``x-`` arguments."""

    name: str
    arguments: dict[str, Any]
    role: str  # "work", "retry" or "dead"


@dataclass(frozen=True)
class GroupTopology:
    """Everything one consumer group owns."""

    group: str
    exchange: str
    binding_keys: tuple[str, ...]
    work: QueueSpec
    retries: tuple[QueueSpec, ...]
    dead: QueueSpec

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        """All the group's queues, dead-letter queue first (it must exist before anything targets it)."""
        return (self.dead, *self.retries, self.work)

    def for_broker(self, version: str) -> GroupTopology:
        """The topology as declared on a broker of ``version`` (its ``server_properties``).

        RabbitMQ 3.x has no default delivery limit and reads ``x-delivery-limit: -1`` as "no
        redelivery at all": the first look at a dead letter would drop it. There the dead-letter
        queue is declared without the argument, which on 3.x means no limit. A version that cannot
        be read is taken as 4.x.
        """
        major = version.split(".", 1)[0]
        if not (major.isdigit() and int(major) < 4) or "x-delivery-limit" not in self.dead.arguments:
            return self
        arguments = {k: v for k, v in self.dead.arguments.items() if k != "x-delivery-limit"}
        return dataclasses.replace(self, dead=dataclasses.replace(self.dead, arguments=arguments))

    def retry_queue(self, attempts_made: int) -> QueueSpec:
        """The tier a message goes to after its ``attempts_made``-th failed attempt (1-based).

        Attempts beyond the number of tiers stay on the last, longest tier.
        """
        index = min(max(attempts_made, 1), len(self.retries)) - 1
        return self.retries[index]


def format_delay(seconds: float) -> str:
    """A short, stable queue-name suffix for a delay: ``0.5`` → ``500ms``, ``120`` → ``2m``."""
    millis = round(seconds * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def group_topology(settings: TopologySettings, group: str, binding_keys: tuple[str, ...] = ("#",)) -> GroupTopology:
    """Describe the queues of one consumer group.

    Parameters:
        settings: exchange, prefix, queue type, delivery limit and retry delays.
        group: the consumer group's name.
        binding_keys: topic patterns the work queue is bound with.
    """
    base = f"{settings.prefix}.{group}"
    quorum = settings.queue_type == "quorum"
    common: dict[str, Any] = {"x-queue-type": settings.queue_type}

    dead_args = dict(common)
    if quorum:
        # RabbitMQ 4 gives every quorum queue a delivery limit of 20 by default and drops a message
        # past it when there is nowhere to dead-letter it. Each look at a dead letter (``sluice dlq
        # peek``) returns it to the queue and counts as a delivery, so without this the twentieth
        # look would silently delete it. -1 turns the limit off.
        dead_args["x-delivery-limit"] = -1
    dead = QueueSpec(name=f"{base}.dead", arguments=dead_args, role="dead")

    work_args = dict(common, **{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead.name})
    if quorum:
        # At-least-once dead-lettering keeps a message until the dead-letter queue confirms it;
        # the broker requires reject-publish overflow for it. The delivery limit moves a message
        # that keeps crashing consumers to the dead-letter queue instead of looping forever.
        work_args.update(
            {
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
                "x-delivery-limit": settings.delivery_limit,
            }
        )
    work = QueueSpec(name=base, arguments=work_args, role="work")

    retries = []
    for delay in settings.retry_delays_s:
        args = dict(
            common,
            **{
                "x-message-ttl": round(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": work.name,
            },
        )
        if quorum:
            args.update({"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
        retries.append(QueueSpec(name=f"{base}.retry.{format_delay(delay)}", arguments=args, role="retry"))

    return GroupTopology(
        group=group,
        exchange=settings.exchange,
        binding_keys=binding_keys,
        work=work,
        retries=tuple(retries),
        dead=dead,
    )

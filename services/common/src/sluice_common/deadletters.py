"""Dead-letter operations: look at a group's dead-letter queue, replay it, purge it.

The queue is read by *browsing*: messages are received and left unacknowledged, so they go back to
the queue, in order, when the browse ends (see :meth:`QueueClient.browse`). Only two operations
remove a dead letter, and each removes one only after its fate is sealed:

- :meth:`DeadLetterQueue.replay` acks a dead letter after the broker confirmed its copy on the way
  back to work. A crash between the confirm and the ack leaves both (a duplicate), never neither.
- :meth:`DeadLetterQueue.purge` acks (or purges) what the operator asked to delete.

Everything here speaks through :class:`QueueClient`; the parsing and filtering helpers touch no broker.
"""

from __future__ import annotations

import datetime as dt
import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sluice_common.amqp import QueueClient
from sluice_common.envelope import (
    ATTEMPTS_HEADER,
    BROKER_HEADERS,
    DEAD_AT_HEADER,
    ERROR_HEADER,
    GROUP_HEADER,
    REASON_HEADER,
    REPLAYS_HEADER,
    ROUTING_KEY_HEADER,
    Delivery,
    OutgoingMessage,
)
from sluice_common.errors import PublishError
from sluice_common.topology import GroupTopology

__all__ = [
    "MAX_SCAN",
    "DeadLetter",
    "DeadLetterQueue",
    "Filter",
    "ReasonStats",
    "ReplayResult",
    "Stats",
    "replay_message",
    "topic_matches",
]

#: Most dead letters one browse holds unacknowledged: the largest AMQP prefetch count.
MAX_SCAN = 65535
#: Letters an unfiltered replay holds at once: each is acked soon, so a small window bounds memory.
REPLAY_WINDOW = 100
#: A browse ends after this long without a message: the queue has nothing more to give.
IDLE_S = 1.0
#: Sorts before every time of death.
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: Headers the consumer adds when it dead-letters; a replayed copy starts without them.
_DEATH_HEADERS = (ATTEMPTS_HEADER, REASON_HEADER, ERROR_HEADER, DEAD_AT_HEADER, GROUP_HEADER)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def _first_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death")
    return deaths[-1] if isinstance(deaths, list) and deaths and isinstance(deaths[-1], dict) else {}


@dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter queue, with the facts sluice and the broker recorded about it."""

    delivery: Delivery

    @property
    def message_id(self) -> str:
        """The event id (``message_id``), or ``""`` when the sender set none."""
        return self.delivery.message_id or ""

    @property
    def routing_key(self) -> str:
        """The event's original routing key (its type), not the dead-letter queue's name."""
        return self.delivery.event_type

    @property
    def reason(self) -> str:
        """Why it died: ``x-sluice-reason``, else the broker's first death reason, else ``unknown``."""
        headers = self.delivery.headers
        return (
            _text(headers.get(REASON_HEADER))
            or _text(headers.get("x-first-death-reason"))
            or _text(_first_death(headers).get("reason"))
            or "unknown"
        )

    @property
    def error(self) -> str:
        """The last error, as the consumer recorded it (may be empty)."""
        return _text(self.delivery.headers.get(ERROR_HEADER)) or ""

    @property
    def dead_at(self) -> dt.datetime | None:
        """When it was dead-lettered (UTC), from ``x-sluice-dead-at`` or the broker's ``x-death`` time."""
        text = _text(self.delivery.headers.get(DEAD_AT_HEADER))
        if text:
            try:
                return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                pass  # a forged or garbled header: fall back to what the broker recorded
        when = _first_death(self.delivery.headers).get("time")
        if isinstance(when, dt.datetime):
            return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        return None

    @property
    def attempts(self) -> int | None:
        """Processing attempts made before it died, when recorded as a sane number."""
        value = self.delivery.headers.get(ATTEMPTS_HEADER)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    @property
    def replays(self) -> int:
        """Times it was replayed before (``x-sluice-replays``)."""
        value = self.delivery.headers.get(REPLAYS_HEADER)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def topic_matches(pattern: str, key: str) -> bool:
    """Whether a routing key matches an AMQP topic pattern (``*`` one word, ``#`` zero or more).

    Examples::

        topic_matches("sensor.*", "sensor.reading")    # True
        topic_matches("#.created", "deployment.created")  # True
        topic_matches("sensor.*", "sensor.reading.raw")  # False
    """
    words, parts = key.split("."), pattern.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(parts):
            return j == len(words)
        if parts[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(words) + 1))
        return j < len(words) and parts[i] in ("*", words[j]) and match(i + 1, j + 1)

    return match(0, 0)


@dataclass(frozen=True)
class Filter:
    """Which dead letters an operation applies to: any of ``reasons`` and any of ``routing_keys``.

    An empty tuple matches everything; routing keys are topic patterns (``sensor.*``, ``#``).
    """

    reasons: tuple[str, ...] = ()
    routing_keys: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        """True when the filter lets every dead letter through."""
        return not self.reasons and not self.routing_keys

    def __call__(self, dead: DeadLetter) -> bool:
        if self.reasons and dead.reason not in self.reasons:
            return False
        return not self.routing_keys or any(topic_matches(p, dead.routing_key) for p in self.routing_keys)


@dataclass
class ReasonStats:
    """Dead letters of one reason: how many, and the oldest and newest death time."""

    count: int = 0
    oldest: dt.datetime | None = None
    newest: dt.datetime | None = None

    def add(self, when: dt.datetime | None) -> None:
        self.count += 1
        if when is not None:
            self.oldest = when if self.oldest is None else min(self.oldest, when)
            self.newest = when if self.newest is None else max(self.newest, when)


@dataclass
class Stats:
    """A summary of a dead-letter queue: its depth, what was scanned, and counts by reason."""

    queue: str
    depth: int
    scanned: int = 0
    matched: ReasonStats = field(default_factory=ReasonStats)
    by_reason: dict[str, ReasonStats] = field(default_factory=dict)
    by_routing_key: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every message of the queue was scanned."""
        return self.scanned >= self.depth


@dataclass
class ReplayResult:
    """What a replay did: dead letters republished (and removed), skipped by the filter, failed."""

    replayed: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def replay_message(dead: DeadLetter, *, exchange: str, routing_key: str) -> OutgoingMessage:
    """The copy of a dead letter that goes back to work: same body and id, attempts reset.

    The death headers (``x-sluice-reason``, ``-error``, ``-dead-at``, ``-attempts``, the broker's
    ``x-death``) are dropped, ``x-sluice-routing-key`` keeps the event type, and
    ``x-sluice-replays`` counts the replays.
    """
    delivery = dead.delivery
    headers = {k: v for k, v in delivery.headers.items() if k not in _DEATH_HEADERS + BROKER_HEADERS}
    headers[ROUTING_KEY_HEADER] = dead.routing_key
    headers[REPLAYS_HEADER] = dead.replays + 1
    return OutgoingMessage(
        exchange=exchange,
        routing_key=routing_key,
        body=delivery.body,
        message_id=dead.message_id,
        headers=headers,
        content_type=delivery.content_type or "",
        type=delivery.type or dead.routing_key,
        timestamp=delivery.timestamp,
    )


class DeadLetterQueue:
    """The dead-letter queue of one consumer group, through an open :class:`QueueClient`.

    Parameters:
        client: the broker session.
        topology: the group's queues (the dead-letter queue, and the work queue replays go to).
        queue: read this queue instead of the group's ``<prefix>.<group>.dead``.
    """

    def __init__(self, client: QueueClient, topology: GroupTopology, *, queue: str | None = None) -> None:
        self._client = client
        self._topology = topology
        self.name = queue or topology.dead.name

    @property
    def work_queue(self) -> str:
        """The group's work queue, where :meth:`replay` sends dead letters by default."""
        return self._topology.work.name

    def depth(self) -> int:
        """Dead letters ready in the queue."""
        return self._client.depth(self.name)

    def browse(
        self, *, limit: int = MAX_SCAN, prefetch: int = MAX_SCAN, fixed: bool = False
    ) -> Iterator[tuple[DeadLetter, int]]:
        """The dead letters from the head of the queue, at most ``limit``, each with its delivery tag.

        Nothing is removed unless the caller acks a tag. The browse ends when the queue has nothing
        more to give (:data:`IDLE_S` without a message). With ``fixed`` it also ends after as many
        letters as the queue held at the start, so that letters arriving meanwhile (a replayed
        message that failed again) are left alone; the count may be low when letters another
        session just released are not back yet, which only makes such a run do less.
        """
        if fixed:
            limit = min(self.depth(), limit)
        if limit <= 0:
            return
        seen = 0
        for delivery, tag in self._client.browse(self.name, prefetch=min(prefetch, limit, MAX_SCAN), idle_s=IDLE_S):
            yield DeadLetter(delivery), tag
            seen += 1
            if seen >= limit:
                return

    def stats(self, where: Filter = Filter(), *, limit: int = MAX_SCAN) -> Stats:
        """Count the dead letters (the first ``limit`` at most) by reason, with oldest and newest."""
        stats = Stats(queue=self.name, depth=self.depth())
        for dead, _tag in self.browse(limit=limit):
            stats.scanned += 1
            if not where(dead):
                continue
            when = dead.dead_at
            stats.matched.add(when)
            stats.by_reason.setdefault(dead.reason, ReasonStats()).add(when)
            stats.by_routing_key[dead.routing_key] = stats.by_routing_key.get(dead.routing_key, 0) + 1
        return stats

    def peek(self, where: Filter = Filter(), *, count: int, scan: int = MAX_SCAN) -> list[DeadLetter]:
        """The ``count`` matching dead letters that died first, among the first ``scan``, left in the queue.

        Oldest death first; letters without a time of death come last, in the order received. The
        whole scan is read because the queue's own order is no stable way to choose them: a browse
        puts its letters back, and a quorum queue may requeue two of them in the other order.
        """
        matching = (dead for dead, _tag in self.browse(limit=scan, prefetch=scan) if where(dead))
        # nsmallest is stable, so letters dead at the same moment (or never stamped) keep their order
        return heapq.nsmallest(count, matching, key=lambda dead: (dead.dead_at is None, dead.dead_at or _EPOCH))

    def replay(
        self,
        where: Filter = Filter(),
        *,
        limit: int,
        rate: float,
        to_exchange: bool = False,
        scan: int = MAX_SCAN,
        progress: Callable[[ReplayResult], None] | None = None,
    ) -> ReplayResult:
        """Send matching dead letters back to work, at most ``rate`` per second, then remove them.

        By default each goes to the group's work queue through the default exchange, so only this
        group sees it again (as a retry tier does). ``to_exchange`` publishes it to the events
        exchange with its original routing key instead: every group bound to that key gets it.

        A dead letter is acked only after its copy was confirmed. When a publish fails (no
        queue to route to, or the broker nacked it) the dead letter stays and the replay stops.
        """
        result = ReplayResult()
        interval = 1.0 / rate
        next_at = time.monotonic()
        # A filter keeps the letters it skips unacked until the end, so they all count against the window.
        window = REPLAY_WINDOW if where.everything else scan
        for dead, tag in self.browse(limit=scan, prefetch=window, fixed=True):
            if result.replayed >= limit:
                break
            if not where(dead):
                result.skipped += 1
                continue
            wait = next_at - time.monotonic()
            if wait > 0:
                self._client.sleep(wait)
            next_at = max(next_at + interval, time.monotonic() - interval)  # no burst after a stall
            if to_exchange:
                message = replay_message(dead, exchange=self._topology.exchange, routing_key=dead.routing_key)
            else:
                message = replay_message(dead, exchange="", routing_key=self.work_queue)
            try:
                self._client.publish(message)
            except PublishError as e:
                result.failed += 1
                result.errors.append(f"{dead.message_id or '(no id)'}: {e}")
                break
            self._client.ack(tag)
            result.replayed += 1
            if progress is not None:
                progress(result)
        return result

    def purge(self, where: Filter = Filter(), *, scan: int = MAX_SCAN) -> int:
        """Delete the matching dead letters (all of them with no filter); returns how many."""
        if where.everything:
            return self._client.purge(self.name)
        deleted = 0
        for dead, tag in self.browse(limit=scan):
            if where(dead):
                self._client.ack(tag)
                deleted += 1
        return deleted

"""FastStream consuming the same messages with a no-op handler.

The handler takes the body as a ``dict`` (FastStream decodes the JSON) and returns; FastStream
acks after the handler returns (its default ``REJECT_ON_ERROR`` policy), with the same prefetch
as the tuned raw loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bench.workload import Meter, Report, Tally

__all__ = ["consume"]

NAME = "FastStream"
PREFETCH = 300


async def _run(url: str, queue: str, queue_type: str, tally: Tally, prefetch: int, meter: Meter) -> int:
    from faststream.rabbit import Channel, QueueType, RabbitBroker, RabbitQueue

    broker = RabbitBroker(url, log_level=logging.WARNING, logger=None)
    seen = 0
    kind = QueueType.QUORUM if queue_type == "quorum" else QueueType.CLASSIC

    @broker.subscriber(
        RabbitQueue(queue, queue_type=kind, durable=True, declare=False),  # type: ignore[call-overload]
        channel=Channel(prefetch_count=prefetch),
    )
    async def handle(body: dict[str, Any]) -> None:
        nonlocal seen
        meter.begin()
        seen += 1
        meter.end()
        tally.add()

    await broker.start()
    tally.ready()
    try:
        while not tally.done.is_set():
            await asyncio.sleep(0.01)
    finally:
        await broker.stop()
    return seen


def consume(url: str, queue: str, queue_type: str, tally: Tally, prefetch: int = PREFETCH) -> Report:
    """Consume until every expected message was handled and acked."""
    meter = Meter(NAME, "consumer")
    seen = asyncio.run(_run(url, queue, queue_type, tally, prefetch, meter))
    return meter.report(seen)

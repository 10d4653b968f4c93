"""The ingest a user would write with FastAPI, uvicorn and aio-pika: the peer of sluice's ``POST /events``.

Written as their documentation suggests: one robust connection, a channel with publisher confirms,
and each event published as a persistent message awaited until the broker confirmed it (aio-pika
waits for the confirm inside ``publish``), a batch's events concurrently (``asyncio.gather``); then
202. It validates nothing beyond "JSON with a ``type``". Run by ``bench.ingest`` as

    BENCH_AMQP_URL=... BENCH_EXCHANGE=... python -m uvicorn bench.fastapi_ingest:app --port N

(uvicorn with its standard extras, uvloop and httptools, one worker: sluice's producer is one process too).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from fastapi import FastAPI, HTTPException, Request


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    connection = await aio_pika.connect_robust(os.environ["BENCH_AMQP_URL"])
    channel = await connection.channel(publisher_confirms=True)
    app.state.exchange = await channel.get_exchange(os.environ["BENCH_EXCHANGE"], ensure=True)
    try:
        yield
    finally:
        await connection.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/events", status_code=202)
async def ingest(request: Request) -> dict[str, int]:
    payload = await request.json()
    events: list[Any] = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(e, dict) and isinstance(e.get("type"), str) for e in events):
        raise HTTPException(400, "each event needs a type")
    exchange: aio_pika.abc.AbstractExchange = request.app.state.exchange
    await asyncio.gather(*(
        exchange.publish(aio_pika.Message(json.dumps(event).encode(), content_type="application/json",
                                          delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                          message_id=str(event.get("id", ""))), routing_key=event["type"])
        for event in events))
    return {"accepted": len(events)}

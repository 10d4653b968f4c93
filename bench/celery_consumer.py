"""A Celery worker running a no-op task over the same broker.

Solo pool (one task at a time, like one Python process can), ``acks_late`` (ack after the task, as
sluice acks after its sink), prefetch 300, no result backend, no events, no remote control. The
queue is filled by the tuned raw producer with Celery's own message format (protocol 2), so the
producer side is the same for everyone.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import threading
import uuid
from typing import Any

from bench.workload import READING, Meter, Report, Tally

__all__ = ["TASK", "consume", "task_message"]

NAME = "Celery"
TASK = "bench.noop"
PREFETCH = 300


def task_message(seq: int) -> tuple[bytes, dict[str, Any]]:
    """Body and AMQP properties of one Celery protocol-2 message calling ``TASK(READING)``."""
    task_id = str(uuid.uuid4())
    headers = {
        "lang": "py", "task": TASK, "id": task_id, "shadow": None, "eta": None, "expires": None,
        "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": task_id,
        "parent_id": None, "argsrepr": f"(reading {seq},)", "kwargsrepr": "{}", "origin": "bench",
        "ignore_result": True,
    }
    body = json.dumps([[READING], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    return body.encode(), {"content_type": "application/json", "content_encoding": "utf-8",
                           "correlation_id": task_id, "headers": headers}


def consume(url: str, queue: str, queue_type: str, tally: Tally, prefetch: int = PREFETCH) -> Report:
    """Run a solo-pool worker until every expected task ran, then stop it warmly (SIGTERM)."""
    from celery import Celery
    from kombu.entity import Queue

    meter = Meter(NAME, "consumer")
    seen = 0
    app = Celery("bench", broker=url, set_as_current=True)
    app.conf.update(
        task_acks_late=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=prefetch,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        task_queues=[Queue(queue,  # type: ignore[no-untyped-call]
                            queue_arguments={"x-queue-type": queue_type}, no_declare=True)],
        task_default_queue=queue,
    )

    @app.task(name=TASK)  # type: ignore[untyped-decorator]
    def noop(reading: dict[str, Any]) -> None:
        nonlocal seen
        meter.begin()
        seen += 1
        meter.end()
        tally.add()

    def stop_when_done() -> None:
        tally.done.wait(600)
        os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown: finish and ack the task in hand

    threading.Thread(target=stop_when_done, daemon=True).start()
    worker = app.Worker(pool="solo", concurrency=1, loglevel="WARNING", quiet=True,
                        without_heartbeat=True, without_mingle=True, without_gossip=True)
    logging.getLogger("celery").setLevel(logging.ERROR)  # its start-up advice is not part of the results
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # nor its banner and shutdown lines
            worker.start()
    except SystemExit:
        pass
    return meter.report(seen)

"""A Celery worker running a no-op task over the same broker.

Solo pool (one task at a time, like one Python process can), ``acks_late`` (ack after the task, as
sluice acks after its sink), prefetch 300, no result backend, no events, no remote control. The
queue is filled by the tuned raw producer with Celery's own message format (protocol 2), so the
producer side is the same for everyone.

On quorum queues a few acks of the last tasks are sometimes missing after the warm shutdown (the
broker requeues those messages: duplicates, not losses), so this contender reports the distinct
task ids it ran, and the runner counts and removes what came back instead of failing the run.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import uuid
import warnings
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
    seen: set[str] = set()
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

    @app.task(name=TASK, bind=True)  # type: ignore[untyped-decorator]
    def noop(task: Any, reading: dict[str, Any]) -> None:
        meter.begin()
        seen.add(task.request.id)
        meter.end()
        tally.add()

    def stop_when_done() -> None:
        tally.done.wait(600)
        os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown: finish and ack the task in hand

    threading.Thread(target=stop_when_done, daemon=True).start()
    # Its banner, root-user advice and shutdown lines are not part of the results; some go straight
    # to the file descriptors, so those are what is redirected.
    with tempfile.TemporaryFile() as output, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = os.dup(1), os.dup(2)
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
        try:
            app.Worker(pool="solo", concurrency=1, loglevel="WARNING", quiet=True,
                       without_heartbeat=True, without_mingle=True, without_gossip=True).start()
        except SystemExit:
            pass
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in ((1, saved[0]), (2, saved[1])):
                os.dup2(copy, fd)
                os.close(copy)
        if len(seen) < tally.expected:
            output.seek(0)
            sys.stderr.write(output.read().decode(errors="replace"))  # what went wrong is in there
    return meter.report(len(seen))

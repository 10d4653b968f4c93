"""The worker: receives deliveries, processes them on a thread pool, settles them, keeps the metrics.

Deliveries wait in one backlog; up to ``concurrency`` runner threads take them in turn. A runner
starts only when the backlog outgrows the runners already busy, so a fast sink is served by one
thread (no hand-over per message, no threads fighting over the GIL) and a slow one by all of them.
An idle runner waits a moment for more work before it ends, so a steady flow does not start a
thread task per burst.

Shutdown (:meth:`Worker.stop`) follows the order that loses nothing: stop consuming first, let the
in-flight work finish while the connection (and its heartbeats) stays up, settle it, and only then
close the connection; whatever is still unsettled goes back to the queue.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sluice_common import metrics
from sluice_common.amqp import Consumer, DeliveryHandle
from sluice_common.config import Settings
from sluice_common.envelope import ATTEMPTS_HEADER, REPLAYS_HEADER, Delivery
from sluice_common.topology import GroupTopology
from sluice_consumer.pipeline import Decision, Pipeline

__all__ = ["Worker"]

#: Time given to the last retry / dead-letter publishes to be confirmed during shutdown.
SETTLE_TIMEOUT_S = 5.0
#: How long an idle runner thread waits for another delivery before it ends.
RUNNER_IDLE_S = 1.0


class Worker:
    """Runs one consumer group's pipeline against the broker."""

    def __init__(self, settings: Settings, topology: GroupTopology, pipeline: Pipeline, *, sink_name: str) -> None:
        self._settings = settings
        self._pipeline = pipeline
        self._sink_name = sink_name
        self._concurrency = settings.consumer.concurrency
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="worker")
        self._backlog: collections.deque[tuple[Delivery, DeliveryHandle]] = collections.deque()
        self._runners = 0  # runner threads started and not yet finished; guarded by _lock
        self._waiting = 0  # runners idle, waiting on _work; guarded by _lock
        self._inflight = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # in-flight count reached 0
        self._work = threading.Condition(self._lock)  # the backlog got a delivery, or runners must end
        self._stopping = False
        self._log = logging.getLogger("sluice.worker")
        # Labelled children looked up once: these are touched for every message.
        self._processing_seconds = metrics.PROCESSING_SECONDS.labels(sink_name)
        self._processed = {o: metrics.MESSAGES_PROCESSED.labels(o) for o in ("acked", "retried", "dead_lettered")}
        self.consumer = Consumer(
            settings.amqp,
            topology,
            prefetch=settings.consumer.prefetch,
            on_delivery=self._on_delivery,
            queue_poll_s=settings.queue_poll_s,
            name=f"sluice-consumer-{topology.group}",
            observer=metrics.MetricsObserver(),
        )

    def start(self) -> None:
        """Connect and start consuming (in the background)."""
        self.consumer.start()

    def stop(self, grace_s: float) -> bool:
        """Stop consuming, finish in-flight work for up to ``grace_s``, then close.

        Returns:
            True if all in-flight work finished within the grace period.
        """
        self._log.info("Stopping: no new deliveries; finishing %d in-flight message(s).", self._inflight)
        self._stopping = True
        self.consumer.stop_consuming()
        with self._idle:
            drained = self._idle.wait_for(lambda: self._inflight == 0, timeout=grace_s)
        if not drained:
            self._log.warning("%d message(s) still in flight after %.0fs; they go back to the queue.", self._inflight, grace_s)
        # Retry and dead-letter publishes wait for their confirm before their ack: give them a moment.
        settle_deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while self.consumer.settling and self.consumer.connected and time.monotonic() < settle_deadline:
            time.sleep(0.02)
        self.consumer.stop()
        with self._lock:
            self._backlog.clear()  # never started: unsettled, so the broker redelivers them
            self._work.notify_all()  # idle runners end now
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._log.info("Worker has been shut down.")
        return drained

    @property
    def ready(self) -> bool:
        """Connected, topology declared, consuming, and every queue of the group answers."""
        return self.consumer.ready and not self.consumer.unavailable and not self._stopping

    def _on_delivery(self, delivery: Delivery, handle: DeliveryHandle) -> None:
        # On the I/O thread: hand over and return at once.
        if self._stopping:
            return  # left unsettled: it goes back to the queue when the connection closes
        with self._lock:
            self._inflight += 1
            self._backlog.append((delivery, handle))
            if self._waiting:
                self._work.notify()
                start = False
            else:
                start = self._runners < self._concurrency and len(self._backlog) > self._runners
                if start:
                    self._runners += 1
        metrics.MESSAGES_INFLIGHT.inc()
        if start:
            self._pool.submit(self._run)

    def _run(self) -> None:
        """A runner: process deliveries from the backlog; end after ``RUNNER_IDLE_S`` without any."""
        while True:
            with self._lock:
                if not self._backlog and not self._stopping:
                    self._waiting += 1
                    self._work.wait(RUNNER_IDLE_S)
                    self._waiting -= 1
                if not self._backlog:
                    self._runners -= 1
                    return
                delivery, handle = self._backlog.popleft()
            self._process(delivery, handle)

    def _process(self, delivery: Delivery, handle: DeliveryHandle) -> None:
        started = time.perf_counter()
        try:
            decision = self._pipeline.handle(delivery)
            self._processing_seconds.observe(time.perf_counter() - started)
            self._settle(delivery, handle, decision)
        finally:
            metrics.MESSAGES_INFLIGHT.dec()
            with self._idle:
                self._inflight -= 1
                if self._inflight == 0:
                    self._idle.notify_all()

    def _settle(self, delivery: Delivery, handle: DeliveryHandle, decision: Decision) -> None:
        self._processed[decision.outcome].inc()
        if REPLAYS_HEADER in delivery.headers and ATTEMPTS_HEADER not in delivery.headers:
            # The first attempt after a replay (which resets the attempts): count it once, not per retry.
            metrics.DLQ_REPLAYED.labels(decision.outcome).inc()
        if decision.forward is None:
            self.consumer.ack(handle)
            return
        self.consumer.forward(handle, decision.forward)
        extra = {"message_id": delivery.message_id, "event_type": delivery.event_type, "attempts": decision.attempts}
        if decision.outcome == "dead_lettered":
            metrics.DEAD_LETTERS.labels(decision.reason).inc()
            self._log.warning(
                "Dead-lettered (%s): %s", decision.reason, decision.error, extra={**extra, "reason": decision.reason}
            )
        else:
            self._log.info(
                "Retrying via %s after attempt %d: %s",
                decision.forward.routing_key,
                decision.attempts,
                decision.error,
                extra=extra,
            )

"""The worker: receives deliveries, processes them on a thread pool, settles them, keeps the metrics.

Shutdown (:meth:`Worker.stop`) follows the order that loses nothing: stop consuming first, let the
in-flight work finish while the connection (and its heartbeats) stays up, settle it, and only then
close the connection; whatever is still unsettled goes back to the queue.
"""

from __future__ import annotations

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


class Worker:
    """Runs one consumer group's pipeline against the broker."""

    def __init__(self, settings: Settings, topology: GroupTopology, pipeline: Pipeline, *, sink_name: str) -> None:
        self._settings = settings
        self._pipeline = pipeline
        self._sink_name = sink_name
        self._pool = ThreadPoolExecutor(settings.consumer.concurrency, thread_name_prefix="worker")
        self._inflight = 0
        self._idle = threading.Condition()
        self._stopping = False
        self._log = logging.getLogger("sluice.worker")
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
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._log.info("Worker has been shut down.")
        return drained

    @property
    def ready(self) -> bool:
        """Connected, topology declared, consuming."""
        return self.consumer.ready and not self._stopping

    def _on_delivery(self, delivery: Delivery, handle: DeliveryHandle) -> None:
        # On the I/O thread: hand over and return at once.
        if self._stopping:
            return  # left unsettled: it goes back to the queue when the connection closes
        with self._idle:
            self._inflight += 1
        metrics.MESSAGES_INFLIGHT.inc()
        self._pool.submit(self._process, delivery, handle)

    def _process(self, delivery: Delivery, handle: DeliveryHandle) -> None:
        started = time.perf_counter()
        try:
            decision = self._pipeline.handle(delivery)
            metrics.PROCESSING_SECONDS.labels(self._sink_name).observe(time.perf_counter() - started)
            self._settle(delivery, handle, decision)
        finally:
            metrics.MESSAGES_INFLIGHT.dec()
            with self._idle:
                self._inflight -= 1
                if self._inflight == 0:
                    self._idle.notify_all()

    def _settle(self, delivery: Delivery, handle: DeliveryHandle, decision: Decision) -> None:
        metrics.MESSAGES_PROCESSED.labels(decision.outcome).inc()
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

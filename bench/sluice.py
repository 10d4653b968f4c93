"""sluice itself: the producer's EventPublisher and the consumer's Worker with its real pipeline.

Producer: schema check, encode and publish with confirms through :class:`EventPublisher` (what
``sluice publish`` and the generator run), with the default window of 1000 unconfirmed messages.
Consumer: the :class:`Worker` of ``python -m sluice_consumer`` with its pipeline (JSON decode,
schema validation, sink, ack after the sink) and the null sink, wrapped only to count and time.
"""

from __future__ import annotations

import threading
import time

from bench.workload import READING, Meter, Report, Tally, paced_chunks, stamp, stamp_age
from sluice_common.amqp import PublishBatch
from sluice_common.config import Settings
from sluice_common.envelope import Event
from sluice_common.topology import GroupTopology, group_topology
from sluice_common.validation import SchemaRegistry
from sluice_consumer.pipeline import Pipeline
from sluice_consumer.sinks import NullSink
from sluice_consumer.worker import Worker
from sluice_producer.publisher import EventPublisher

__all__ = ["consume", "produce", "settings", "topology"]

NAME = "sluice"
#: The consumer's prefetch in the throughput runs (the tuned raw loop uses 300 too).
PREFETCH = 300


def settings(url: str, prefix: str, queue_type: str, **extra: str) -> Settings:
    """sluice's settings for a bench run: its own prefix and exchange, the null sink, quiet logs."""
    return Settings.from_env({
        "SLUICE_AMQP_URL": url,
        "SLUICE_TOPOLOGY_PREFIX": prefix,
        "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events",
        "SLUICE_TOPOLOGY_QUEUE_TYPE": queue_type,
        "SLUICE_SINK_KIND": "null",
        "SLUICE_LOG_LEVEL": "WARNING",
        "SLUICE_CONSUMER_PREFETCH": str(PREFETCH),
        **extra,
    })


def topology(url: str, prefix: str, queue_type: str) -> GroupTopology:
    """The queues of the bench's consumer group."""
    config = settings(url, prefix, queue_type)
    return group_topology(config.topology, config.consumer.group, config.consumer.binding_keys)


def produce(url: str, prefix: str, queue_type: str, n: int, rate: float | None = None) -> Report:
    """Publish ``n`` events through the producer's EventPublisher; returns once all are confirmed."""
    meter = Meter(NAME, "producer")
    publisher = EventPublisher(settings(url, prefix, queue_type), schemas=SchemaRegistry.load())
    publisher.start()
    deadline = time.monotonic() + 30
    while not publisher.ready:
        if time.monotonic() > deadline:
            raise RuntimeError("sluice publisher not ready within 30s")
        time.sleep(0.01)
    batches: list[PublishBatch] = []
    try:
        meter.begin()
        for chunk in paced_chunks(n, rate):
            messages = [publisher.check(Event("sensor.reading", READING, id=stamp(seq))) for seq in chunk]
            batches.append(publisher.publisher.publish(messages, timeout=300))
        # As the generator does: never wait before publishing more, then wait for every outcome
        # (a message still unanswered after the wait counts as not confirmed).
        failed = 0
        for batch in batches:
            batch.wait(300)
            failed += sum(1 for error in batch.errors() if error is not None)
        meter.end()
        if failed:
            raise RuntimeError(f"sluice producer: {failed} of {n} messages not confirmed")
    finally:
        publisher.stop()
    return meter.report(n)


class _MeteredSink(NullSink):
    """The null sink, counting each delivered event and timing its publish-to-sink latency.

    The count reaches the run's cross-process tally every few milliseconds from a thread of its own:
    a lock shared between processes, taken by every worker thread for every event, would measure
    the bench rather than sluice.
    """

    def __init__(self, meter: Meter, tally: Tally) -> None:
        self._meter, self._tally = meter, tally
        self._lock = threading.Lock()  # taken by this process's threads only, for a moment
        self.delivered = 0
        self.latencies: list[float] = []
        self._stopped = threading.Event()
        self._flusher = threading.Thread(target=self._flush, name="bench-tally", daemon=True)
        self._flusher.start()

    def deliver(self, event: Event) -> None:
        self._meter.begin()
        super().deliver(event)
        age = stamp_age(event.id)
        if age is not None:
            self.latencies.append(age)
        self._meter.end()
        with self._lock:
            self.delivered += 1

    def _flush(self) -> None:
        counted = 0
        while not self._stopped.wait(0.005):
            delivered = self.delivered
            if delivered > counted:
                self._tally.add(delivered - counted)
                counted = delivered

    def close(self) -> None:
        self._stopped.set()
        self._flusher.join()


def consume(url: str, prefix: str, queue_type: str, tally: Tally, prefetch: int = PREFETCH) -> Report:
    """Run the consumer's Worker until every expected event reached the sink, then stop it cleanly."""
    meter = Meter(NAME, "consumer")
    config = settings(url, prefix, queue_type, SLUICE_CONSUMER_PREFETCH=str(prefetch))
    group = group_topology(config.topology, config.consumer.group, config.consumer.binding_keys)
    sink = _MeteredSink(meter, tally)
    pipeline = Pipeline.from_settings(config, group, schemas=SchemaRegistry.load(), sink=sink)
    worker = Worker(config, group, pipeline, sink_name=sink.name)
    worker.start()
    try:
        while not worker.ready and not tally.done.wait(0.01):
            pass
        tally.ready()
        tally.done.wait(600)
    finally:
        worker.stop(grace_s=30)  # acks everything that reached the sink before closing
        sink.close()
    return meter.report(sink.delivered, sink.latencies)

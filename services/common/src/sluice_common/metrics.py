"""Every sluice metric, in one place. The chart, dashboard, alerts and autoscaling depend on these names.

The names are a contract (README, "Metrics"); change them only with a migration note.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

from sluice_common.amqp import AmqpObserver

__all__ = [
    "BROKER_BLOCKED",
    "BROKER_CONNECTED",
    "BUILD_INFO",
    "CONSUMER_CANCELLED",
    "DEAD_LETTERS",
    "DLQ_REPLAYED",
    "INGEST_RESPONSES",
    "MESSAGES_INFLIGHT",
    "MESSAGES_PROCESSED",
    "MESSAGES_PUBLISHED",
    "PROCESSING_SECONDS",
    "PUBLISH_OUTSTANDING",
    "PUBLISH_CONFIRM_SECONDS",
    "PUBLISH_STALLED",
    "QUEUE_CONSUMERS",
    "QUEUE_MESSAGES",
    "QUEUE_UNAVAILABLE",
    "MetricsObserver",
]

#: Latency buckets from 1 ms to 1 min: confirms take milliseconds, webhook calls up to their timeout.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

MESSAGES_PUBLISHED = Counter(
    "sluice_messages_published", "Messages published, by broker outcome.", ["outcome"]
)
PUBLISH_CONFIRM_SECONDS = Histogram(
    "sluice_publish_confirm_seconds", "Time from publish to the broker's confirm.", buckets=_BUCKETS
)
MESSAGES_PROCESSED = Counter(
    "sluice_messages_processed", "Messages settled by a consumer, by outcome.", ["outcome"]
)
DEAD_LETTERS = Counter("sluice_dead_letters", "Messages sent to the dead-letter queue, by reason.", ["reason"])
DLQ_REPLAYED = Counter(
    "sluice_dlq_replayed",
    "Dead letters replayed by `sluice dlq replay`, counted by the consumer that received them, by outcome of that attempt.",
    ["outcome"],
)
PROCESSING_SECONDS = Histogram(
    "sluice_message_processing_seconds", "Time to process one message, decode to sink, by sink.", ["sink"],
    buckets=_BUCKETS,
)
MESSAGES_INFLIGHT = Gauge("sluice_messages_inflight", "Messages being processed right now.")
QUEUE_MESSAGES = Gauge("sluice_queue_messages", "Ready messages in a queue, as last read from the broker.", ["queue"])
QUEUE_CONSUMERS = Gauge("sluice_queue_consumers", "Consumers of a queue, as last read from the broker.", ["queue"])
INGEST_RESPONSES = Counter(
    "sluice_ingest_responses", "Answers of POST /events, by HTTP status (401, 413, 429: refused).", ["code"]
)
BROKER_CONNECTED = Gauge("sluice_broker_connected", "1 while connected to the broker, else 0.")
BROKER_BLOCKED = Gauge(
    "sluice_broker_blocked", "1 while the broker blocks publishing (memory or disk alarm), else 0."
)
PUBLISH_OUTSTANDING = Gauge(
    "sluice_publish_outstanding", "Messages waiting to be published or for their confirm (bounded by the window)."
)
QUEUE_UNAVAILABLE = Gauge(
    "sluice_queue_unavailable",
    "1 while every attempt to declare or consume a queue fails (541 or no answer), else 0.",
    ["queue"],
)
CONSUMER_CANCELLED = Counter(
    "sluice_consumer_cancelled",
    "Subscriptions the broker cancelled (queue deleted, delivery past the consumer timeout), by queue.",
    ["queue"],
)
PUBLISH_STALLED = Gauge(
    "sluice_publish_stalled", "1 while messages wait for a confirm that has not come for 30 s, else 0."
)
BUILD_INFO = Info("sluice_build", "The running sluice version.")

for _outcome in ("confirmed", "nacked", "returned"):
    MESSAGES_PUBLISHED.labels(_outcome)
for _outcome in ("acked", "retried", "dead_lettered"):
    MESSAGES_PROCESSED.labels(_outcome)
    DLQ_REPLAYED.labels(_outcome)
for _code in ("202", "400", "401", "413", "415", "429", "503"):
    INGEST_RESPONSES.labels(_code)
for _reason in ("invalid", "rejected", "max_attempts", "delivery_limit"):
    DEAD_LETTERS.labels(_reason)


class MetricsObserver(AmqpObserver):
    """Updates the broker-side metrics from the AMQP sessions' hooks."""

    def __init__(self) -> None:
        # on_publish runs once per message: look the labelled children up once, not every time.
        self._published = {outcome: MESSAGES_PUBLISHED.labels(outcome) for outcome in ("confirmed", "nacked", "returned")}

    def on_connection(self, connected: bool) -> None:
        BROKER_CONNECTED.set(1 if connected else 0)

    def on_publish(self, outcome: str, seconds: float) -> None:
        self._published[outcome].inc()
        PUBLISH_CONFIRM_SECONDS.observe(seconds)

    def on_queue_stats(self, queue: str, messages: int, consumers: int) -> None:
        QUEUE_MESSAGES.labels(queue).set(messages)
        QUEUE_CONSUMERS.labels(queue).set(consumers)

    def on_blocked(self, blocked: bool) -> None:
        BROKER_BLOCKED.set(1 if blocked else 0)

    def on_queue_unavailable(self, queue: str, unavailable: bool) -> None:
        QUEUE_UNAVAILABLE.labels(queue).set(1 if unavailable else 0)

    def on_consumer_cancelled(self, queue: str) -> None:
        CONSUMER_CANCELLED.labels(queue).inc()

    def on_publish_stalled(self, stalled: bool) -> None:
        PUBLISH_STALLED.set(1 if stalled else 0)

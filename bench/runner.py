"""The scenarios: each contender in its own processes, against one broker, in one run.

Per queue type and repeat: every producer alone (filling a queue), every consumer alone (draining
it), then end to end with one producer and two consumers running together. After every run the
queue must be empty once its consumers are gone: a message not acked would be back in it.
sluice's publish-to-sink latency is measured at half its own end-to-end maximum, and the real
``python -m sluice_consumer`` is started once to time its readiness and its memory at prefetch 500.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from typing import Any

import pika

from bench import sluice
from bench.workload import Report, Tally
from sluice_testing.broker import Broker
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

__all__ = ["Measurement", "Options", "Startup", "run"]

_ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no state shared with this one

#: The naive contenders are ~10x slower: they move this fraction of the messages (rates are rates).
NAIVE_SHARE = 0.2
#: Seconds one child may take before the run is declared stuck.
CHILD_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Options:
    """What to run: messages per run, repeats, queue types, and which extra checks."""

    messages: int = 10_000
    repeats: int = 3
    queue_types: tuple[str, ...] = ("quorum", "classic")
    latency: bool = True
    startup: bool = True


@dataclass
class Measurement:
    """One scenario of one contender on one queue type, one repeat."""

    scenario: str  # "producer", "consumer", "end to end" or "latency"
    contender: str
    queue_type: str
    messages: int  # published
    moved: int  # counted by the consumers (the producer's confirms for a producer-only run)
    rate: float  # msgs/s
    cpu_per_10k: float  # CPU seconds of every process involved, per 10k messages
    rss_mib: float  # the largest peak RSS among those processes
    p50_ms: float | None = None
    p99_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Startup:
    """The real consumer service: time to ready and peak RSS after a backlog at prefetch 500."""

    ready_s: float
    rss_mib: float
    messages: int


# -- child processes ------------------------------------------------------------------------------


def _child(module: str, function: str, kwargs: dict[str, Any], results: Any) -> None:
    try:
        report = getattr(importlib.import_module(f"bench.{module}"), function)(**kwargs)
        results.put(report)
    except BaseException as e:  # noqa: BLE001 - every failure must reach the parent
        results.put(f"{module}.{function}: {type(e).__name__}: {e}")
        raise


class _Group:
    """Child processes started together; :meth:`join` returns their reports or raises their failure."""

    def __init__(self) -> None:
        self._results = _ctx.Queue()
        self._processes: list[SpawnProcess] = []

    def start(self, module: str, function: str, **kwargs: Any) -> None:
        process = _ctx.Process(target=_child, args=(module, function, kwargs, self._results), daemon=True)
        process.start()
        self._processes.append(process)

    def join(self) -> list[Report]:
        reports: list[Report] = []
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        try:
            while len(reports) < len(self._processes):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._processes) - len(reports)} bench process(es) stuck")
                try:
                    result = self._results.get(timeout=min(remaining, 1.0))
                except Exception:  # noqa: BLE001 - queue.Empty: check the processes are still alive
                    dead = [p for p in self._processes if p.exitcode not in (None, 0)]
                    if dead:
                        raise RuntimeError(f"a bench process exited with {dead[0].exitcode}") from None
                    continue
                if isinstance(result, str):
                    raise RuntimeError(result)
                reports.append(result)
        finally:
            for process in self._processes:
                process.join(10)
                if process.is_alive():
                    process.kill()
                    process.join(5)
        return reports


def _tally(expected: int) -> Tally:
    return Tally(_ctx.Value("q", 0), _ctx.Event(), expected, _ctx.Value("q", 0))


def _one(module: str, function: str, **kwargs: Any) -> Report:
    group = _Group()
    group.start(module, function, **kwargs)
    return group.join()[0]


# -- measurements ---------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _measure(scenario: str, contender: str, queue_type: str, n: int, producer: Report | None,
             consumers: list[Report]) -> Measurement:
    reports = ([producer] if producer else []) + consumers
    started = producer.started if producer else min(r.started for r in consumers if r.messages)
    finished = max(r.finished for r in consumers) if consumers else producer.finished  # type: ignore[union-attr]
    moved = sum(r.messages for r in consumers) if consumers else n
    if moved < n:
        raise RuntimeError(f"{contender} {scenario} ({queue_type}): {moved} of {n} messages arrived")
    latencies = [x for r in consumers for x in r.latencies]
    return Measurement(scenario, contender, queue_type, n, moved, n / max(finished - started, 1e-9),
                       sum(r.cpu_s for r in reports) / n * 10_000, max(r.rss_mib for r in reports),
                       _percentile(latencies, 0.5), _percentile(latencies, 0.99))


class _Run:
    """One queue type's queues and scenarios, on one broker."""

    def __init__(self, broker: Broker, queue_type: str, options: Options) -> None:
        self.broker, self.url, self.queue_type, self.options = broker, broker.amqp_url, queue_type, options
        self.prefix = f"bench{uuid.uuid4().hex[:6]}"
        self.sluice_queue = sluice.topology(self.url, self.prefix, queue_type).work.name
        self.naive_n = max(50, int(options.messages * NAIVE_SHARE))

    def declare(self) -> None:
        with pika.BlockingConnection(pika.URLParameters(self.url)) as connection:
            channel = connection.channel()
            for name in ("naive", "tuned", "faststream", "celery"):
                channel.queue_declare(self.queue(name), durable=True, arguments={"x-queue-type": self.queue_type})
        self.broker.declare(sluice.topology(self.url, self.prefix, self.queue_type))  # as a consumer would

    def queue(self, name: str) -> str:
        return self.sluice_queue if name == "sluice" else f"{self.prefix}.{name}"

    def assert_empty(self, name: str) -> int:
        """Fail when the queue is not empty now that its consumers are gone (Celery: count and remove)."""
        queue = self.queue(name)
        depth = self.broker.depth(queue)
        if depth and name == "celery":  # acks missing after its shutdown: see bench.celery_consumer
            return len(self.broker.drain(queue))
        if depth:
            raise RuntimeError(f"{name} ({self.queue_type}): {depth} message(s) left in the queue")
        return 0

    def produce(self, contender: str, n: int, *, rate: float | None = None, into: str | None = None) -> Report:
        """Publish ``n`` messages with ``contender``'s producer into its queue (or ``into``'s, Celery's format there)."""
        if contender == "sluice":
            return _one("sluice", "produce", url=self.url, prefix=self.prefix, queue_type=self.queue_type, n=n,
                        rate=rate)
        queue = self.queue(into or contender)
        if contender == "tuned":
            payload = "celery" if into == "celery" else "event"
            return _one("tuned", "produce", url=self.url, exchange="", routing_key=queue, n=n, payload=payload)
        return _one(contender, "produce", url=self.url, exchange="", routing_key=queue, n=n, rate=rate)

    def start_consumer(self, group: _Group, contender: str, tally: Tally) -> None:
        if contender == "sluice":
            group.start("sluice", "consume", url=self.url, prefix=self.prefix, queue_type=self.queue_type,
                        tally=tally)
        elif contender in ("faststream", "celery"):
            group.start(f"{contender}_consumer", "consume", url=self.url, queue=self.queue(contender),
                        queue_type=self.queue_type, tally=tally)
        else:
            group.start(contender, "consume", url=self.url, queue=self.queue(contender), tally=tally)

    def consume(self, contender: str, n: int) -> tuple[list[Report], int]:
        """Reports of one consumer draining ``n`` messages, and how many came back to the queue."""
        group, tally = _Group(), _tally(n)
        self.start_consumer(group, contender, tally)
        reports = group.join()
        return reports, self.assert_empty(contender)

    def side_by_side(self) -> list[Measurement]:
        rows = []
        for contender in ("naive", "tuned", "sluice"):
            n = self.naive_n if contender == "naive" else self.options.messages
            producer = self.produce(contender, n)
            rows.append(_measure("producer", producer.contender, self.queue_type, n, producer, []))
            rows.append(_measure("consumer", producer.contender, self.queue_type, n, None, self.consume(contender, n)[0]))
        for contender in ("faststream", "celery"):
            n = self.options.messages
            self.produce("tuned", n, into=contender)
            consumers, requeued = self.consume(contender, n)
            rows.append(_measure("consumer", consumers[0].contender, self.queue_type, n, None, consumers))
            rows[-1].extra["requeued"] = requeued
        return rows

    def end_to_end(self, contender: str, n: int, *, consumers: int = 2, rate: float | None = None,
                   scenario: str = "end to end") -> Measurement:
        group, tally = _Group(), _tally(n)
        for _ in range(consumers):
            self.start_consumer(group, contender, tally)
        # The clock starts at the first publish, once every consumer is consuming.
        wait_for(lambda: tally.ready_count >= consumers, timeout=60, interval=0.01, what=f"{contender} consumers ready")
        producer = self.produce(contender, n, rate=rate)
        reports = group.join()
        self.assert_empty(contender)
        return _measure(scenario, producer.contender, self.queue_type, n, producer, reports)


def run(broker: Broker, options: Options, progress: Any = print) -> tuple[list[Measurement], Startup | None]:
    """Every scenario on every queue type, ``options.repeats`` times; the queues are deleted afterwards."""
    measurements: list[Measurement] = []
    for queue_type in options.queue_types:
        bench = _Run(broker, queue_type, options)
        try:
            bench.declare()
            for repeat in range(1, options.repeats + 1):
                progress(f"{queue_type} queues, repeat {repeat}/{options.repeats}: producers and consumers")
                measurements.extend(bench.side_by_side())
                progress(f"{queue_type} queues, repeat {repeat}/{options.repeats}: end to end, 1 producer + 2 consumers")
                for contender in ("naive", "tuned", "sluice"):
                    n = bench.naive_n if contender == "naive" else options.messages
                    measurements.append(bench.end_to_end(contender, n))
            if options.latency:
                best = statistics.median(m.rate for m in measurements if m.queue_type == queue_type
                                         and m.scenario == "end to end" and m.contender == "sluice")
                rate = best / 2
                n = max(200, min(int(rate * 5), options.messages))
                progress(f"{queue_type} queues: sluice latency at {rate:,.0f} msgs/s (half its maximum)")
                row = bench.end_to_end("sluice", n, rate=rate, scenario="latency")
                row.extra["target_rate"] = rate
                measurements.append(row)
        finally:
            broker.delete_prefix(bench.prefix)
        for m in measurements:
            m.extra.setdefault("prefix", bench.prefix)
    startup = _startup(broker, options) if options.startup else None
    return measurements, startup


def _startup(broker: Broker, options: Options) -> Startup:
    """Start ``python -m sluice_consumer`` (broker reachable), time its readiness, then drain a backlog."""
    queue_type = options.queue_types[0]
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    env = {"SLUICE_AMQP_URL": broker.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
           "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events", "SLUICE_TOPOLOGY_QUEUE_TYPE": queue_type,
           "SLUICE_SINK_KIND": "null", "SLUICE_LOG_LEVEL": "WARNING", "SLUICE_CONSUMER_PREFETCH": "500"}
    service = ServiceProcess("sluice_consumer", env, name="bench-consumer")
    try:
        started = time.perf_counter()
        service.start().wait_ready(timeout=60)
        ready_s = time.perf_counter() - started
        n = options.messages
        _one("tuned", "produce", url=broker.amqp_url, exchange=f"{prefix}.events", routing_key="sensor.reading", n=n)
        wait_for(lambda: service.metric("sluice_messages_processed_total", outcome="acked") >= n,
                 timeout=CHILD_TIMEOUT_S, interval=0.2, what="the consumer service drained the backlog")
        assert service.process is not None
        rss_mib = _peak_rss_mib(service.process.pid)
        service.terminate()
        return Startup(ready_s, rss_mib, n)
    finally:
        service.close()
        broker.delete_prefix(prefix)


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_count() -> int:
    """Cores this process may use (the table notes them)."""
    return len(os.sched_getaffinity(0))

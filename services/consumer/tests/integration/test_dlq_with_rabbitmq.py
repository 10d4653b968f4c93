"""``sluice dlq`` against a real RabbitMQ 4.x: stats and filters, peek that removes nothing, purge
that asks first, replay after a sink outage, and a replay killed half-way."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import pytest

from sluice_common.amqp import QueueClient
from sluice_common.config import AmqpSettings, TopologySettings
from sluice_common.deadletters import DeadLetterQueue
from sluice_common.topology import GroupTopology, group_topology
from sluice_testing.events import READING
from sluice_testing.processes import ServiceProcess
from sluice_testing.prometheus import PrometheusServer, skip_or_fail_without, static_scrape
from sluice_testing.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def topology(rabbitmq, prefix) -> GroupTopology:
    groups = group_topology(TopologySettings(prefix=prefix, exchange=f"{prefix}.events"), "default")
    rabbitmq.declare(groups)
    return groups


@pytest.fixture
def scraping():
    """``scraping("127.0.0.1:PORT")``: a real Prometheus scraping that target. Skips without one; fails in CI."""

    def start(target: str) -> PrometheusServer:
        skip_or_fail_without("prometheus")
        return PrometheusServer(static_scrape([target]))

    return start


@pytest.fixture
def dlq(rabbitmq, prefix):
    """Run ``sluice dlq ARGS`` as a process, as an operator would; returns the completed process."""

    def run(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SLUICE_AMQP_URL": rabbitmq.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
               "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events"}
        return subprocess.run([sys.executable, "-m", "sluice_common.cli", "dlq", *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)

    return run


def dead_letter(rabbitmq, topology: GroupTopology, event_id: str, *, reason: str, key: str, dead_at: str,
                body: bytes | None = None) -> None:
    """Put a dead letter in the group's queue with the headers the consumer would have set."""
    headers = {"x-sluice-reason": reason, "x-sluice-error": f"{reason} error", "x-sluice-dead-at": dead_at,
               "x-sluice-attempts": 3, "x-sluice-routing-key": key, "x-sluice-group": topology.group}
    rabbitmq.publish("", topology.dead.name, body or json.dumps(READING).encode(), message_id=event_id, headers=headers)


@pytest.fixture
def mixed(rabbitmq, topology):
    """Three invalid sensor readings and two download events that ran out of attempts."""
    for i in range(3):
        dead_letter(rabbitmq, topology, f"inv-{i}", reason="invalid", key="sensor.reading",
                    dead_at=f"2026-11-25T10:0{i}:00.000Z", body=b"\xff not json")
    for i in range(2):
        dead_letter(rabbitmq, topology, f"max-{i}", reason="max_attempts", key="download.completed",
                    dead_at=f"2026-11-25T11:0{i}:00.000Z")
    return topology


def test_stats_count_by_reason_with_oldest_and_newest(dlq, mixed):
    result = dlq("stats", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["depth"], stats["scanned"], stats["complete"]) == (5, 5, True)
    assert stats["by_reason"] == {
        "invalid": {"count": 3, "oldest": "2026-11-25T10:00:00Z", "newest": "2026-11-25T10:02:00Z"},
        "max_attempts": {"count": 2, "oldest": "2026-11-25T11:00:00Z", "newest": "2026-11-25T11:01:00Z"},
    }
    assert stats["by_routing_key"] == {"sensor.reading": 3, "download.completed": 2}
    # The human table says the same
    table = dlq("stats").stdout
    assert "5 dead letter(s), all scanned, 5 matching" in table
    assert any(line.split()[:2] == ["invalid", "3"] for line in table.splitlines())


def test_peek_and_list_filter_by_reason_and_routing_key_and_remove_nothing(dlq, mixed, rabbitmq):
    peeked = json.loads(dlq("peek", "--reason", "invalid", "-n", "2", "--json").stdout)
    assert [p["message_id"] for p in peeked] == ["inv-0", "inv-1"]
    assert peeked[0]["body_base64"] and peeked[0]["headers"]["x-sluice-error"] == "invalid error"
    listed = json.loads(dlq("list", "--routing-key", "download.*", "--json").stdout)
    assert [entry["message_id"] for entry in listed] == ["max-0", "max-1"]
    assert {entry["reason"] for entry in listed} == {"max_attempts"}
    assert json.loads(dlq("list", "--routing-key", "nothing.#", "--json").stdout) == []
    human = dlq("peek", "--routing-key", "download.completed").stdout
    assert "max-0" in human and '"sensor_id":"s-1"' in human.replace(" ", "")
    assert rabbitmq.depth(mixed.dead.name) == 5


def test_peek_and_list_show_the_letters_that_died_first_whatever_the_queue_order(dlq, rabbitmq, topology):
    # Queue order and death order disagree, as after a browse the broker requeued out of order
    for i in (2, 0, 1):
        dead_letter(rabbitmq, topology, f"late-{i}", reason="rejected", key="sensor.reading",
                    dead_at=f"2026-11-25T12:0{i}:00.000Z")
    dead_letter(rabbitmq, topology, "unstamped", reason="rejected", key="sensor.reading", dead_at="not a time")
    peeked = dlq("peek", "--json")
    assert peeked.returncode == 0, peeked.stderr
    assert [p["message_id"] for p in json.loads(peeked.stdout)] == ["late-0"]
    listed = json.loads(dlq("list", "--json").stdout)
    assert [entry["message_id"] for entry in listed] == ["late-0", "late-1", "late-2", "unstamped"]
    assert rabbitmq.depth(topology.dead.name) == 4


def test_looking_at_dead_letters_many_times_never_deletes_them(rabbitmq, mixed):
    # RabbitMQ 4 counts each look as a delivery; the dead-letter queue has no delivery limit
    with QueueClient(AmqpSettings(rabbitmq.amqp_url)) as client:
        queue = DeadLetterQueue(client, mixed)
        for _ in range(25):
            assert len(queue.peek(count=5)) == 5
        assert [d.message_id for d in queue.peek(count=5)] == ["inv-0", "inv-1", "inv-2", "max-0", "max-1"]
    assert rabbitmq.depth(mixed.dead.name) == 5


def test_purge_needs_yes_then_deletes_only_what_matches(dlq, mixed, rabbitmq):
    refused = dlq("purge", stdin="")
    assert refused.returncode == 2 and "without --yes" in refused.stderr
    assert rabbitmq.depth(mixed.dead.name) == 5
    assert json.loads(dlq("purge", "--reason", "invalid", "--yes", "--json").stdout)["purged"] == 3
    assert [m.message_id for m in rabbitmq.drain(mixed.dead.name)] == ["max-0", "max-1"]


def test_a_replay_that_cannot_be_routed_keeps_the_dead_letter_and_fails(dlq, rabbitmq, prefix, mixed):
    # Given a dead-letter queue whose group has no work queue (deleted by hand)
    rabbitmq.delete_queue(mixed.work.name)
    result = dlq("replay", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["failed"] == 1
    assert rabbitmq.depth(mixed.dead.name) == 5


def test_replay_after_a_sink_outage_delivers_every_dead_letter_exactly_once_more(dlq, rabbitmq, prefix, sink, scraping):
    # Given a consumer whose sink is down: every event runs out of its two attempts
    sink.status = 503
    env = {"SLUICE_AMQP_URL": rabbitmq.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
           "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events", "SLUICE_RETRY_DELAYS": "100ms",
           "SLUICE_RETRY_MAX_ATTEMPTS": "2", "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": sink.url}
    consumer = ServiceProcess("sluice_consumer", env).start()
    stack = contextlib.ExitStack()
    try:
        consumer.wait_ready()
        prometheus = stack.enter_context(scraping(f"127.0.0.1:{consumer.port}"))
        ids = [f"r-{i}" for i in range(30)]
        for event_id in ids:
            rabbitmq.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(), message_id=event_id)
        wait_for(lambda: rabbitmq.depth(f"{prefix}.default.dead") == 30, timeout=60, what="30 dead letters")
        assert not sink.delivered
        # When the sink is back and the dead letters are replayed
        sink.status = None
        result = dlq("replay", "--rate", "200", "--json")
        # Then each is delivered exactly once, the queue is empty, and the consumer counted the replays
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["replayed"] == 30
        wait_for(lambda: sink.delivered == set(ids), timeout=30, what="every replayed event delivered")
        assert all(sink.received[event_id] == 1 for event_id in ids)
        assert rabbitmq.depth(f"{prefix}.default.dead") == 0
        # And Prometheus, scraping the consumer, sees every replay acked on its first attempt
        wait_for(lambda: prometheus.value('sluice_dlq_replayed_total{outcome="acked"}') == 30, timeout=30,
                 interval=0.5, what="30 replays in Prometheus")
        assert prometheus.value('sluice_dlq_replayed_total{outcome="dead_lettered"}') == 0
    finally:
        stack.close()
        consumer.close()


def test_a_replay_killed_half_way_loses_nothing(dlq, rabbitmq, topology, prefix):
    # Given 150 dead letters and no consumer (replayed copies wait in the work queue)
    ids = {f"k-{i}" for i in range(150)}
    for event_id in sorted(ids):
        dead_letter(rabbitmq, topology, event_id, reason="max_attempts", key="sensor.reading",
                    dead_at="2026-11-25T10:00:00.000Z")
    env = {**os.environ, "SLUICE_AMQP_URL": rabbitmq.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
           "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events"}
    # When a slow replay is killed (SIGKILL) part-way through
    replay = subprocess.Popen([sys.executable, "-m", "sluice_common.cli", "dlq", "replay", "--rate", "50"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: rabbitmq.depth(topology.work.name) >= 20, timeout=30, what="a replay under way")
    finally:
        replay.kill()
        replay.wait(10)
    # Then, once the broker took back what the killed process held, every event is in the work queue
    # or still a dead letter, and at most one (confirmed, not yet acked at the kill) is in both
    wait_for(lambda: rabbitmq.depth(topology.work.name) + rabbitmq.depth(topology.dead.name) >= 150, timeout=20,
             what="the unacked dead letters back in their queue")
    in_work = [m.message_id for m in rabbitmq.drain(topology.work.name)]
    in_dead = [m.message_id for m in rabbitmq.drain(topology.dead.name)]
    assert 20 <= len(in_work) < 150
    assert set(in_work) | set(in_dead) == ids
    assert len(in_work) + len(in_dead) - len(ids) <= 1
    assert len(set(in_work)) == len(in_work)


def test_replay_goes_to_this_group_only_unless_sent_to_the_exchange(dlq, rabbitmq, topology, prefix):
    # Given a second group bound to the same events, and one dead letter in each of two runs
    audit = group_topology(TopologySettings(prefix=prefix, exchange=f"{prefix}.events"), "audit", ("sensor.*",))
    rabbitmq.declare(audit)
    dead_letter(rabbitmq, topology, "only-mine", reason="max_attempts", key="sensor.reading",
                dead_at="2026-11-25T10:00:00.000Z")
    # When it is replayed by default, then another one with --to-exchange
    assert dlq("replay").returncode == 0
    assert [m.message_id for m in rabbitmq.drain(topology.work.name)] == ["only-mine"]
    assert rabbitmq.depth(audit.work.name) == 0
    dead_letter(rabbitmq, topology, "everyone", reason="max_attempts", key="sensor.reading",
                dead_at="2026-11-25T10:00:00.000Z")
    assert dlq("replay", "--to-exchange").returncode == 0
    # Then the first reached this group only, the second every group bound to its routing key
    mine, theirs = rabbitmq.drain(topology.work.name), rabbitmq.drain(audit.work.name)
    assert [m.message_id for m in mine] == [m.message_id for m in theirs] == ["everyone"]
    assert mine[0].routing_key == "sensor.reading"
    assert mine[0].headers["x-sluice-replays"] == 1 and "x-sluice-attempts" not in mine[0].headers


def test_a_missing_dead_letter_queue_is_a_clear_error(dlq):
    result = dlq("stats", "--group", "nobody")
    assert result.returncode == 1
    assert "queue" in result.stderr and "nobody.dead' does not exist" in result.stderr

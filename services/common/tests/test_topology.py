from __future__ import annotations

from sluice_common.config import TopologySettings
from sluice_common.topology import format_delay, group_topology


def test_quorum_work_queue_dead_letters_at_least_once_with_a_delivery_limit():
    topology = group_topology(TopologySettings(), "audit", ("deployment.*",))
    args = topology.work.arguments
    assert topology.work.name == "sluice.audit"
    assert args["x-queue-type"] == "quorum"
    assert args["x-dead-letter-strategy"] == "at-least-once"
    assert args["x-overflow"] == "reject-publish"  # at-least-once dead-lettering requires it
    assert args["x-delivery-limit"] == 20
    assert (args["x-dead-letter-exchange"], args["x-dead-letter-routing-key"]) == ("", "sluice.audit.dead")


def test_retry_tiers_return_to_their_own_groups_work_queue_through_the_default_exchange():
    topology = group_topology(TopologySettings(retry_delays_s=(1.0, 30.0, 600.0)), "audit")
    assert [q.name for q in topology.retries] == ["sluice.audit.retry.1s", "sluice.audit.retry.30s", "sluice.audit.retry.10m"]
    for tier, ttl in zip(topology.retries, (1000, 30000, 600000), strict=True):
        assert tier.arguments["x-message-ttl"] == ttl
        assert tier.arguments["x-dead-letter-exchange"] == ""  # never the shared topic exchange
        assert tier.arguments["x-dead-letter-routing-key"] == "sluice.audit"


def test_attempts_beyond_the_tiers_stay_on_the_last_tier():
    topology = group_topology(TopologySettings(retry_delays_s=(1.0, 5.0)), "g")
    assert topology.retry_queue(1).name == "sluice.g.retry.1s"
    assert topology.retry_queue(2).name == "sluice.g.retry.5s"
    assert topology.retry_queue(7).name == "sluice.g.retry.5s"


def test_classic_queues_carry_no_quorum_only_arguments():
    topology = group_topology(TopologySettings(queue_type="classic"), "g")
    for queue in topology.queues:
        assert queue.arguments["x-queue-type"] == "classic"
        assert not {"x-delivery-limit", "x-dead-letter-strategy", "x-overflow"} & set(queue.arguments)


def test_dead_letter_queue_is_declared_before_the_queues_that_target_it():
    topology = group_topology(TopologySettings(), "g")
    assert topology.queues[0] is topology.dead
    assert topology.queues[-1] is topology.work


def test_delay_names_are_short_and_exact():
    assert [format_delay(s) for s in (0.25, 1, 90, 120, 7200)] == ["250ms", "1s", "90s", "2m", "2h"]


def test_quorum_dead_letter_queue_has_no_delivery_limit():
    # RabbitMQ 4 would otherwise drop a dead letter after 20 looks at it (each look is a delivery)
    topology = group_topology(TopologySettings(), "g")
    assert topology.dead.arguments == {"x-queue-type": "quorum", "x-delivery-limit": -1}


def test_on_rabbitmq_3_the_dead_letter_queue_has_no_delivery_limit_argument():
    # 3.x reads -1 as "no redelivery": a single look at a dead letter would drop it; no argument = no limit
    topology = group_topology(TopologySettings(), "g")
    assert topology.dead.arguments["x-delivery-limit"] == -1
    assert topology.for_broker("4.0.5") is topology
    assert topology.for_broker("") is topology
    old = topology.for_broker("3.13.7")
    assert "x-delivery-limit" not in old.dead.arguments
    assert old.work == topology.work and old.retries == topology.retries

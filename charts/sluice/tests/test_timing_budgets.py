"""Timing budgets between consumers, broker and Kubernetes are checked at template time; every
contradiction is reported, naming its values, in one failure."""

from __future__ import annotations

from chartlib import one, render, render_error


def pod_spec(docs, name):
    return one(docs, "Deployment", name)["spec"]["template"]["spec"]


def test_unacknowledged_time_above_the_consumer_timeout_fails(helm):
    # ceil(100 / 1) x 30 s = 3000 s > 1800 s
    error = render_error(
        helm,
        consumer__defaults__concurrency=1,
        consumer__defaults__maxProcessingSeconds=30,
        consumer__defaults__shutdownGraceSeconds=30,
    )
    assert "ceil(prefetch 100 / concurrency 1) x maxProcessingSeconds 30 = 3000s" in error
    assert "rabbitmq.consumerTimeoutSeconds (1800s)" in error


def test_external_broker_budget_uses_its_declared_consumer_timeout(helm):
    error = render_error(
        helm,
        rabbitmq__enabled=False,
        externalBroker__enabled=True,
        externalBroker__existingSecret="b",
        externalBroker__consumerTimeoutSeconds=60,
    )
    assert "externalBroker.consumerTimeoutSeconds (60s)" in error


def test_http_sink_timeout_above_the_processing_time_fails(helm):
    error = render_error(
        helm,
        consumer__defaults__sink__kind="http",
        consumer__defaults__sink__url="http://hook",
        consumer__defaults__sink__timeoutSeconds=60,
    )
    assert "sink.timeoutSeconds (60) is above maxProcessingSeconds (15)" in error


def test_drain_shorter_than_one_message_fails(helm):
    error = render_error(helm, consumer__defaults__shutdownGraceSeconds=5)
    assert "shutdownGraceSeconds (5) is below maxProcessingSeconds (15)" in error


def test_grace_period_override_below_drain_plus_margin_fails(helm):
    error = render_error(helm, consumer__defaults__terminationGracePeriodSeconds=25)
    assert (
        "terminationGracePeriodSeconds (25) is below shutdownGraceSeconds (20) + "
        "consumer.terminationGraceMarginSeconds (10)" in error
    )


def test_producer_grace_period_override_below_its_shutdown_fails(helm):
    error = render_error(helm, producer__terminationGracePeriodSeconds=8)
    assert (
        "producer.terminationGracePeriodSeconds (8) is below producer.preStopSleepSeconds (5) + "
        "producer.publish.timeoutSeconds (10)" in error
    )


def test_every_contradiction_is_reported_in_one_failure(helm):
    error = render_error(
        helm,
        consumer__defaults__shutdownGraceSeconds=5,
        producer__terminationGracePeriodSeconds=8,
        keda__enabled=True,
        rabbitmq__replicas=3,
        rabbitmq__peerDiscovery__enabled=False,
    )
    assert "sluice: 4 invalid value(s)" in error
    assert error.count("\n  - ") == 4


def test_termination_grace_period_is_derived_from_the_drain_time(helm):
    docs = render(helm, consumer__defaults__shutdownGraceSeconds=45)
    spec = pod_spec(docs, "sluice-consumer-default")
    assert spec["terminationGracePeriodSeconds"] == 45 + 10
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["SLUICE_CONSUMER_SHUTDOWN_GRACE_SECONDS"] == "45"


def test_producer_grace_period_covers_prestop_and_publish_timeout(helm):
    spec = pod_spec(render(helm), "sluice-producer")
    assert spec["terminationGracePeriodSeconds"] == 5 + 10 + 5
    assert spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 5


def test_broker_consumer_timeout_is_rendered_in_milliseconds(helm):
    config = one(render(helm, rabbitmq__consumerTimeoutSeconds=3600), "ConfigMap", "sluice-rabbitmq-config")
    assert "consumer_timeout = 3600000\n" in config["data"]["rabbitmq.conf"]

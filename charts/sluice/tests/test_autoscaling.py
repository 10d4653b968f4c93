"""One Deployment, autoscaler and PodDisruptionBudget per consumer group; replicas belong to the
autoscaler when there is one."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

from chartlib import NAMESPACE, of_kind, one, render, render_error

TWO_GROUPS = [{"name": "default"}, {"name": "audit", "bindingKeys": ["deployment.*"]}]


def consumer_deployments(docs):
    return [
        d for d in of_kind(docs, "Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "consumer"
    ]


def test_consumer_replicas_are_omitted_when_the_hpa_scales_the_group(helm):
    deployment = one(render(helm), "Deployment", "sluice-consumer-default")
    assert "replicas" not in deployment["spec"]


def test_consumer_replicas_are_omitted_when_keda_scales_the_group(helm):
    docs = render(helm, keda__enabled=True, consumer__defaults__autoscaling__enabled=False)
    assert "replicas" not in one(docs, "Deployment", "sluice-consumer-default")["spec"]


def test_consumer_replicas_are_set_when_autoscaling_is_off(helm):
    docs = render(helm, consumer__defaults__autoscaling__enabled=False, consumer__defaults__replicaCount=3)
    assert one(docs, "Deployment", "sluice-consumer-default")["spec"]["replicas"] == 3
    assert not of_kind(docs, "HorizontalPodAutoscaler")


def test_each_consumer_group_gets_its_own_deployment_hpa_pdb_and_service(helm):
    docs = render(helm, consumer__groups=TWO_GROUPS)
    for kind in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"):
        for group in ("default", "audit"):
            one(docs, kind, f"sluice-consumer-{group}")
    env = {
        e["name"]: e.get("value")
        for e in one(docs, "Deployment", "sluice-consumer-audit")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SLUICE_CONSUMER_GROUP"] == "audit"
    assert env["SLUICE_CONSUMER_BINDING_KEYS"] == "deployment.*"


def test_groups_keep_the_defaults_they_do_not_override(helm):
    docs = render(helm, consumer__groups=[{"name": "slow", "concurrency": 2}])
    env = {
        e["name"]: e.get("value")
        for e in one(docs, "Deployment", "sluice-consumer-slow")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert (env["SLUICE_CONSUMER_CONCURRENCY"], env["SLUICE_CONSUMER_PREFETCH"]) == ("2", "100")


def test_hpa_targets_cpu_of_its_group_and_the_consumer_requests_cpu(helm):
    docs = render(helm)
    hpa = one(docs, "HorizontalPodAutoscaler", "sluice-consumer-default")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "sluice-consumer-default"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    container = one(docs, "Deployment", "sluice-consumer-default")["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"]


def test_keda_scales_each_group_on_its_work_queue_with_credentials_from_the_secret(helm):
    docs = render(helm, keda__enabled=True, consumer__defaults__autoscaling__enabled=False, consumer__groups=TWO_GROUPS)
    assert not of_kind(docs, "HorizontalPodAutoscaler")
    auth = one(docs, "TriggerAuthentication", "sluice-rabbitmq-trigger")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": "sluice-rabbitmq", "key": "management-url"}
    ]
    for group in ("default", "audit"):
        scaled = one(docs, "ScaledObject", f"sluice-consumer-{group}")
        trigger = scaled["spec"]["triggers"][0]
        assert scaled["spec"]["scaleTargetRef"]["name"] == f"sluice-consumer-{group}"
        assert trigger["metadata"]["queueName"] == f"sluice.{group}"
        assert trigger["metadata"]["protocol"] == "http"  # counts unacknowledged messages too
        assert trigger["authenticationRef"]["name"] == "sluice-rabbitmq-trigger"


def test_the_scaler_urls_name_the_broker_by_its_namespace_qualified_service(helm):
    # KEDA's operator reads them from its own namespace (keda), where a bare Service name resolves to nothing
    secret = one(render(helm, keda__enabled=True, consumer__defaults__autoscaling__enabled=False), "Secret",
                 "sluice-rabbitmq")
    urls = {key: base64.b64decode(secret["data"][key]).decode() for key in ("management-url", "amqp-url")}
    host = f"sluice-rabbitmq.{NAMESPACE}.svc.cluster.local"
    assert urlsplit(urls["management-url"]).hostname == host and urlsplit(urls["management-url"]).port == 15672
    assert urlsplit(urls["amqp-url"]).hostname == host and urlsplit(urls["amqp-url"]).port == 5672


def test_the_autoscaling_behavior_reaches_the_cpu_hpa_and_keda_s_hpa(helm):
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 30}}
    hpa = one(render(helm, consumer__defaults__autoscaling__behavior=behavior), "HorizontalPodAutoscaler",
              "sluice-consumer-default")
    assert hpa["spec"]["behavior"] == behavior
    scaled = one(render(helm, keda__enabled=True, consumer__defaults__autoscaling__enabled=False,
                        consumer__defaults__autoscaling__behavior=behavior), "ScaledObject", "sluice-consumer-default")
    assert scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == behavior
    # Unset, both keep Kubernetes' defaults
    assert "behavior" not in one(render(helm), "HorizontalPodAutoscaler", "sluice-consumer-default")["spec"]
    assert "advanced" not in one(render(helm, keda__enabled=True, consumer__defaults__autoscaling__enabled=False),
                                 "ScaledObject", "sluice-consumer-default")["spec"]


def test_keda_amqp_protocol_uses_the_amqp_url(helm):
    docs = render(helm, keda__enabled=True, keda__protocol="amqp", consumer__defaults__autoscaling__enabled=False)
    assert (
        one(docs, "TriggerAuthentication", "sluice-rabbitmq-trigger")["spec"]["secretTargetRef"][0]["key"] == "amqp-url"
    )


def test_hpa_and_keda_together_fail_the_render(helm):
    error = render_error(helm, keda__enabled=True)
    assert "autoscaling.enabled (HPA) and keda.enabled are both true" in error

"""The bundled RabbitMQ: one node by default, a cluster with peer discovery at 3, or none at all
with an external broker."""

from __future__ import annotations

import pytest
from chartlib import of_kind, one, render, render_error

BROKER = "sluice-rabbitmq"


def env_of(docs, deployment):
    container = one(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def test_default_broker_is_one_node_on_a_persistent_volume(helm):
    docs = render(helm)
    sts = one(docs, "StatefulSet", BROKER)
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert not [d for d in of_kind(docs, "PodDisruptionBudget") if d["metadata"]["name"] == BROKER]


def test_three_replicas_form_a_cluster_through_kubernetes_peer_discovery(helm):
    docs = render(helm, rabbitmq__replicas=3)
    config = one(docs, "ConfigMap", "sluice-rabbitmq-config")["data"]
    assert "cluster_formation.peer_discovery_backend = k8s" in config["rabbitmq.conf"]
    assert "rabbitmq_peer_discovery_k8s" in config["enabled_plugins"]
    # RabbitMQ 4.1+ (peer discovery v2) joins pod -0 by its node name: no API access, no k8s.* keys
    assert "cluster_formation.k8s." not in config["rabbitmq.conf"]
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    env = {e["name"]: e.get("value") for e in one(docs, "StatefulSet", BROKER)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RABBITMQ_NODENAME"] == "rabbit@$(POD_NAME).sluice-rabbitmq-headless.$(POD_NAMESPACE).svc.cluster.local"
    assert one(docs, "PodDisruptionBudget", BROKER)["spec"]["maxUnavailable"] == 1
    headless = one(docs, "Service", "sluice-rabbitmq-headless")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    container = one(docs, "StatefulSet", BROKER)["spec"]["template"]["spec"]["containers"][0]
    assert "await_online_quorum_plus_one" in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])


def test_rabbitmq_4_0_peer_discovery_reads_the_endpoints_with_its_own_rbac(helm):
    docs = render(helm, rabbitmq__replicas=3, rabbitmq__image__tag="4.0.5-management")
    config = one(docs, "ConfigMap", "sluice-rabbitmq-config")["data"]["rabbitmq.conf"]
    assert "cluster_formation.k8s.service_name = sluice-rabbitmq-headless" in config
    assert "cluster_formation.k8s.address_type = hostname" in config
    role = one(docs, "Role", "sluice-rabbitmq-peer-discovery")
    assert {"resources": ["endpoints"], "verbs": ["get"], "apiGroups": [""]} in role["rules"]
    binding = one(docs, "RoleBinding", "sluice-rabbitmq-peer-discovery")
    assert binding["subjects"][0]["name"] == BROKER
    assert one(docs, "StatefulSet", BROKER)["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


def test_the_default_broker_image_is_a_pinned_tested_version(helm):
    image = one(render(helm), "StatefulSet", BROKER)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "rabbitmq:4.3.6-management"


def test_cluster_partition_handling_is_written_only_for_versions_on_mnesia(helm):
    def config(tag):
        return one(render(helm, rabbitmq__image__tag=tag), "ConfigMap", "sluice-rabbitmq-config")["data"]["rabbitmq.conf"]

    assert "cluster_partition_handling = pause_minority" in config("4.0.5-management")
    assert "cluster_partition_handling = pause_minority" in config("4.2.3-management")
    assert "cluster_partition_handling" not in config("4.3.6-management")  # Khepri only


def test_a_tag_without_a_version_needs_rabbitmq_version(helm):
    assert 'rabbitmq.image.tag "management" names no RabbitMQ version' in render_error(helm, rabbitmq__image__tag="management")
    docs = render(helm, rabbitmq__image__tag="management", rabbitmq__version="4.0.5")
    assert "cluster_formation.k8s.host" in one(docs, "ConfigMap", "sluice-rabbitmq-config")["data"]["rabbitmq.conf"]


@pytest.mark.parametrize(("limit", "available"), [("2Gi", 1717986918), ("1500M", 1200000000), ("512Mi", 429496729)])
def test_a_memory_limit_sets_the_memory_rabbitmq_counts_on(helm, limit, available):
    docs = render(helm, rabbitmq__resources__limits__memory=limit)
    config = one(docs, "ConfigMap", "sluice-rabbitmq-config")["data"]["rabbitmq.conf"]
    assert f"total_memory_available_override_value = {available}\n" in config
    assert "total_memory_available_override_value" not in one(render(helm), "ConfigMap", "sluice-rabbitmq-config")["data"]["rabbitmq.conf"]


def test_a_memory_limit_sluice_cannot_read_stops_the_release(helm):
    error = render_error(helm, rabbitmq__resources__limits__memory="lots")
    assert 'rabbitmq.resources.limits.memory "lots" is not a quantity' in error


def test_broker_enables_management_and_prometheus_and_exposes_per_queue_metrics_port(helm):
    docs = render(helm)
    plugins = one(docs, "ConfigMap", "sluice-rabbitmq-config")["data"]["enabled_plugins"]
    assert plugins.strip() == "[rabbitmq_management,rabbitmq_prometheus,rabbitmq_peer_discovery_k8s]."
    ports = {p["name"]: p["port"] for p in one(docs, "Service", BROKER)["spec"]["ports"]}
    assert ports == {"amqp": 5672, "management": 15672, "metrics": 15692}


def test_management_ui_stays_inside_the_cluster_by_default(helm):
    assert one(render(helm), "Service", BROKER)["spec"]["type"] == "ClusterIP"


def test_services_connect_to_the_bundled_broker_with_the_generated_credentials(helm):
    env = env_of(render(helm), "sluice-consumer-default")
    assert env["SLUICE_AMQP_URL"]["value"] == "amqp://sluice-rabbitmq:5672/%2F"
    assert env["SLUICE_AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": BROKER, "key": "password"}


def test_external_broker_replaces_the_bundled_one(helm):
    docs = render(helm, rabbitmq__enabled=False, externalBroker__enabled=True, externalBroker__existingSecret="mq")
    assert not [d for d in docs if d["metadata"]["name"].startswith(BROKER)]
    env = env_of(docs, "sluice-producer")
    assert env["SLUICE_AMQP_URL"]["valueFrom"]["secretKeyRef"] == {"name": "mq", "key": "url"}
    assert "SLUICE_AMQP_PASSWORD" not in env


def test_network_policies_are_opt_in(helm):
    assert not of_kind(render(helm), "NetworkPolicy")


def test_network_policy_lets_only_this_release_reach_amqp_and_monitoring_scrape_metrics(helm):
    policy = one(render(helm, networkPolicy__enabled=True), "NetworkPolicy", BROKER)
    by_port = {}
    for rule in policy["spec"]["ingress"]:
        for port in rule["ports"]:
            by_port.setdefault(port["port"], []).extend(rule["from"])
    release = {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "sluice", "app.kubernetes.io/instance": "sluice"}}
    }
    keda = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}
    assert by_port["amqp"] == [release, keda]
    assert by_port["metrics"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]

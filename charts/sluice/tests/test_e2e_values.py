"""The values the kind end-to-end suite installs the chart with (k8s-tests/kind/) render, and wire what the suite relies on."""

from __future__ import annotations

import kubernetes_validate
from chartlib import REPO, of_kind, one, render

KIND_DIR = REPO / "k8s-tests" / "kind"
E2E = KIND_DIR / "values-e2e.yaml"
KEDA = KIND_DIR / "values-keda.yaml"


def env_of(deployment: dict) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_the_e2e_values_render_valid_objects_that_deliver_to_the_suites_sink(helm):
    docs = render(helm, E2E, producer__image__tag="dev", consumer__image__tag="dev")
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)
    consumer = one(docs, "Deployment", "sluice-consumer-default")
    env = env_of(consumer)
    assert (env["SLUICE_SINK_KIND"], env["SLUICE_SINK_URL"]) == ("http", "http://e2e-sink:9000/events")
    assert env["SLUICE_RETRY_DELAYS"] == "1s,2s,5s"
    # No autoscaler: the suite scales the Deployment itself
    assert consumer["spec"]["replicas"] == 2
    assert not of_kind(docs, "HorizontalPodAutoscaler") and not of_kind(docs, "ScaledObject")
    # Images loaded with `kind load` are never pulled
    assert {c["imagePullPolicy"] for d in of_kind(docs, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]} == {"Never"}


def test_with_keda_the_group_scales_on_its_queue_between_one_and_four_pods(helm):
    docs = render(helm, E2E, KEDA)
    scaled = one(docs, "ScaledObject", "sluice-consumer-default")
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 4)
    assert scaled["spec"]["triggers"][0]["metadata"]["queueName"] == "sluice.default"
    assert "replicas" not in one(docs, "Deployment", "sluice-consumer-default")["spec"]

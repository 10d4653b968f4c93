"""The webhook sink of the kind suite as Kubernetes objects: ``sluice_testing/flaky_sink.py`` in a
ConfigMap, run by the consumer image's Python (the standard library is all it needs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SINK", "SINK_PORT", "SINK_SCRIPT", "sink_manifests"]

SINK_SCRIPT = Path(__file__).resolve().parents[2] / "testing" / "sluice_testing" / "flaky_sink.py"
#: Name of the sink's ConfigMap, Deployment and Service (not part of the release).
SINK = "e2e-sink"
SINK_PORT = 9000


def sink_manifests(image: str) -> list[dict[str, Any]]:
    """The sink's ConfigMap (the script), Deployment (run by the consumer image's Python) and Service."""
    labels = {"app.kubernetes.io/name": SINK, "app.kubernetes.io/part-of": "sluice-e2e"}
    restricted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                  "capabilities": {"drop": ["ALL"]}}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": SINK, "labels": labels},
         "data": {"flaky_sink.py": SINK_SCRIPT.read_text()}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": SINK, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels},
             "spec": {"automountServiceAccountToken": False,
                      "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                      "containers": [{
                          "name": "sink", "image": image, "imagePullPolicy": "IfNotPresent",
                          "command": ["python3", "/sink/flaky_sink.py", "--host", "0.0.0.0", "--port", str(SINK_PORT),
                                      "--fail-ratio", "0"],
                          "ports": [{"name": "http", "containerPort": SINK_PORT}],
                          "readinessProbe": {"httpGet": {"path": "/state", "port": SINK_PORT}, "periodSeconds": 2},
                          "securityContext": restricted,
                          "volumeMounts": [{"name": "script", "mountPath": "/sink", "readOnly": True}]}],
                      "volumes": [{"name": "script", "configMap": {"name": SINK}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SINK, "labels": labels},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": SINK_PORT, "targetPort": SINK_PORT}]}},
    ]

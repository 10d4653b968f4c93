"""What the kind deployment installs where: settings from the environment, and the pure logic
around them (the context guard, the helm command line, what an uninstall leaves). No cluster needed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["HELM_TIMEOUT", "KIND_DIR", "KindSettings", "KindUnavailable", "check_context", "helm_install_args",
           "leftovers"]

REPO = Path(__file__).resolve().parents[2]
KIND_DIR = REPO / "k8s-tests" / "kind"
#: How long helm may wait for an install or upgrade; the first one pulls RabbitMQ.
HELM_TIMEOUT = "10m"


class KindUnavailable(Exception):  # noqa: N818 - a reason to skip, not a failure of ours
    """Raised when there is no reachable kind cluster (or tool) to run the suite on."""


@dataclass(frozen=True)
class KindSettings:
    """Where and what to deploy; every field has an environment variable (see :meth:`from_env`)."""

    cluster: str = "sluice-e2e"
    namespace: str = "sluice-e2e"
    release: str = "sluice"
    image_tag: str = "dev"
    upgrade_tag: str = "dev-next"
    helm: str = "helm"
    kubectl: str = "kubectl"
    keep: bool = False
    #: ``repository:tag`` of a broker image already in the nodes (``kind load``) instead of the
    #: chart's official one: the RabbitMQ 4.3.6 test image where no registry is reachable.
    broker_image: str = ""
    values_files: tuple[Path, ...] = field(default=(KIND_DIR / "values-e2e.yaml",))

    @property
    def context(self) -> str:
        return f"kind-{self.cluster}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> KindSettings:
        """Read ``KIND_CLUSTER``, ``SLUICE_E2E_NAMESPACE``, ``SLUICE_E2E_RELEASE``, ``IMAGE_TAG``,
        ``SLUICE_E2E_UPGRADE_TAG``, ``HELM``, ``KUBECTL``, ``SLUICE_E2E_KEEP`` and ``SLUICE_E2E_BROKER_IMAGE``."""
        env = dict(os.environ if environ is None else environ)
        tag = env.get("IMAGE_TAG", "dev")
        return cls(cluster=env.get("KIND_CLUSTER", "sluice-e2e"), namespace=env.get("SLUICE_E2E_NAMESPACE", "sluice-e2e"),
                   release=env.get("SLUICE_E2E_RELEASE", "sluice"), image_tag=tag,
                   upgrade_tag=env.get("SLUICE_E2E_UPGRADE_TAG", f"{tag}-next"), helm=env.get("HELM", "helm"),
                   kubectl=env.get("KUBECTL", "kubectl"), keep=env.get("SLUICE_E2E_KEEP", "") == "1",
                   broker_image=env.get("SLUICE_E2E_BROKER_IMAGE", ""))


def check_context(contexts: Iterable[str], settings: KindSettings) -> None:
    """Make sure the kubeconfig has the suite's kind context; every call then names it explicitly,
    whatever the current context is, so no other cluster is ever touched.

    Raises:
        KindUnavailable: no ``kind-<cluster>`` among ``contexts``.
    """
    if settings.context not in set(contexts):
        raise KindUnavailable(f"no kube context {settings.context!r}; the suite only runs on its own kind cluster "
                              f"(`make kind-up KIND_CLUSTER={settings.cluster}`)")


def helm_install_args(settings: KindSettings, *, tag: str, keda: bool, cpu_hpa: bool = False,
                      monitoring: bool = False) -> list[str]:
    """The ``helm upgrade --install --wait`` command line that installs (or upgrades to) ``tag``.

    ``keda`` scales the consumers with KEDA (``values-keda.yaml``); otherwise ``cpu_hpa`` turns the
    chart's CPU HorizontalPodAutoscaler on (``values-hpa.yaml``). ``monitoring`` adds the chart's
    ServiceMonitors and PrometheusRule for the cluster's prometheus-operator (``values-monitoring.yaml``).
    """
    extra = ["values-keda.yaml"] if keda else ["values-hpa.yaml"] if cpu_hpa else []
    extra += ["values-monitoring.yaml"] if monitoring else []
    values = [*settings.values_files, *(KIND_DIR / name for name in extra)]
    return [settings.helm, "upgrade", "--install", settings.release, str(REPO / "charts" / "sluice"),
            "--kube-context", settings.context, "--namespace", settings.namespace, "--create-namespace",
            *(arg for path in values for arg in ("--values", str(path))),
            "--set", f"producer.image.tag={tag}", "--set", f"consumer.image.tag={tag}",
            *_broker_image_args(settings.broker_image),
            "--wait", "--timeout", HELM_TIMEOUT]


def _broker_image_args(image: str) -> list[str]:
    if not image:
        return []
    repository, separator, tag = image.rpartition(":")
    if not separator or not repository or "/" in tag:
        raise ValueError(f"SLUICE_E2E_BROKER_IMAGE must be repository:tag, not {image!r}")
    return ["--set", f"rabbitmq.image.repository={repository}", "--set", f"rabbitmq.image.tag={tag}",
            "--set", "rabbitmq.image.pullPolicy=Never"]


def leftovers(objects: Iterable[tuple[str, str, dict[str, str]]], release: str) -> list[str]:
    """``Kind/name`` of the objects (kind, name, labels) that belong to ``release``, sorted."""
    return sorted(f"{kind}/{name}" for kind, name, labels in objects
                  if labels.get("app.kubernetes.io/instance") == release)

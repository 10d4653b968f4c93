"""The deployment on a kind cluster: the chart installed with helm, driven with the Kubernetes client.

``make kind-e2e`` (or ``make kind-up images kind-load e2e``) creates the cluster, builds the images,
loads them with ``kind load docker-image`` and runs the scenarios against :class:`KindDeployment`, which:

- installs the suite's webhook sink (:mod:`sluice_e2e.sink_pod`: ``flaky_sink.py`` from a ConfigMap, run by the
  consumer image's Python) and the chart (``helm upgrade --install --wait`` with
  ``k8s-tests/kind/values-e2e.yaml``, plus ``values-keda.yaml`` when KEDA's CRDs are present and
  ``values-monitoring.yaml`` where the suite's Prometheus runs; ``values-hpa.yaml`` for the CPU
  autoscaling scenario, ``values-broker-cluster.yaml`` for a 3-node broker in a namespace of its own);
- reaches the ingest, the sink, RabbitMQ and Prometheus through ``kubectl port-forward``, the
  consumers' ``/metrics`` through the API server's pod proxy, and ``rabbitmqctl`` through ``kubectl exec``;
- kills pods (a broker only once its queues are registered on disk), restarts the broker's pod on
  its PVC, scales (KEDA's ``paused-replicas``, or the Deployment's scale), turns the CPU HPA on,
  upgrades to a second image tag, runs ``helm test`` and ``helm uninstall``;
- runs chaos rounds on its pods (:mod:`sluice_e2e.chaos`).

It needs the kube context ``kind-<cluster>`` and names it in every call, whatever the current
context is: the scenarios kill pods, and only ever in the suite's own cluster.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import requests

from sluice_e2e.deployment import GROUP, DeadLetter, Deployment, NotApplicable, SinkClient
from sluice_e2e.kind_settings import KindSettings, KindUnavailable, check_context, helm_install_args, leftovers
from sluice_e2e.portforward import PortForward
from sluice_e2e.sink_pod import SINK, SINK_PORT, sink_manifests
from sluice_testing.broker import Broker
from sluice_testing.processes import sample_value
from sluice_testing.waiting import wait_for

if TYPE_CHECKING:
    from kubernetes.client import V1DeploymentStatus, V1ObjectMeta, V1Pod

    from sluice_testing.chaos.base import ChaosRig

__all__ = ["KindDeployment"]

#: Seconds a pod gets to be replaced and ready.
POD_DEADLINE = 300.0
#: kind's default service range (k8s-tests/kind/cluster.yaml sets none; the Makefile's KIND_SERVICE_SUBNET).
SERVICE_SUBNET = "10.96.0.0/16"
#: The Prometheus that scripts/kind-addons/prometheus-operator.sh runs (k8s-tests/kind/prometheus/).
PROMETHEUS, PROMETHEUS_NAMESPACE = "sluice", "monitoring"
#: KEDA holds a ScaledObject's target at this many replicas while the annotation is set.
KEDA_PAUSE = "autoscaling.keda.sh/paused-replicas"


def _run(command: Sequence[str], *, timeout: float = 900) -> str:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed ({result.returncode}):\n{result.stdout[-2000:]}"
                           f"\n{result.stderr[-3000:]}")
    return result.stdout


class KindDeployment(Deployment):
    """The chart on the kind cluster ``settings.cluster``; see the module docstring."""

    name = "kind"

    def __init__(self, settings: KindSettings) -> None:
        try:
            from kubernetes import client, config
        except ImportError as e:
            raise KindUnavailable(f"the kubernetes client is not installed ({e}); run `make venv`") from None
        for tool in (settings.helm, settings.kubectl):
            if shutil.which(tool) is None:
                raise KindUnavailable(f"{tool!r} is not on PATH; `make kind-up` says how to install it")
        try:
            contexts, _ = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        except Exception as e:  # noqa: BLE001 - no kubeconfig, or an unreadable one
            raise KindUnavailable(f"no kubeconfig ({e})") from None
        check_context((c["name"] for c in contexts), settings)
        self.api_client = config.new_client_from_config(context=settings.context)  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.settings = settings
        try:
            self.core.list_namespace(limit=1, _request_timeout=10)
        except Exception as e:  # noqa: BLE001 - any reason the API server does not answer
            raise KindUnavailable(f"the API server of {settings.context} does not answer ({e})") from None
        self.keda = self._has_crd("scaledobjects.keda.sh")
        self.resource_metrics = self._api_available("v1beta1.metrics.k8s.io")
        # The chart's ServiceMonitors and PrometheusRule, where prometheus-operator runs the suite's Prometheus.
        self.monitoring = self._has_crd("servicemonitors.monitoring.coreos.com") and self._prometheus_exists()
        self._cpu_hpa = False
        self.ns = settings.namespace
        release = settings.release
        # The chart's names: <fullname>-<component>, and fullname is the release when it contains "sluice".
        full = release if "sluice" in release else f"{release}-sluice"
        self.producer_service, self.broker_service = f"{full}-producer", f"{full}-rabbitmq"
        self.producer_deployment = f"{full}-producer"
        self.consumer_deployment, self.broker_pod = f"{full}-consumer-{GROUP}", f"{full}-rabbitmq-0"
        self.consumer_selector = (f"app.kubernetes.io/instance={release},app.kubernetes.io/component=consumer,"
                                  f"sluice/consumer-group={GROUP}")
        self.broker_selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=rabbitmq"
        #: The image tag installed now: image_tag, and upgrade_tag after upgrade().
        self._tag = settings.image_tag
        self._forwards: dict[str, PortForward] = {}
        self._installed = False

    @classmethod
    def from_env(cls) -> KindDeployment:
        return cls(KindSettings.from_env())

    # -- lifecycle -------------------------------------------------------------------------------

    def install(self) -> KindDeployment:
        """Install the sink and the chart, wait until every pod is ready, open the port-forwards."""
        self._install_sink()
        _run(helm_install_args(self.settings, tag=self.settings.image_tag, keda=self.keda, monitoring=self.monitoring))
        self._installed = True
        self._wait_consumers_ready()
        return self

    def close(self) -> None:
        """Close the port-forwards; uninstall and delete the namespace unless ``SLUICE_E2E_KEEP=1``."""
        for forward in self._forwards.values():
            forward.close()
        if self.settings.keep:
            return
        if self._installed:
            self._helm("uninstall", self.settings.release, "--wait")
        self.core.delete_namespace(self.ns)

    def _helm(self, *args: str) -> str:
        return _run([self.settings.helm, *args, "--kube-context", self.settings.context, "--namespace", self.ns])

    def _has_crd(self, name: str) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.ApiextensionsV1Api(self.api_client).read_custom_resource_definition(name)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def _api_available(self, name: str) -> bool:
        """Whether the APIService ``name`` (an aggregated API, such as metrics-server's) is registered and available."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            service = client.ApiregistrationV1Api(self.api_client).read_api_service(name)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        conditions = service.status.conditions if service.status else None
        return any(c.type == "Available" and c.status == "True" for c in conditions or [])

    def _prometheus_exists(self) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", PROMETHEUS_NAMESPACE, "prometheuses",
                                                     PROMETHEUS)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def _install_sink(self) -> None:
        from kubernetes import client, utils
        from kubernetes.client.exceptions import ApiException

        def not_terminating() -> bool:
            try:
                namespace = self.core.read_namespace(self.ns)
            except ApiException as e:
                if e.status == 404:
                    return True
                raise
            return namespace.status is None or namespace.status.phase != "Terminating"

        # The namespace of an earlier run may still be going away (close() does not wait for it).
        wait_for(not_terminating, timeout=POD_DEADLINE, interval=2, what=f"namespace {self.ns} of an earlier run deleted")
        try:
            self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.ns)))
        except ApiException as e:
            if e.status != 409:  # already there
                raise
        for manifest in sink_manifests(f"sluice/consumer:{self.settings.image_tag}"):
            try:
                utils.create_from_dict(self.api_client, manifest, namespace=self.ns)  # type: ignore[no-untyped-call]
            except utils.FailToCreateError as e:
                if any(getattr(x, "status", None) != 409 for x in e.api_exceptions):
                    raise
        wait_for(lambda: self._ready_replicas(SINK) >= 1, timeout=POD_DEADLINE, interval=1, what="the e2e sink ready")

    # -- access paths ----------------------------------------------------------------------------

    def _forward(self, target: str, port: int, *, namespace: str | None = None) -> int:
        key = f"{target}:{port}" if namespace is None else f"{namespace}/{target}:{port}"
        if key in self._forwards:
            return self._forwards[key].local_port
        forward = PortForward(self.settings.kubectl, namespace or self.ns, target, port, context=self.settings.context)
        local_port = forward.local_port  # kept (and restarted by reconnect()) only once it started
        self._forwards[key] = forward
        return local_port

    def reconnect(self) -> None:
        for forward in self._forwards.values():
            forward.restart()

    def broker(self) -> Broker:
        """The broker, reached through port-forwards (AMQP, management) and ``kubectl exec`` (rabbitmqctl)."""
        return self._broker()

    def _broker(self, pod: str | None = None) -> Broker:
        # The chart's generated Secret has the broker's name (rabbitmq.auth.existingSecret is not used here).
        secret = self.core.read_namespaced_secret(self.broker_service, self.ns)
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        user, password = (urllib.parse.quote(data[key], safe="") for key in ("username", "password"))
        amqp, management = self._forward(f"svc/{self.broker_service}", 5672), self._forward(f"svc/{self.broker_service}", 15672)
        return Broker(f"amqp://{user}:{password}@127.0.0.1:{amqp}/%2F", f"http://{user}:{password}@127.0.0.1:{management}",
                      name=None, exec_prefix=self._exec(pod or self.broker_pod))

    def _exec(self, pod: str) -> list[str]:
        """The command that runs a program in the RabbitMQ container of broker pod ``pod``."""
        return [self.settings.kubectl, "--context", self.settings.context, "--namespace", self.ns, "exec", pod,
                "--container", "rabbitmq", "--"]

    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self._forward(f'svc/{self.producer_service}', 8080)}/events"

    @property
    def sink(self) -> SinkClient:
        return SinkClient(f"http://127.0.0.1:{self._forward(f'svc/{SINK}', SINK_PORT)}")

    # -- Deployment ------------------------------------------------------------------------------

    def publish_raw(self, routing_key: str, body: bytes, *, message_id: str,
                    content_type: str | None = "application/json") -> None:
        self._broker().publish("sluice.events", routing_key, body, message_id=message_id, content_type=content_type)

    def queue_depth(self, suffix: str = "") -> int:
        return self._broker().depth(f"sluice.{GROUP}" + (f".{suffix}" if suffix else ""))

    def dead_letters(self) -> list[DeadLetter]:
        return [DeadLetter(m.message_id, str(m.headers.get("x-sluice-reason", "")), str(m.headers.get("x-sluice-error", "")))
                for m in self._broker().drain(f"sluice.{GROUP}.dead")]

    def consumer_metric(self, name: str, **labels: str) -> float:
        return sum(self._pod_metric(pod, name, **labels) for pod in self.consumer_pods())

    def _pod_metric(self, pod: str, name: str, **labels: str) -> float:
        # Through the API server's pod proxy: no port-forward per pod.
        text = self.core.connect_get_namespaced_pod_proxy_with_path(f"{pod}:8080", self.ns, "metrics")
        return sample_value(str(text), name, **labels)

    def consumer_pods(self, *, ready: bool = True) -> list[str]:
        """The consumer pods that are ready and not being deleted (``ready=False``: every one, terminating included)."""
        pods = self.core.list_namespaced_pod(self.ns, label_selector=self.consumer_selector).items
        return [_meta(p).name or "" for p in pods if not ready or (_meta(p).deletion_timestamp is None and _pod_ready(p))]

    def consumer_replicas(self) -> int:
        return len(self.consumer_pods())

    def _deployment_status(self, deployment: str) -> V1DeploymentStatus:
        from kubernetes import client

        return self.apps.read_namespaced_deployment(deployment, self.ns).status or client.V1DeploymentStatus()

    def _ready_replicas(self, deployment: str) -> int:
        return int(self._deployment_status(deployment).ready_replicas or 0)

    def _wait_consumers_ready(self) -> None:
        def settled() -> bool:
            status = self._deployment_status(self.consumer_deployment)
            return bool(status.replicas) and status.ready_replicas == status.replicas == status.updated_replicas

        wait_for(settled, timeout=POD_DEADLINE, interval=1, what="every consumer pod ready")

    def set_sink(self, *, status: int | None = None, delay_s: float = 0.0) -> None:
        self.sink.control(status=status, delay_s=delay_s)

    def kill_consumer(self) -> int:
        held = {pod: self._pod_metric(pod, "sluice_messages_inflight") for pod in self.consumer_pods()}
        victim = max(held, key=lambda pod: held[pod])
        self.replace_consumer_pod(victim, force=True)
        return int(held[victim])

    def replace_consumer_pod(self, pod: str, *, force: bool) -> int | None:
        """Delete consumer pod ``pod`` and wait until the Deployment's replacement is ready.

        Parameters:
            force: grace period 0: the kubelet kills the container at once, no SIGTERM drain.
                Otherwise the pod's own grace period applies: SIGTERM, and the consumer drains.

        Returns:
            The exit status of the consumer's container, as the kubelet last reported it before the
            pod was gone (None when it reported none, as for a forced deletion).
        """
        from kubernetes import watch

        before = len(self.consumer_pods())
        version = _meta(self.core.read_namespaced_pod(pod, self.ns)).resource_version
        self.core.delete_namespaced_pod(pod, self.ns, grace_period_seconds=0 if force else None)
        status: int | None = None
        if not force:
            # Watch the pod from before its deletion until it is gone: the kubelet reports the
            # container's exit status in between, and the pod's final state carries it too.
            gone = False
            events = watch.Watch().stream(  # type: ignore[no-untyped-call]
                self.core.list_namespaced_pod, self.ns, field_selector=f"metadata.name={pod}", resource_version=version,
                timeout_seconds=int(POD_DEADLINE))
            for event in events:
                reported = _exit_status(event["object"], "consumer")
                status = status if reported is None else reported
                if event["type"] == "DELETED":
                    gone = True
                    break
            if not gone:
                raise TimeoutError(f"consumer pod {pod} not gone within {POD_DEADLINE:g}s of its deletion")
        wait_for(lambda: pod not in (ready := self.consumer_pods()) and len(ready) >= before, timeout=POD_DEADLINE,
                 interval=0.5, what=f"{pod} replaced and the replacement ready")
        self._wait_consumers_ready()
        return status

    def container_env(self, deployment: str) -> dict[str, str]:
        """The plain environment variables (``value``, not ``valueFrom``) of Deployment ``deployment``'s first container."""
        spec = self.apps.read_namespaced_deployment(deployment, self.ns).spec
        containers = spec.template.spec.containers if spec and spec.template.spec else []
        return {e.name: e.value for e in containers[0].env or [] if e.value is not None} if containers else {}

    def restart_broker(self, *, hard: bool = False) -> float:
        volume = self._broker_volume()
        # hard: one second, then SIGKILL; RabbitMQ cannot shut down in that time. Otherwise its
        # preStop hook and grace period apply, as in a node drain. Either way the StatefulSet
        # recreates the pod on the same PVC.
        old, fault_at = self.delete_broker_pod(self.broker_pod, hard=hard)
        self.wait_broker_pod_replaced(self.broker_pod, old)
        assert self._broker_volume() == volume, f"the broker came back on another volume: {volume} before"
        return fault_at

    # -- the broker's nodes: the StatefulSet's pods (rabbitmq.replicas) --------------------------

    def broker_pods(self) -> list[str]:
        """The broker pods that are ready and not being deleted, by name."""
        pods = self.core.list_namespaced_pod(self.ns, label_selector=self.broker_selector).items
        return sorted(_meta(p).name or "" for p in pods if _meta(p).deletion_timestamp is None and _pod_ready(p))

    def _ctl_json(self, *args: str, pod: str | None = None) -> Any:
        """``rabbitmqctl ARGS`` (JSON) in ``pod``, by default the first broker pod that is ready."""
        where = pod or self.broker_pods()[0]
        return json.loads(_run([*self._exec(where), "rabbitmqctl", "-q", "--formatter", "json", *args], timeout=60) or "null")

    def broker_nodes(self, *, pod: str | None = None) -> list[str]:
        """The running nodes of the RabbitMQ cluster, as ``pod`` (by default the first ready one) sees them."""
        return sorted(self._ctl_json("cluster_status", pod=pod)["running_nodes"])

    def queue_replicas(self, queue: str) -> tuple[str, list[str]]:
        """Quorum queue ``queue``'s leader node and member nodes, as a ready broker pod sees them;
        ``("", [])`` while the broker does not list it (as during the election of a new leader)."""
        rows = self._ctl_json("list_queues", "name", "leader", "members")
        row = next((r for r in rows if r["name"] == queue), None)
        return (str(row["leader"]), sorted(row["members"])) if row else ("", [])

    def delete_broker_pod(self, pod: str, *, hard: bool) -> tuple[str, float]:
        """Delete broker pod ``pod`` (``hard``: SIGKILL after 1 s); returns its uid and the moment of the fault.

        A pod is killed only once it holds every queue's registration on disk, as Broker.restart does:
        one killed sooner can lose a queue (tests/chaos/test_queue_lost.py).
        """
        old = _meta(self.core.read_namespaced_pod(pod, self.ns)).uid or ""
        if hard:
            self._broker(pod).wait_durable("sluice.")
        fault_at = time.monotonic()
        # 1 s, not 0: a grace period of 0 is a forced deletion, which lets the StatefulSet start the
        # new pod before the old container is gone.
        self.core.delete_namespaced_pod(pod, self.ns, grace_period_seconds=1 if hard else None)
        return old, fault_at

    def wait_broker_pod_replaced(self, pod: str, old_uid: str) -> None:
        """Wait until the StatefulSet replaced broker pod ``pod`` (uid ``old_uid``) and it is ready; reopen the forwards."""
        def replaced_and_ready() -> bool:
            from kubernetes.client.exceptions import ApiException

            try:
                current = self.core.read_namespaced_pod(pod, self.ns)
            except ApiException:
                return False
            return _meta(current).uid != old_uid and _pod_ready(current)

        wait_for(replaced_and_ready, timeout=POD_DEADLINE, interval=1, what=f"broker pod {pod} replaced and ready")
        for key, forward in self._forwards.items():
            if key.startswith(f"svc/{self.broker_service}:"):
                forward.restart()

    def _broker_volume(self) -> tuple[str, str]:
        """The broker pod's PersistentVolumeClaim (``name (uid)``) and the PersistentVolume bound to it."""
        spec = self.core.read_namespaced_pod(self.broker_pod, self.ns).spec
        volumes = spec.volumes if spec else None
        claims = [v.persistent_volume_claim.claim_name for v in volumes or [] if v.persistent_volume_claim]
        assert len(claims) == 1, f"{self.broker_pod} mounts {claims}, not one data claim"
        claim = self.core.read_namespaced_persistent_volume_claim(claims[0], self.ns)
        return f"{claims[0]} ({_meta(claim).uid})", str(claim.spec.volume_name if claim.spec else None)

    def scale_consumers(self, replicas: int) -> None:
        if self.keda:
            # KEDA owns the replica count: pause it at the wanted number (reset() resumes it).
            self._annotate_scaled_object({KEDA_PAUSE: str(replicas)})
        else:
            self.apps.patch_namespaced_deployment_scale(self.consumer_deployment, self.ns, {"spec": {"replicas": replicas}})
        wait_for(lambda: self.consumer_replicas() == replicas, timeout=POD_DEADLINE, interval=1,
                 what=f"{replicas} consumers ready")

    def _annotate_scaled_object(self, annotations: dict[str, str | None]) -> None:
        self.custom.patch_namespaced_custom_object("keda.sh", "v1alpha1", self.ns, "scaledobjects",
                                                   self.consumer_deployment, {"metadata": {"annotations": annotations}})

    def upgrade(self) -> None:
        self._tag = self.settings.upgrade_tag
        _run(helm_install_args(self.settings, tag=self._tag, keda=self.keda, monitoring=self.monitoring))
        self._wait_consumers_ready()
        self.reconnect()

    def autoscaling_bounds(self) -> tuple[int, int]:
        if not self.keda:
            raise NotApplicable("KEDA is not installed in the cluster (`make keda`): CPU-based scaling is not "
                                "driven by a backlog of a slow sink")
        scaled: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
            "keda.sh", "v1alpha1", self.ns, "scaledobjects", self.consumer_deployment)
        return int(scaled["spec"]["minReplicaCount"]), int(scaled["spec"]["maxReplicaCount"])

    def cpu_autoscaling(self) -> tuple[int, int]:
        if not self.resource_metrics:
            raise NotApplicable("no resource metrics API in the cluster (`make metrics-server`): a CPU HPA cannot read "
                                "the consumers' usage")
        # Without KEDA's ScaledObject for the time of the scenario, even where KEDA runs: the chart
        # creates its CPU HPA only with keda.enabled off.
        self._cpu_hpa = True
        _run(helm_install_args(self.settings, tag=self._tag, keda=False, cpu_hpa=True, monitoring=self.monitoring))
        from kubernetes import client

        hpa = client.AutoscalingV2Api(self.api_client).read_namespaced_horizontal_pod_autoscaler(
            self.consumer_deployment, self.ns)
        assert hpa.spec is not None, f"HorizontalPodAutoscaler {self.consumer_deployment} without a spec"
        low, high = int(hpa.spec.min_replicas or 1), int(hpa.spec.max_replicas)
        # The upgrade drops the Deployment's replica count; the idle group settles at the minimum.
        wait_for(lambda: self.consumer_replicas() == low, timeout=POD_DEADLINE, interval=2,
                 what=f"the idle consumers at the HPA's minimum of {low}")
        return low, high

    def prometheus(self, path: str, **params: str) -> Any:
        self._require_monitoring()
        # The operator's governing Service of every Prometheus in the namespace.
        port = self._forward("svc/prometheus-operated", 9090, namespace=PROMETHEUS_NAMESPACE)
        response = requests.get(f"http://127.0.0.1:{port}/api/v1/{path}", params=params, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def series_labels(self) -> dict[str, str]:
        self._require_monitoring()
        return {"namespace": self.ns, "release": self.settings.release}

    def _require_monitoring(self) -> None:
        if not self.monitoring:
            raise NotApplicable("no prometheus-operator Prometheus in the cluster (`make kind-prometheus`): the chart's "
                                "ServiceMonitors and PrometheusRule are not installed")

    def chaos_rig(self) -> ChaosRig:
        from sluice_e2e.chaos import KindRig

        return KindRig(self)

    def reach_unserved_service_address(self, port: int = 15672) -> tuple[str, str]:
        specs = [svc.spec for svc in self.core.list_service_for_all_namespaces().items if svc.spec]
        taken = {ip for spec in specs for ip in spec.cluster_ips or []}
        network = ipaddress.ip_network(SERVICE_SUBNET)
        address = next(str(ip) for ip in reversed(list(network.hosts())) if str(ip) not in taken)
        # From the sink pod, whose image has Python; a raw request, so that any answer at all shows.
        probe = (
            "import socket\n"
            "try:\n"
            f"    s = socket.create_connection(({address!r}, {port}), timeout=5)\n"
            "    s.sendall(b'GET / HTTP/1.1\\r\\nHost: probe\\r\\n\\r\\n')\n"
            "    s.settimeout(5)\n"
            "    print('answered', s.recv(200).split(b'\\r\\n')[0].decode(errors='replace'))\n"
            "except ConnectionRefusedError:\n"
            "    print('refused')\n"
            "except OSError:\n"
            "    print('timeout')\n"
        )
        outcome = _run([self.settings.kubectl, "--context", self.settings.context, "--namespace", self.ns, "exec",
                        f"deploy/{SINK}", "--", "python3", "-c", probe], timeout=60).strip()
        return address, outcome

    def helm_test(self) -> str:
        return self._helm("test", self.settings.release, "--timeout", "5m")

    def uninstall(self) -> list[str]:
        self._helm("uninstall", self.settings.release, "--wait", "--cascade", "foreground", "--timeout", "5m")
        self._installed = False
        # Pods and ReplicaSets go through garbage collection: wait for it, then report what stays.
        transient = ("Pod/", "ReplicaSet/")
        wait_for(lambda: not [o for o in leftovers(self._namespace_objects(), self.settings.release)
                              if o.startswith(transient)], timeout=POD_DEADLINE, interval=2,
                 what="the release's pods deleted")
        return leftovers(self._namespace_objects(), self.settings.release)

    def _namespace_objects(self) -> list[tuple[str, str, dict[str, str]]]:
        from kubernetes import client

        batch, policy = client.BatchV1Api(self.api_client), client.PolicyV1Api(self.api_client)
        autoscaling, rbac = client.AutoscalingV2Api(self.api_client), client.RbacAuthorizationV1Api(self.api_client)
        networking = client.NetworkingV1Api(self.api_client)
        listers: dict[str, Callable[[str], Any]] = {
            "Pod": self.core.list_namespaced_pod, "Service": self.core.list_namespaced_service,
            "ConfigMap": self.core.list_namespaced_config_map, "Secret": self.core.list_namespaced_secret,
            "ServiceAccount": self.core.list_namespaced_service_account,
            "PersistentVolumeClaim": self.core.list_namespaced_persistent_volume_claim,
            "Deployment": self.apps.list_namespaced_deployment, "StatefulSet": self.apps.list_namespaced_stateful_set,
            "ReplicaSet": self.apps.list_namespaced_replica_set,
            "Job": batch.list_namespaced_job, "PodDisruptionBudget": policy.list_namespaced_pod_disruption_budget,
            "HorizontalPodAutoscaler": autoscaling.list_namespaced_horizontal_pod_autoscaler,
            "Role": rbac.list_namespaced_role, "RoleBinding": rbac.list_namespaced_role_binding,
            "NetworkPolicy": networking.list_namespaced_network_policy,
        }
        objects = [(kind, _meta(item).name or "", dict(_meta(item).labels or {}))
                   for kind, lister in listers.items() for item in lister(self.ns).items]
        if self.keda:
            for kind, plural in (("ScaledObject", "scaledobjects"), ("TriggerAuthentication", "triggerauthentications")):
                listed: dict[str, Any] = self.custom.list_namespaced_custom_object(  # type: ignore[assignment]
                    "keda.sh", "v1alpha1", self.ns, plural)
                objects += [(kind, o["metadata"]["name"], dict(o["metadata"].get("labels") or {})) for o in listed["items"]]
        return objects

    def logs(self) -> str:
        parts = []
        for pod in self.core.list_namespaced_pod(self.ns).items:
            name = _meta(pod).name or ""
            try:
                text = self.core.read_namespaced_pod_log(name, self.ns, tail_lines=200, timestamps=True)
            except Exception as e:  # noqa: BLE001 - a pod that is gone or not started yet
                text = f"(no log: {e})"
            parts.append(f"--- pod/{name}\n{text}")
        return "\n".join(parts)

    def reset(self) -> None:
        if self._cpu_hpa and self._installed:
            # Back from the CPU HPA scenario. Helm creates new objects before it deletes old ones, and
            # KEDA's admission webhook refuses a ScaledObject for a Deployment an HPA still manages:
            # where KEDA scales, drop the HPA in an upgrade of its own first (as the chart's README says).
            if self.keda:
                _run(helm_install_args(self.settings, tag=self._tag, keda=False, monitoring=self.monitoring))
            _run(helm_install_args(self.settings, tag=self._tag, keda=self.keda, monitoring=self.monitoring))
            self._wait_consumers_ready()
        self._cpu_hpa = False
        if self.keda and self._installed:
            self._annotate_scaled_object({KEDA_PAUSE: None})  # None removes it: KEDA scales again
        super().reset()


def _meta(obj: Any) -> V1ObjectMeta:
    """An object's metadata (the API server always sends it; the client's model makes it optional)."""
    meta = obj.metadata
    assert meta is not None, f"{type(obj).__name__} without metadata"
    return meta  # type: ignore[no-any-return]


def _exit_status(pod: V1Pod, container: str) -> int | None:
    """The exit status of ``container`` in ``pod`` if the kubelet reported it terminated, else None."""
    statuses = pod.status.container_statuses if pod.status else None
    for status in statuses or []:
        if status.name == container and status.state and status.state.terminated:
            return int(status.state.terminated.exit_code)
    return None


def _pod_ready(pod: V1Pod) -> bool:
    """Running, not being deleted, and every container ready."""
    status = pod.status
    return (status is not None and status.phase == "Running"
            and bool(status.container_statuses) and all(c.ready for c in status.container_statuses or []))

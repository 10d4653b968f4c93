"""The RabbitMQ configuration the chart renders runs for real.

The chart's ConfigMap (rabbitmq.conf, enabled_plugins), its generated Secret and the StatefulSet's
init container script are taken from `helm template` for the tested RabbitMQ version (4.3.6, or
SLUICE_RABBITMQ_VERSION) and run in that test image (testing/rabbitmq) with a read-only root
filesystem, as uid 999, the way the StatefulSet runs them: /etc/rabbitmq is the pod's empty volume,
so the broker runs on the chart's configuration alone, as users' brokers do.
Rendered with `rabbitmq.peerDiscovery.enabled=false`: Kubernetes peer discovery needs the API server
and per-pod DNS names, so those config lines, and the pod's long node name, cannot work outside a
cluster. The peer discovery plugin stays enabled, as in the chart.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pytest
from chartlib import ToolUnavailable, one, render, run_script, skip_or_fail

from sluice_testing.broker import TESTED_VERSION
from sluice_testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Seconds the broker gets to accept the rendered credentials.
BROKER_READY_TIMEOUT = 90


@dataclass(frozen=True)
class RenderedBroker:
    """A broker started from the chart's rendered configuration, and the render it came from."""

    docs: list[dict[str, Any]]
    secret: dict[str, str]
    amqp_port: int
    metrics_port: int
    management_port: int


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def _test_image() -> str:
    try:
        return run_script("rabbitmq.sh", "image")
    except ToolUnavailable as e:
        skip_or_fail(f"no RabbitMQ test image: {e}")
        raise  # not reached: skip_or_fail raises


def _resolve_env(env: list[dict[str, Any]], secret: dict[str, str]) -> dict[str, str]:
    """A container's env with every secretKeyRef looked up in the rendered Secret."""
    resolved = {}
    for item in env:
        if "value" in item:
            resolved[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            resolved[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
    return resolved


def _host_port(container: str, port: int) -> int:
    return int(_docker("port", container, f"{port}/tcp").stdout.splitlines()[0].rsplit(":", 1)[1])


def _connect(port: int, username: str, password: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            "127.0.0.1",
            port,
            credentials=pika.PlainCredentials(username, password),
            connection_attempts=1,
            socket_timeout=5,
            blocked_connection_timeout=5,
        )
    )


def _wait_for_amqp(port: int, username: str, password: str, container: str) -> None:
    deadline = time.monotonic() + BROKER_READY_TIMEOUT
    while True:
        try:
            _connect(port, username, password).close()
            return
        except pika.exceptions.AMQPError as e:
            if time.monotonic() > deadline:
                logs = _docker("logs", "--tail", "40", container, check=False)
                raise AssertionError(
                    f"broker refused the rendered credentials: {e!r}\n{logs.stdout}{logs.stderr}"
                ) from e
            time.sleep(0.5)


@pytest.fixture(scope="module")
def broker(helm: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RenderedBroker]:
    image = _test_image()
    docs = render(helm, rabbitmq__peerDiscovery__enabled=False, rabbitmq__image__tag=f"{TESTED_VERSION}-management")
    secret = {k: base64.b64decode(v).decode() for k, v in one(docs, "Secret", "sluice-rabbitmq")["data"].items()}
    config = one(docs, "ConfigMap", "sluice-rabbitmq-config")["data"]
    init = one(docs, "StatefulSet", "sluice-rabbitmq")["spec"]["template"]["spec"]["initContainers"][0]

    root = tmp_path_factory.mktemp("rendered-rabbitmq")
    dirs = {name: root / name for name in ("config", "etc", "data")}
    for path in dirs.values():
        path.mkdir()
        path.chmod(0o777)  # written by the broker's uid 999, as on a volume with fsGroup
    for name, text in config.items():
        (dirs["config"] / name).write_text(text)
    mounts = [
        "-v",
        f"{dirs['config']}:/etc/sluice-rabbitmq:ro",
        "-v",
        f"{dirs['etc']}:/etc/rabbitmq",
        "-v",
        f"{dirs['data']}:/var/lib/rabbitmq",
    ]
    hardening = ["--user", "999:999", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]

    # Given the init container's script, run as the StatefulSet runs it
    env = [arg for k, v in _resolve_env(init["env"], secret).items() for arg in ("-e", f"{k}={v}")]
    _docker("run", "--rm", *hardening, *mounts, *env, "--entrypoint", init["command"][0], image, *init["command"][1:])

    # When the broker starts on what it wrote
    name = f"sluice-chart-rabbitmq-{secrets.token_hex(4)}"
    try:
        _docker(
            "run",
            "-d",
            "--name",
            name,
            *hardening,
            "--tmpfs",
            "/tmp:mode=1777",
            "--tmpfs",
            "/var/log/rabbitmq:mode=1777",
            *mounts,
            "-p",
            "127.0.0.1::5672",
            "-p",
            "127.0.0.1::15692",
            "-p",
            "127.0.0.1::15672",
            image,
        )
        amqp_port, metrics_port = _host_port(name, 5672), _host_port(name, 15692)
        _wait_for_amqp(amqp_port, secret["username"], secret["password"], name)
        yield RenderedBroker(docs, secret, amqp_port, metrics_port, _host_port(name, 15672))
    finally:
        _docker("rm", "-f", "-v", name, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError as e:
        return getattr(e, "code", 0) or 0, str(e)


def test_rendered_credentials_open_an_amqp_connection(broker: RenderedBroker):
    connection = _connect(broker.amqp_port, broker.secret["username"], broker.secret["password"])
    assert connection.is_open
    connection.close()


def test_guest_cannot_log_in_to_the_rendered_broker(broker: RenderedBroker):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        _connect(broker.amqp_port, "guest", "guest")


def test_consumer_with_the_rendered_env_connects_and_its_queues_get_per_queue_metrics(broker: RenderedBroker):
    # Given the consumer Deployment's env, with the Secret's values and the broker's host port
    container = one(broker.docs, "Deployment", "sluice-consumer-default")["spec"]["template"]["spec"]["containers"][0]
    env = _resolve_env(container["env"], broker.secret)
    url = urllib.parse.urlsplit(env["SLUICE_AMQP_URL"])
    env["SLUICE_AMQP_URL"] = url._replace(netloc=f"127.0.0.1:{broker.amqp_port}").geturl()
    http_port = _free_port()
    env.update(SLUICE_HTTP_HOST="127.0.0.1", SLUICE_HTTP_PORT=str(http_port))
    # When the consumer runs with it
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice_consumer"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Then it logs in with the rendered credentials and declares its queues
        wait_for(lambda: _get(f"http://127.0.0.1:{http_port}/readyz")[0] == 200, timeout=30, what="consumer /readyz")
        # And the broker's Prometheus endpoint serves per-queue series for them (after its next
        # statistics collection, every 5 s by default)
        for path in ("/metrics/detailed?family=queue_coarse_metrics", "/metrics/per-object"):
            url = f"http://127.0.0.1:{broker.metrics_port}{path}"

            def has_series(url: str = url) -> bool:
                status, text = _get(url)
                return status == 200 and 'queue="sluice.default"' in text and 'queue="sluice.default.dead"' in text

            wait_for(has_series, timeout=30, interval=0.5, what=f"per-queue series at {path}")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]


def test_the_management_api_counts_a_queue_as_kedas_http_protocol_reads_it(broker: RenderedBroker):
    # Given a queue with messages on the broker as the chart configures it (KEDA's `http` protocol
    # reads `messages` from the management API: management_metrics_collection, deprecated in 4.3)
    connection = _connect(broker.amqp_port, broker.secret["username"], broker.secret["password"])
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("keda-probe", durable=True, arguments={"x-queue-type": "quorum"})
        for _ in range(7):
            channel.basic_publish("", "keda-probe", b"{}", pika.BasicProperties(delivery_mode=2))
        # When KEDA's scaler asks the management API, Then it reads the depth there
        request = urllib.request.Request(f"http://127.0.0.1:{broker.management_port}/api/queues/%2F/keda-probe")
        token = base64.b64encode(f"{broker.secret['username']}:{broker.secret['password']}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")

        def messages() -> object:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.load(response).get("messages")

        wait_for(lambda: messages() == 7, timeout=30, interval=0.5, what="messages 7 in the management API")
        channel.queue_delete("keda-probe")
    finally:
        connection.close()

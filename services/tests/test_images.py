"""The producer and consumer images, built and run the way the chart runs them.

Both images are built (tags sluice/producer:dev and sluice/consumer:dev, as `make images` does, on
the base image scripts/build-base-image.sh picks) and run with a read-only root filesystem, as their
non-root user, with every capability dropped, against the RabbitMQ test broker (4.3.6) in a container. All containers
sit on a Docker network the tests create and remove; host ports are published on 127.0.0.1 only.
Without Docker the tests skip, except on CI (env CI set), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sluice_testing.broker import Broker
from sluice_testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("producer", "consumer")
#: What the broker container is called on the test network.
BROKER_HOST = "rabbitmq"
#: The test broker image's user (testing/rabbitmq/rabbitmq.conf).
BROKER_URL = f"amqp://sluice:sluice@{BROKER_HOST}:5672/%2F"
#: Seconds `docker stop` waits before SIGKILL; the consumer drains for less than that.
STOP_TIMEOUT = 20
DRAIN_SECONDS = 10
CI = bool(os.environ.get("CI"))
#: How the chart runs the services: read-only root, writable /tmp only, no capabilities.
HARDENED = ["--read-only", "--tmpfs", "/tmp:mode=1777", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def script(name: str, *args: str) -> str:
    """Last stdout line of scripts/<name>; skips (fails on CI) when the script fails."""
    result = subprocess.run(
        [str(REPO / "scripts" / name), *args], capture_output=True, text=True, timeout=1200, check=False
    )
    if result.returncode != 0:
        reason = f"scripts/{name} {' '.join(args)} failed: {result.stderr.strip()[-500:]}"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """Both images, built from the working tree."""
    base = script("build-base-image.sh")
    built = {}
    for service in SERVICES:
        tag = f"sluice/{service}:dev"
        docker(
            "build",
            "--force-rm",
            "-q",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "-f",
            f"services/{service}/Dockerfile",
            "-t",
            tag,
            "services",
            timeout=1200,
        )
        built[service] = tag
    return built


@pytest.fixture(scope="module")
def network() -> Iterator[str]:
    name = f"sluice-image-test-{secrets.token_hex(4)}"
    docker("network", "create", name)
    try:
        yield name
    finally:
        docker("network", "rm", name, check=False)


@pytest.fixture(scope="module")
def broker(network: str) -> Iterator[Broker]:
    """The RabbitMQ test broker on the test network, reachable from the host on 127.0.0.1."""
    image = script("rabbitmq.sh", "image")
    name = f"sluice-image-test-rabbitmq-{secrets.token_hex(4)}"
    docker("run", "-d", "--name", name, "--network", network, "--network-alias", BROKER_HOST,
           "-p", "127.0.0.1::5672", "-p", "127.0.0.1::15672", image)  # fmt: skip
    try:
        amqp, management = host_port(name, 5672), host_port(name, 15672)
        handle = Broker(
            f"amqp://sluice:sluice@127.0.0.1:{amqp}/%2F", f"http://sluice:sluice@127.0.0.1:{management}", name=None
        )
        wait_for(
            lambda: answers(f"http://127.0.0.1:{management}/api/overview", auth=True),
            timeout=90,
            interval=0.5,
            what="the test broker",
        )
        yield handle
    finally:
        docker("rm", "-f", "-v", name, check=False)


@dataclass
class Service:
    """A running service container and its published HTTP port."""

    name: str
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def host_port(container: str, port: int) -> int:
    return int(docker("port", container, f"{port}/tcp").stdout.splitlines()[0].rsplit(":", 1)[1])


def answers(url: str, *, auth: bool = False) -> bool:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic c2x1aWNlOnNsdWljZQ==")  # sluice:sluice
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.fixture
def start(images: dict[str, str], network: str, broker: Broker) -> Iterator:
    """Starts service containers, hardened as the chart runs them; removes them after the test."""
    started: list[str] = []

    def run(service: str, *args: str, **env: str) -> Service:
        name = f"sluice-image-test-{service}-{secrets.token_hex(4)}"
        env_args = [a for k, v in {"SLUICE_AMQP_URL": BROKER_URL, **env}.items() for a in ("-e", f"{k}={v}")]
        docker("run", "-d", "--name", name, "--network", network, *HARDENED, "-p", "127.0.0.1::8080",
               *env_args, *args, images[service])  # fmt: skip
        started.append(name)
        handle = Service(name, host_port(name, 8080))
        wait_for(lambda: answers(handle.url("/readyz")), timeout=60, interval=0.2, what=f"{service} /readyz")
        return handle

    yield run
    for name in started:
        docker("rm", "-f", "-v", name, check=False)


def state(container: str) -> dict:
    return json.loads(docker("inspect", "-f", "{{json .State}}", container).stdout)


def publish(producer: Service, count: int, *, batch: int = 250) -> set[str]:
    """POST ``count`` sensor readings through the ingest API; the ids the broker confirmed (202)."""
    ids: set[str] = set()
    for start in range(0, count, batch):
        events = [
            {
                "id": f"img-{uuid.uuid4()}",
                "type": "sensor.reading",
                "data": {
                    "sensor_id": "s-1",
                    "metric": "temperature",
                    "value": float(i),
                    "unit": "C",
                    "recorded_at": "2026-01-01T00:00:00Z",
                },
            }
            for i in range(start, min(start + batch, count))
        ]
        request = urllib.request.Request(
            producer.url("/events"), data=json.dumps(events).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202
            ids.update(json.loads(response.read())["ids"])
    return ids


@pytest.mark.parametrize("service", SERVICES)
def test_image_runs_as_a_non_root_numeric_user_and_carries_oci_labels(images, service):
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", images[service]).stdout)
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", config["User"]), config["User"]
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", f"sluice_{service}"]
    labels = config["Labels"]
    for key in ("source", "version", "revision"):
        assert f"org.opencontainers.image.{key}" in labels


@pytest.mark.parametrize("service", SERVICES)
def test_image_holds_no_pip_and_no_compiler(images, service):
    probe = (
        "import importlib.util, shutil; "
        "print(importlib.util.find_spec('pip') is None and not any(map(shutil.which, ['gcc', 'cc'])))"
    )
    result = docker("run", "--rm", "--read-only", "--entrypoint", "/opt/venv/bin/python", images[service], "-c", probe)
    assert result.stdout.strip() == "True"


def test_services_serve_readyz_and_metrics_read_only_as_non_root(start):
    for service, metric in (
        ("producer", "sluice_messages_published_total"),
        ("consumer", "sluice_messages_processed_total"),
    ):
        handle = start(service)
        assert metric in get(handle.url("/metrics"))
        uid = docker("exec", handle.name, "/opt/venv/bin/python", "-c", "import os; print(os.getuid())").stdout
        assert int(uid) != 0


def test_docker_stop_drains_the_consumer_in_its_grace_period_and_loses_nothing(start, broker, tmp_path):
    # Given a consumer writing to a file sink, paused while a backlog builds up
    sink_dir = tmp_path / "sink"
    sink_dir.mkdir()
    sink_dir.chmod(0o777)
    consumer = start(
        "consumer",
        "-v",
        f"{sink_dir}:/data",
        SLUICE_SINK_KIND="file",
        SLUICE_SINK_PATH="/data/events.jsonl",
        SLUICE_CONSUMER_SHUTDOWN_GRACE_SECONDS=str(DRAIN_SECONDS),
    )
    producer = start("producer")
    docker("pause", consumer.name)
    published = publish(producer, 2000)
    # When it resumes with messages in flight and gets `docker stop`
    docker("unpause", consumer.name)
    started = time.monotonic()
    docker("stop", "-t", str(STOP_TIMEOUT), consumer.name, timeout=STOP_TIMEOUT + 30)
    elapsed = time.monotonic() - started
    # Then it exited by itself, cleanly, within its grace period
    assert state(consumer.name)["ExitCode"] == 0
    assert elapsed < STOP_TIMEOUT
    # And every confirmed event was either delivered or is still in the work queue
    delivered = {json.loads(line)["id"] for line in (sink_dir / "events.jsonl").read_text().splitlines()}
    queued = {m.message_id for m in broker.drain("sluice.default")}
    assert published - delivered - queued == set()
    assert delivered, "the consumer delivered nothing before it stopped"


def test_sluice_dlq_runs_inside_the_consumer_container_as_kubectl_exec_would(start):
    # Given a consumer container (its image has no producer code)
    consumer = start("consumer")
    # When an operator runs the dead-letter tool in it, with the container's own settings
    stats = docker("exec", consumer.name, "sluice", "dlq", "stats", "--json", check=False)
    # Then it reads the group's dead-letter queue; `sluice publish` says where it lives instead
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["queue"] == "sluice.default.dead"
    publish = docker("exec", consumer.name, "sluice", "publish", "-", check=False)
    assert publish.returncode == 2 and "sluice-producer" in publish.stderr


def test_docker_stop_ends_the_producer_with_exit_status_0(start):
    producer = start("producer")
    started = time.monotonic()
    docker("stop", "-t", str(STOP_TIMEOUT), producer.name, timeout=STOP_TIMEOUT + 30)
    assert state(producer.name)["ExitCode"] == 0
    assert time.monotonic() - started < STOP_TIMEOUT


def test_helm_test_script_passes_against_running_services(start, images, network):
    # Given a producer and a consumer reachable by name, as the chart's Services make them
    start("consumer", "--network-alias", "consumer-default")
    start("producer", "--network-alias", "producer")
    script_path = REPO / "charts" / "sluice" / "files" / "helm-test.py"
    # When the chart's `helm test` script runs in the producer image, as the test Pod runs it
    result = docker(
        "run", "--rm", "--network", network, *HARDENED,
        "-v", f"{script_path}:/etc/sluice-test/helm-test.py:ro",
        "-e", "SLUICE_TEST_INGEST_URL=http://producer:8080/events",
        "-e", "SLUICE_TEST_CONSUMER_SERVICES=consumer-default",
        "-e", "SLUICE_TEST_TIMEOUT_SECONDS=30",
        "--entrypoint", "/opt/venv/bin/python", images["producer"], "/etc/sluice-test/helm-test.py",
        check=False, timeout=90,
    )  # fmt: skip
    # Then it sees its event acknowledged by the consumer
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout


def test_skaffold_sync_hook_restarts_the_consumer_on_the_edited_code_in_the_same_container(images, network, broker):
    # Given a consumer run as the skaffold `kind` profile runs it: /tmp a volume that outlives a
    # container restart (a pod's emptyDir) and first on PYTHONPATH
    skaffold = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    artifact = next(a for a in skaffold["build"]["artifacts"] if a["image"] == "sluice/consumer")
    hook = artifact["sync"]["hooks"]["after"][0]["container"]["command"]
    name = f"sluice-image-test-sync-{secrets.token_hex(4)}"
    docker("volume", "create", name)
    try:
        docker("run", "-d", "--name", name, "--network", network, "--read-only", "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges", "-v", f"{name}:/tmp", "-e", "PYTHONPATH=/tmp/dev", "-e", f"SLUICE_AMQP_URL={BROKER_URL}",
               "-p", "127.0.0.1::8080", images["consumer"])  # fmt: skip
        wait_for(lambda: answers(f"http://127.0.0.1:{host_port(name, 8080)}/readyz"), timeout=60, interval=0.2,
                 what="consumer /readyz")
        # When skaffold syncs one edited file into /tmp/dev and runs the hook
        source = docker("exec", name, "python3", "-c", "import inspect, sluice_consumer; print(inspect.getsource(sluice_consumer))").stdout
        subprocess.run(["docker", "exec", "-i", name, "sh", "-c",
                        "mkdir -p /tmp/dev/sluice_consumer && cat > /tmp/dev/sluice_consumer/__init__.py"],
                       input=source + "\nSYNCED_BY_SKAFFOLD = True\n", text=True, check=True, timeout=30)
        docker("exec", name, *hook)
        # Then the service drains and exits 0 (the kubelet restarts it; here docker start does)
        wait_for(lambda: state(name)["Status"] == "exited", timeout=60, interval=0.2, what="the consumer exits")
        assert state(name)["ExitCode"] == 0
        docker("start", name)
        wait_for(lambda: answers(f"http://127.0.0.1:{host_port(name, 8080)}/readyz"), timeout=60, interval=0.2,
                 what="consumer /readyz after the restart")
        # And it runs the edited module, with the rest of the packages completed from the image
        check = ("import sluice_common, sluice_consumer, sluice_consumer.worker as w; "
                 "print(sluice_consumer.SYNCED_BY_SKAFFOLD, sluice_consumer.__file__, w.__file__, sluice_common.__file__)")
        assert docker("exec", name, "python3", "-c", check).stdout.split() == [
            "True", "/tmp/dev/sluice_consumer/__init__.py", "/tmp/dev/sluice_consumer/worker.py",
            "/tmp/dev/sluice_common/__init__.py"]
    finally:
        docker("rm", "-f", "-v", name, check=False)
        docker("volume", "rm", name, check=False)

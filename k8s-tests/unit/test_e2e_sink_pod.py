"""The sink the kind suite runs as a pod: valid manifests, and the script runs on the standard library alone."""

from __future__ import annotations

import subprocess
import sys

import kubernetes_validate
import pytest
import requests
import yaml

from sluice_e2e.kind_settings import KIND_DIR
from sluice_e2e.sink_pod import SINK, SINK_PORT, SINK_SCRIPT, sink_manifests
from sluice_testing.processes import free_port
from sluice_testing.waiting import wait_for


@pytest.mark.parametrize("version", ["1.30.0", "1.33.0"])
def test_the_sink_manifests_are_valid_kubernetes_objects(version):
    for manifest in sink_manifests("sluice/consumer:dev"):
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_sink_pod_is_restricted_and_runs_the_mounted_script():
    deployment = next(m for m in sink_manifests("sluice/consumer:dev") if m["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["command"][:2] == ["python3", "/sink/flaky_sink.py"]
    config_map = next(m for m in sink_manifests("x") if m["kind"] == "ConfigMap")
    assert config_map["data"]["flaky_sink.py"] == SINK_SCRIPT.read_text()


def test_the_sink_script_serves_its_control_api_when_run_alone_as_in_the_pod(tmp_path):
    # Given the script run by a bare interpreter, from a directory where no project module is importable
    port = free_port()
    copy = tmp_path / "flaky_sink.py"
    copy.write_text(SINK_SCRIPT.read_text())
    process = subprocess.Popen([sys.executable, "-I", str(copy), "--host", "127.0.0.1", "--port", str(port),
                                "--fail-ratio", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                return requests.get(base + "/state", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(answers, timeout=30, interval=0.1, what="the standalone sink")
        # Then it takes deliveries and reports them
        assert requests.post(base + "/events", json={}, headers={"Idempotency-Key": "e1"}, timeout=5).status_code == 200
        state = requests.get(base + "/state", timeout=5).json()
        assert (state["received"], state["failed"], len(state["delivery_times"])) == ({"e1": 1}, 0, 1)
    finally:
        process.kill()
        process.wait(10)
        if process.stderr:
            process.stderr.close()


def test_the_e2e_values_deliver_to_the_sink_service():
    values = yaml.safe_load((KIND_DIR / "values-e2e.yaml").read_text())
    sink = values["consumer"]["defaults"]["sink"]
    assert (sink["kind"], sink["url"]) == ("http", f"http://{SINK}:{SINK_PORT}/events")
    service = next(m for m in sink_manifests("x") if m["kind"] == "Service")
    assert (service["metadata"]["name"], service["spec"]["ports"][0]["port"]) == (SINK, SINK_PORT)

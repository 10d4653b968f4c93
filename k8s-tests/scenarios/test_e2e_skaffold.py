"""skaffold for real: ``skaffold run -p kind`` deploys the system, and a ``skaffold dev`` session
serves an edited ``.py`` file without rebuilding an image; Ctrl-C leaves nothing behind.

Kind only, in namespace ``sluice`` (skaffold.yaml's), next to the suite's own release. skaffold works
in a copy of the working tree, which the dev scenario edits. Without ``SLUICE_E2E=kind`` these skip.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice_e2e.skaffold import CLEANUP_DEADLINE, DEPLOY_DEADLINE, Skaffold, SkaffoldSettings, copy_worktree
from sluice_testing.waiting import wait_for

#: Seconds an edit gets to reach the running pods (the sync, and the container's restart).
SYNC_DEADLINE = 120.0
#: The line of the HTTP server the dev scenario edits, in the package both services share.
EDITED_FILE = Path("services/common/src/sluice_common/httpserver.py")
EDITED_TEXT = '"method not allowed" if known else "not found"'

#: Asks the service on its own port for a path it does not serve; prints the JSON body of the 404.
PROBE = """
import urllib.error, urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:8080/no-such-path", timeout=5)
except urllib.error.HTTPError as e:
    print(e.read().decode())
"""
#: Posts one event to the producer's ingest on its own port; prints the status.
PUBLISH = """
import json, urllib.request
event = {{"id": "{event_id}", "type": "sensor.reading", "data": {{"sensor_id": "s-1", "metric": "temperature",
         "value": 21.5, "unit": "celsius", "recorded_at": "2026-12-01T00:00:00Z"}}}}
request = urllib.request.Request("http://127.0.0.1:8080/events", data=json.dumps(event).encode(),
                                 headers={{"Content-Type": "application/json"}})
print(urllib.request.urlopen(request, timeout=30).status)
"""

pytestmark = pytest.mark.integration


def not_found_error(skaffold: Skaffold, pod: str, container: str) -> str | None:
    """The ``error`` of the service's 404 answer, or None while the container cannot answer (restarting)."""
    output = skaffold.exec_python(pod, container, PROBE)
    try:
        return str(json.loads(output)["error"])
    except (ValueError, KeyError, TypeError):
        return None


@pytest.fixture
def skaffold(tmp_path: Path) -> Iterator[Skaffold]:
    """skaffold on the suite's kind cluster, in a copy of the working tree."""
    from sluice_e2e.kind_settings import KindUnavailable

    if os.environ.get("SLUICE_E2E", "local") != "kind":
        pytest.skip("skaffold deploys to the kind cluster only: run `make kind-e2e` (docs/e2e.md)")
    if os.environ.get("SKAFFOLD") == "":
        pytest.skip("skaffold is not built on this machine: `make skaffold-tool` builds it (about 7 min cold), "
                    "and `make kind-e2e` runs these scenarios from then on (KIND_SKAFFOLD=1 builds it first)")
    try:
        settings = SkaffoldSettings.from_env()
    except KindUnavailable as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no skaffold for the e2e suite ({e})")
    runner = Skaffold(settings, copy_worktree(tmp_path / "sluice"))
    yield runner
    if runner.release_objects():  # a scenario failed half-way: leave the cluster as it found it
        runner.run("delete", "-p", "kind", timeout=CLEANUP_DEADLINE)


@pytest.mark.timeout(DEPLOY_DEADLINE + 2 * CLEANUP_DEADLINE)
def test_skaffold_run_deploys_the_system_and_delete_removes_it(skaffold: Skaffold) -> None:
    # When skaffold builds both images and deploys the chart with the kind profile
    skaffold.run("run", "-p", "kind")
    producers, consumers = skaffold.containers("producer"), skaffold.containers("consumer")
    assert len(producers) == 1 and len(consumers) == 1, (producers, consumers)
    # Then an event posted to the ingest is confirmed, and the consumer delivers it (the log sink)
    event_id = f"skaffold-{uuid.uuid4().hex[:12]}"
    producer, consumer = next(iter(producers)), next(iter(consumers))
    assert skaffold.exec_python(producer, "producer", PUBLISH.format(event_id=event_id)).strip() == "202"
    wait_for(lambda: event_id in skaffold.logs(consumer, "consumer"), timeout=60, interval=1,
             what=f"event {event_id} delivered by {consumer}")
    # And skaffold delete leaves nothing of the release
    skaffold.run("delete", "-p", "kind", timeout=CLEANUP_DEADLINE)
    skaffold.wait_nothing_left()


@pytest.mark.timeout(DEPLOY_DEADLINE + SYNC_DEADLINE + 3 * CLEANUP_DEADLINE)
def test_skaffold_dev_serves_an_edited_file_without_a_rebuild_and_ctrl_c_leaves_nothing(skaffold: Skaffold) -> None:
    session = skaffold.dev("-p", "kind", "--port-forward=off")
    try:
        # Given a dev session that built, deployed and now watches the sources
        session.wait_output("Watching for changes...", timeout=DEPLOY_DEADLINE)
        before = {c: skaffold.containers(c) for c in ("producer", "consumer")}
        for component, pods in before.items():
            assert len(pods) == 1, (component, pods)
            pod = next(iter(pods))
            assert not_found_error(skaffold, pod, component) == "not found"
        # When a .py file of the package both services share is edited
        edited = skaffold.workdir / EDITED_FILE
        marker = f"not found ({uuid.uuid4().hex[:8]})"
        text = edited.read_text()
        assert text.count(EDITED_TEXT) == 1, f"{EDITED_FILE} no longer has the line this scenario edits"
        since = len(session.output())
        edited.write_text(text.replace(EDITED_TEXT, EDITED_TEXT.replace('"not found"', json.dumps(marker))))

        # Then both running pods serve the new code
        def serve_marker() -> bool:
            return all(not_found_error(skaffold, pod, component) == marker for component, pods in before.items()
                       for pod in pods)

        wait_for(serve_marker, timeout=SYNC_DEADLINE, interval=2, what="both pods serving the edited file")
        # through a file sync into the same pods, from the same images: no build, no new pod
        after_edit = session.output(since)
        assert "Syncing 1 files for sluice/producer" in after_edit and "Syncing 1 files for sluice/consumer" in after_edit, \
            after_edit[-4000:]
        assert "Building [" not in after_edit, after_edit[-4000:]
        for component, pods in before.items():
            now = skaffold.containers(component)
            assert set(now) == set(pods), (component, pods, now)
            for pod, (image, restarts) in pods.items():
                assert now[pod][0] == image, f"{pod} runs another image"
                assert now[pod][1] > restarts, f"{pod}'s container did not restart on the new code"
        # When the developer presses Ctrl-C
        status = session.interrupt()
        # Then skaffold cleans up and exits, and nothing of the release or of skaffold is left
        assert status == 0, session.output()[-4000:]
        assert "Cleaning up..." in session.output(since)
        skaffold.wait_nothing_left()
        assert not session.group_alive(), "a process of the skaffold session outlived it"
    finally:
        session.close()

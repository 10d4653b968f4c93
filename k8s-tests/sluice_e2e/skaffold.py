"""skaffold against the suite's kind cluster: ``skaffold run``/``delete``, and a ``skaffold dev``
session driven as a person at a terminal would (start it, edit a file, press Ctrl-C).

skaffold runs in a copy of the working tree (:func:`copy_worktree`), so that a scenario may edit
sources without touching the repository, and with the same environment ``make dev`` gives it:
helm 3 and scripts/kind (its ``docker`` wrapper for ``kind load``) first on ``PATH``, and the
images that stand in for registry pulls (``SLUICE_BASE_IMAGE``, ``SLUICE_BROKER_IMAGE``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice_e2e.kind_settings import REPO, KindUnavailable
from sluice_testing.waiting import wait_for

__all__ = ["DevSession", "Skaffold", "SkaffoldSettings", "copy_worktree"]

#: The namespace and release skaffold.yaml deploys.
NAMESPACE = "sluice"
RELEASE = "sluice"
#: Seconds a first build and deploy may take (RabbitMQ boots from nothing).
DEPLOY_DEADLINE = 600.0
#: Seconds skaffold gets to clean up after Ctrl-C (helm uninstall, the pods gone).
CLEANUP_DEADLINE = 180.0


@dataclass(frozen=True)
class SkaffoldSettings:
    """What to run skaffold with; every field has an environment variable (see :meth:`from_env`)."""

    cluster: str = "sluice-e2e"
    skaffold: str = "skaffold"
    helm: str = "helm"
    kubectl: str = "kubectl"
    base_image: str = ""
    broker_image: str = ""

    @property
    def context(self) -> str:
        return f"kind-{self.cluster}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SkaffoldSettings:
        """Read ``KIND_CLUSTER``, ``SKAFFOLD``, ``SKAFFOLD_HELM`` (a Helm 3: skaffold v2.16 cannot drive
        Helm 4), ``KUBECTL``, ``SLUICE_BASE_IMAGE`` and ``SLUICE_BROKER_IMAGE`` (or, failing it,
        ``SLUICE_E2E_BROKER_IMAGE``).

        Raises:
            KindUnavailable: skaffold or that helm is not installed.
        """
        env = dict(os.environ if environ is None else environ)
        settings = cls(cluster=env.get("KIND_CLUSTER", "sluice-e2e"), skaffold=env.get("SKAFFOLD", "skaffold"),
                       helm=env.get("SKAFFOLD_HELM", "helm"), kubectl=env.get("KUBECTL", "kubectl"),
                       base_image=env.get("SLUICE_BASE_IMAGE", ""),
                       broker_image=env.get("SLUICE_BROKER_IMAGE") or env.get("SLUICE_E2E_BROKER_IMAGE", ""))
        for tool, how in ((settings.skaffold, "`make skaffold-tool`"), (settings.helm, "`HELM_MAJOR=3 scripts/get-helm.sh`")):
            if shutil.which(tool) is None:
                raise KindUnavailable(f"{tool!r} is not installed ({how} installs it)")
        return settings


def copy_worktree(destination: Path) -> Path:
    """Copy the repository's files (tracked, and untracked but not ignored) to ``destination``, as a
    git repository of one commit: skaffold.yaml tags images from the commit."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    git = ["git", "-C", str(destination), "-c", "user.name=sluice-e2e", "-c", "user.email=e2e@sluice.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "worktree"]):
        subprocess.run([*git, *args], capture_output=True, check=True)
    return destination


class Skaffold:
    """skaffold in ``workdir`` (a copy of the repository) on the suite's kind context."""

    def __init__(self, settings: SkaffoldSettings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir

    def env(self) -> dict[str, str]:
        helm_dir = str(Path(shutil.which(self.settings.helm) or self.settings.helm).resolve().parent)
        env = {**os.environ, "PATH": os.pathsep.join([helm_dir, str(REPO / "scripts" / "kind"), os.environ["PATH"]])}
        for name, value in (("SLUICE_BASE_IMAGE", self.settings.base_image), ("SLUICE_BROKER_IMAGE", self.settings.broker_image)):
            if value:
                env[name] = value
        return env

    def command(self, verb: str, *args: str) -> list[str]:
        return [self.settings.skaffold, verb, "--kube-context", self.settings.context, "--update-check=false", *args]

    def run(self, verb: str, *args: str, timeout: float = DEPLOY_DEADLINE) -> str:
        """Run ``skaffold <verb>`` to its end; its output, or an AssertionError with it."""
        result = subprocess.run(self.command(verb, *args), cwd=self.workdir, env=self.env(), capture_output=True,
                                text=True, timeout=timeout, check=False)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise AssertionError(f"skaffold {verb} exited with {result.returncode}:\n{output[-6000:]}")
        return output

    def dev(self, *args: str) -> DevSession:
        return DevSession(self.command("dev", *args), cwd=self.workdir, env=self.env())

    # -- what is deployed ------------------------------------------------------------------------

    def kubectl_json(self, *args: str) -> Any:
        result = subprocess.run([self.settings.kubectl, "--context", self.settings.context, "--namespace", NAMESPACE,
                                 *args, "-o", "json"], capture_output=True, text=True, timeout=60, check=True)
        return json.loads(result.stdout)

    def containers(self, component: str) -> dict[str, tuple[str, int]]:
        """Running pods of ``component`` (producer, consumer): pod name → (image ID, restart count)."""
        pods = self.kubectl_json("get", "pods", "-l", f"app.kubernetes.io/instance={RELEASE},"
                                 f"app.kubernetes.io/component={component}")["items"]
        found = {}
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            status = next((s for s in pod["status"].get("containerStatuses", []) if s["name"] == component), None)
            if status:
                found[pod["metadata"]["name"]] = (status.get("imageID", ""), status.get("restartCount", 0))
        return found

    def exec_python(self, pod: str, container: str, code: str) -> str:
        """The output of ``python3 -c code`` in ``container`` of ``pod`` (its own interpreter and packages)."""
        result = subprocess.run([self.settings.kubectl, "--context", self.settings.context, "--namespace", NAMESPACE,
                                 "exec", pod, "--container", container, "--", "python3", "-c", code],
                                capture_output=True, text=True, timeout=60, check=False)
        return result.stdout if result.returncode == 0 else f"exit {result.returncode}: {result.stderr}"

    def logs(self, pod: str, container: str) -> str:
        result = subprocess.run([self.settings.kubectl, "--context", self.settings.context, "--namespace", NAMESPACE,
                                 "logs", pod, "--container", container], capture_output=True, text=True, timeout=60,
                                check=False)
        return result.stdout

    def release_objects(self) -> list[str]:
        """``kind/name`` of every object in the namespace labelled with the release, Helm's own record included."""
        kinds = "all,configmaps,secrets,persistentvolumeclaims,serviceaccounts,roles,rolebindings,poddisruptionbudgets"
        labelled = self.kubectl_json("get", kinds, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
        records = self.kubectl_json("get", "secrets", "-l", f"owner=helm,name={RELEASE}")["items"]
        return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in [*labelled, *records])

    def wait_nothing_left(self) -> None:
        wait_for(lambda: not self.release_objects(), timeout=CLEANUP_DEADLINE, interval=2,
                 what=f"nothing of release {RELEASE} left in namespace {NAMESPACE}")


class DevSession:
    """``skaffold dev`` in a process group of its own, its output in a file; Ctrl-C is :meth:`interrupt`."""

    def __init__(self, command: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
        self._log_path = cwd / "skaffold-dev.log"
        self._log = self._log_path.open("w")
        self.process = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def output(self, since: int = 0) -> str:
        return self._log_path.read_text(errors="replace")[since:]

    def wait_output(self, text: str, *, since: int = 0, timeout: float) -> None:
        """Wait until ``text`` appears in the output after offset ``since``; fail if skaffold exits first."""
        def seen() -> bool:
            if self.process.poll() is not None and text not in self.output(since):
                raise AssertionError(f"skaffold dev exited with {self.process.returncode}:\n{self.output()[-6000:]}")
            return text in self.output(since)

        wait_for(seen, timeout=timeout, interval=1, what=f"{text!r} from skaffold dev")

    def interrupt(self, timeout: float = CLEANUP_DEADLINE) -> int:
        """Ctrl-C: SIGINT to skaffold's process group, as a terminal sends it; its exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def group_alive(self) -> bool:
        """Whether any process of skaffold's group (its port-forwards, helm, kubectl) is still running."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        """Stop whatever is left, if a scenario failed half-way."""
        if self.process.poll() is None or self.group_alive():
            for sig in (signal.SIGINT, signal.SIGKILL):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(CLEANUP_DEADLINE if sig == signal.SIGINT else 10)
                    time.sleep(1)
                except subprocess.TimeoutExpired:
                    continue
        self._log.close()

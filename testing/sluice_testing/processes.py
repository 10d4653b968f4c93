"""Run the real services as subprocesses, as a deployment would, and control them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from sluice_testing.waiting import wait_for

__all__ = ["ServiceProcess", "free_port", "sample_value"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_value(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels}`` in a Prometheus exposition ``text`` (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


class ServiceProcess:
    """``python -m sluice_producer`` or ``sluice_consumer`` with the given ``SLUICE_*`` environment."""

    def __init__(self, module: str, env: dict[str, str], *, name: str | None = None) -> None:
        self.module = module
        self.name = name or module
        self.port = int(env.get("SLUICE_HTTP_PORT") or free_port())
        self.env = {**os.environ, "SLUICE_HTTP_HOST": "127.0.0.1", **env, "SLUICE_HTTP_PORT": str(self.port)}
        self._log = tempfile.NamedTemporaryFile(prefix=f"{self.name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self.process = subprocess.Popen([sys.executable, "-m", self.module], env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 30.0) -> ServiceProcess:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.logs()[-3000:]}")
            try:
                return requests.get(self.url + "/readyz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=timeout, interval=0.1, what=f"{self.name} ready")
        return self

    def metrics(self) -> str:
        return requests.get(self.url + "/metrics", timeout=5).text

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on ``/metrics`` (0 when absent)."""
        return sample_value(self.metrics(), name, **labels)

    def rss_bytes(self) -> int:
        """The process's resident memory right now (Linux ``/proc``)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for {self.name}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def logs(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()
        os.unlink(self._log.name)

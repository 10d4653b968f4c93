"""A real Prometheus (the Debian package's 2.x binary) scraping services on loopback, for metrics tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import requests

from sluice_testing.processes import free_port
from sluice_testing.waiting import wait_for

__all__ = ["Prometheus"]


class Prometheus:
    """Scrapes ``targets`` (``host:port`` on 127.0.0.1) every ``interval_s`` into a throwaway TSDB.

    Usage::

        with Prometheus(["127.0.0.1:8080"]) as prometheus:
            prometheus.value('sluice_dlq_replayed_total{outcome="acked"}')
    """

    def __init__(self, targets: list[str], *, interval_s: float = 1.0) -> None:
        self.binary = shutil.which("prometheus")
        if self.binary is None:
            raise FileNotFoundError("no prometheus on PATH: run `make system-deps` (apt-get install prometheus)")
        self._dir = Path(tempfile.mkdtemp(prefix="sluice-prometheus-"))
        self.port = free_port()
        quoted = ", ".join(f"'{t}'" for t in targets)
        interval = f"{round(interval_s * 1000)}ms"  # Prometheus durations take no fractions
        (self._dir / "prometheus.yml").write_text(
            f"global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}\n"
            f"scrape_configs: [{{job_name: sluice, static_configs: [{{targets: [{quoted}]}}]}}]\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Prometheus:
        assert self.binary is not None
        with (self._dir / "prometheus.log").open("wb") as log:  # the child keeps its own descriptor
            self._process = subprocess.Popen(
                [self.binary, f"--config.file={self._dir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self._dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            wait_for(self._ready, timeout=30, interval=0.2, what="prometheus ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(20)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {(self._dir / 'prometheus.log').read_text()[-2000:]}")
        try:
            return requests.get(self.url + "/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def value(self, expr: str) -> float | None:
        """The value of an instant query with one result, or None while it has none."""
        response = requests.get(self.url + "/api/v1/query", params={"query": expr}, timeout=5)
        response.raise_for_status()
        result = response.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None

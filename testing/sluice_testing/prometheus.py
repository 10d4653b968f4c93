"""A real Prometheus (Debian's package) on a free loopback port, and its HTTP API.

    with PrometheusServer(scrape_configs) as prometheus:
        prometheus.query('sum(rate(sluice_messages_processed_total[1m]))')

Its data lives in a temporary directory removed on ``stop``. Nothing here is shipped.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

from sluice_testing.processes import free_port
from sluice_testing.skips import skip_or_fail
from sluice_testing.waiting import wait_for

__all__ = ["PrometheusError", "PrometheusServer", "find_prometheus", "skip_or_fail_without", "static_scrape"]


class PrometheusError(Exception):
    """Prometheus is missing, did not start, or refused a query (the message has its reason)."""


def skip_or_fail_without(tool: str) -> str:
    """The path of ``prometheus`` or ``promtool``; without it the test skips, or fails on CI (env CI set)."""
    path = shutil.which(tool)
    if path:
        return path
    skip_or_fail(f"{tool} is not on PATH; `make system-deps` installs Prometheus 3.5.3 into .tools/ "
                 "(scripts/get-prometheus.sh), and the make targets put it first on PATH")


def find_prometheus() -> str:
    """The path of the ``prometheus`` binary.

    Raises:
        PrometheusError: it is not on PATH (``make system-deps`` installs 3.5.3 into .tools/).
    """
    path = shutil.which("prometheus")
    if not path:
        raise PrometheusError("prometheus is not on PATH; `make system-deps` installs Prometheus 3.5.3 "
                              "(scripts/get-prometheus.sh) and the make targets put it first on PATH")
    return path


def static_scrape(targets: Sequence[str], *, interval: str = "1s") -> list[dict[str, Any]]:
    """One scrape job over ``host:port`` targets, for :class:`PrometheusServer`."""
    return [{"job_name": "sluice", "scrape_interval": interval, "static_configs": [{"targets": list(targets)}]}]


class PrometheusServer:
    """Prometheus scraping ``scrape_configs`` (a list of Prometheus ``scrape_config`` mappings).

    Parameters:
        scrape_configs: the jobs, as they go under ``scrape_configs:`` in prometheus.yml.
        rule_files: rule files (``groups:`` documents) Prometheus loads and evaluates.
        evaluation_interval: how often those rules are evaluated.
    """

    def __init__(self, scrape_configs: list[dict[str, Any]], *, rule_files: Sequence[Path] = (),
                 evaluation_interval: str = "5s") -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="sluice-prometheus-"))
        self.port = free_port()
        config = {"global": {"evaluation_interval": evaluation_interval},
                  "rule_files": [str(p) for p in rule_files], "scrape_configs": scrape_configs}
        self.config_path = self._dir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._log = open(self._dir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        """Start Prometheus and wait until it answers ``/-/ready``.

        Raises:
            PrometheusError: it exited (bad config, port taken) or was not ready in time.
        """
        self._process = subprocess.Popen(
            [find_prometheus(), f"--config.file={self.config_path}", f"--storage.tsdb.path={self._dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self._process.returncode}:\n{self.logs()[-3000:]}")
            try:
                return requests.get(self.url + "/-/ready", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=timeout, interval=0.2, what="prometheus ready")
        return self

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _get(self, path: str, **params: Any) -> Any:
        response = requests.get(self.url + path, params=params, timeout=30)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query (``[{"metric": {...}, "value": [t, "v"]}, ...]``).

        Raises:
            PrometheusError: Prometheus refused the expression (the message has its parse error).
        """
        data = self._get("/api/v1/query", query=expr)
        return data["result"] if data["resultType"] == "vector" else [{"metric": {}, "value": data["result"]}]

    def value(self, expr: str) -> float | None:
        """The value of an instant query with one result, or None while it has none."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def query_range(self, expr: str, *, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """The series of a range query (``[{"metric": {...}, "values": [[t, "v"], ...]}, ...]``)."""
        return list(self._get("/api/v1/query_range", query=expr, start=start, end=end, step=step)["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        """Values of ``label`` on the series ``match`` selects (Grafana's ``label_values``)."""
        return list(self._get(f"/api/v1/label/{label}/values", **{"match[]": match}))

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health and last error."""
        return list(self._get("/api/v1/targets")["activeTargets"])

    def rules(self) -> list[dict[str, Any]]:
        """The loaded rule groups with each rule's health and last error."""
        return list(self._get("/api/v1/rules")["groups"])

    def logs(self) -> str:
        self._log.flush()
        return (self._dir / "prometheus.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop Prometheus and remove its data."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)

"""``kubectl port-forward`` as an object: start it, read its local port, restart it when its pod is gone.

The Kubernetes Python client can open a port-forward stream per connection, but serving a local
TCP port from it means re-implementing kubectl's listener; ``kubectl port-forward`` already is
that listener, and it is what a person debugging the cluster would run.
"""

from __future__ import annotations

import re
import select
import subprocess
import threading
import time

__all__ = ["PortForward", "PortForwardError", "parse_forwarding_line"]

#: Seconds kubectl gets to print its "Forwarding from" line.
START_TIMEOUT = 30.0

_FORWARDING = re.compile(r"^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)\s*$")


class PortForwardError(Exception):
    """Raised when ``kubectl port-forward`` exits or prints no forwarding line in time."""


def parse_forwarding_line(line: str) -> tuple[int, int] | None:
    """``(local, remote)`` ports of kubectl's ``Forwarding from 127.0.0.1:L -> R`` line, else None.

    The ``[::1]`` line kubectl prints as well is ignored: clients here use 127.0.0.1.
    """
    match = _FORWARDING.match(line.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


class PortForward:
    """Forwards a free port on 127.0.0.1 to ``port`` of ``target`` (``svc/name`` or ``pod/name``).

    kubectl picks one pod behind a Service and stops forwarding when that pod goes away;
    :meth:`ensure` starts it again, on a new local port.
    """

    def __init__(self, kubectl: str, namespace: str, target: str, port: int, *, context: str) -> None:
        self.command = [kubectl, "--context", context, "--namespace", namespace, "port-forward",
                        "--address", "127.0.0.1", target, f":{port}"]
        self.target = f"{target}:{port}"
        self._process: subprocess.Popen[str] | None = None
        self._local_port = 0
        self._output: list[str] = []
        self._lock = threading.Lock()

    @property
    def local_port(self) -> int:
        """The local port, (re)starting kubectl if it is not running."""
        return self.ensure()

    def ensure(self) -> int:
        """Start kubectl unless it is running; returns the local port."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            return self._local_port

    def restart(self) -> int:
        """Stop and start kubectl (after the pod behind it was replaced); returns the new local port."""
        with self._lock:
            self._stop()
            self._start()
            return self._local_port

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> None:
        self._output = []
        process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        found: tuple[int, int] | None = None
        # kubectl prints the line as soon as it listens; wait for each line no longer than the deadline.
        while found is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
                break
            line = process.stdout.readline()
            if not line:
                break
            self._output.append(line)
            found = parse_forwarding_line(line)
        if found is None:
            process.kill()
            process.wait(10)
            raise PortForwardError(f"kubectl port-forward {self.target} did not start:\n{''.join(self._output)[-2000:]}")
        self._process, self._local_port = process, found[0]
        # Keep draining its output, so kubectl never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(process,), name="port-forward-log", daemon=True).start()

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._output = [*self._output[-50:], line]

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._process = None

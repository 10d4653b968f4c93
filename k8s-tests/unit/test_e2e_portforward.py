"""PortForward's process handling, with a stand-in for kubectl that prints what kubectl prints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sluice_e2e import portforward
from sluice_e2e.portforward import PortForward, PortForwardError, parse_forwarding_line


def fake_kubectl(tmp_path: Path, body: str) -> str:
    """An executable that ignores its arguments and runs ``body`` (Python), like kubectl would behave."""
    path = tmp_path / "kubectl"
    path.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_the_local_port_is_read_from_kubectls_forwarding_line_and_restart_starts_a_new_process(tmp_path):
    counter = tmp_path / "starts"
    kubectl = fake_kubectl(tmp_path, f"""
p = __import__("pathlib").Path({str(counter)!r}); n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n))
print("Forwarding from 127.0.0.1:%d -> 8080" % (40000 + n), flush=True)
print("Forwarding from [::1]:%d -> 8080" % (40000 + n), flush=True)
time.sleep(60)
""")
    forward = PortForward(kubectl, "ns", "svc/x", 8080, context="kind-sluice-e2e")
    try:
        assert forward.local_port == 40001
        assert forward.local_port == 40001  # still running: not restarted
        assert forward.restart() == 40002
    finally:
        forward.close()
    assert forward.command[1:3] == ["--context", "kind-sluice-e2e"]


def test_kubectl_exiting_with_an_error_raises_with_its_output(tmp_path):
    kubectl = fake_kubectl(tmp_path, 'print("error: services \\"x\\" not found", flush=True); sys.exit(1)')
    with pytest.raises(PortForwardError, match='services "x" not found'):
        PortForward(kubectl, "ns", "svc/x", 8080, context="kind-c").ensure()


def test_kubectl_silent_past_the_deadline_is_killed_and_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(portforward, "START_TIMEOUT", 1.0)
    kubectl = fake_kubectl(tmp_path, "time.sleep(60)")
    with pytest.raises(PortForwardError, match="did not start"):
        PortForward(kubectl, "ns", "svc/x", 8080, context="kind-c").ensure()


@pytest.mark.parametrize(("line", "ports"), [
    ("Forwarding from 127.0.0.1:41234 -> 8080\n", (41234, 8080)),
    ("Forwarding from [::1]:41234 -> 8080", None),
    ("Handling connection for 41234", None),
    ("error: unable to forward port because pod is not running", None),
])
def test_kubectl_forwarding_lines_are_parsed_for_the_ipv4_port(line, ports):
    assert parse_forwarding_line(line) == ports

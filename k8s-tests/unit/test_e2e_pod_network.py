"""The network cut of a pod, on the commands it runs on the pod's node (no cluster needed)."""

from __future__ import annotations

import json

import pytest

from sluice_e2e import pod_network
from sluice_e2e.pod_network import RULE_COMMENT, PodNetworkCut

NETNS = "/var/run/netns/cni-1234"


@pytest.fixture
def node(monkeypatch):
    """The node's tools, faked: records each command and answers as crictl, ss and iptables would."""
    calls: list[list[str]] = []
    rules: list[str] = []

    def run(command):
        calls.append(list(command))
        if command[3:5] == ["crictl", "pods"]:
            return "sandbox-1\n"
        if command[3:5] == ["crictl", "inspectp"]:
            return json.dumps({"info": {"runtimeSpec": {"linux": {"namespaces": [
                {"type": "pid"}, {"type": "network", "path": NETNS}]}}}})
        tool, action = command[5:7]  # docker exec NODE nsenter --net=NETNS TOOL ...
        if tool == "ss":
            return "" if action == "-K" else "0 0 10.244.1.5:33220 10.96.0.9:5672\n0 0 10.244.1.5:33222 10.96.0.9:5672\n"
        if action == "-I":
            rules.append(RULE_COMMENT)
        elif action == "-D":
            rules.pop()
        return "-P OUTPUT ACCEPT\n" + "".join(f"-A OUTPUT ... --comment {r} ...\n" for r in rules)

    monkeypatch.setattr(pod_network, "_run", run)
    return calls, rules


def test_a_cut_refuses_the_port_then_resets_what_is_established_in_the_pods_network(node):
    calls, rules = node
    # Given a pod with two connections open to the port, When it is cut
    opened = PodNetworkCut("consumer-a", namespace="ns", node="kind-worker", port=5672).cut()
    # Then it reports both, and ran each command on the pod's node, in the pod's network namespace
    assert opened == 2 and rules == [RULE_COMMENT]
    assert all(c[:3] == ["docker", "exec", "kind-worker"] for c in calls)
    in_pod = [c[5:] for c in calls if c[3] == "nsenter"]
    assert all(c[4] == f"--net={NETNS}" for c in calls if c[3] == "nsenter")
    # first the count, then the rule that rejects with a reset, then ss destroying the established ones
    assert [c[0] for c in in_pod] == ["ss", "iptables", "ss"]
    assert in_pod[1][:7] == ["iptables", "-I", "OUTPUT", "-p", "tcp", "--dport", "5672"]
    assert in_pod[1][-4:] == ["-j", "REJECT", "--reject-with", "tcp-reset"]
    assert "-K" in in_pod[2]


def test_restore_removes_every_copy_of_the_rule_and_nothing_else(node):
    calls, rules = node
    cut = PodNetworkCut("consumer-a", namespace="ns", node="kind-worker", port=5672)
    cut.cut()
    cut.cut()
    cut.restore()
    assert rules == []
    cut.restore()  # nothing left to remove: no iptables -D
    assert sum(1 for c in calls if "-D" in c) == 2

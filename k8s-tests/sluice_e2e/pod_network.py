"""Cut a pod's TCP connections to one port, from the kind node it runs on, as a network failure would.

kind's nodes are containers, and a pod's network namespace is one of its node's (``crictl inspectp``
names it). In that namespace the cut

- adds an ``iptables`` rule that answers the pod's packets to the port with a TCP reset, so new
  connections are refused at once (``ECONNREFUSED``) and any packet on an old one resets it;
- destroys the established connections with ``ss -K``, which resets both ends at once: the broker
  sees them go and requeues what they held unacknowledged, the client sees its socket reset.

Removing the rule restores the network. This is why it is done this way: NetworkPolicies cannot
do it here. The suite's node image runs flannel, which enforces no NetworkPolicy (a deny-all egress
policy on the consumers left their connections to the broker open, new ones included), and a
policy is checked as a connection opens, so even where one is enforced it leaves established
connections alone.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

__all__ = ["PodNetworkCut"]

#: The comment on the cut's iptables rule, so the rule is found (and only it removed) again.
RULE_COMMENT = "sluice-e2e-network-cut"


def _run(command: Sequence[str]) -> str:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


class PodNetworkCut:
    """Cuts pod ``pod`` (in ``namespace``, on kind node ``node``) off port ``port``; ``docker`` runs the node's tools."""

    def __init__(self, pod: str, *, namespace: str, node: str, port: int, docker: str = "docker") -> None:
        self.pod = pod
        self.namespace = namespace
        self.port = port
        self._node = [docker, "exec", node]
        self._netns = ""

    def _in_pod_network(self, *command: str) -> list[str]:
        if not self._netns:
            self._netns = self._find_netns()
        return [*self._node, "nsenter", f"--net={self._netns}", *command]

    def _find_netns(self) -> str:
        sandbox_ids = _run([*self._node, "crictl", "pods", "--namespace", self.namespace, "--name", f"^{self.pod}$",
                            "--state", "ready", "-q"]).split()
        if len(sandbox_ids) != 1:
            raise RuntimeError(f"{len(sandbox_ids)} ready sandboxes of pod {self.pod} on its node, not one")
        sandbox = json.loads(_run([*self._node, "crictl", "inspectp", sandbox_ids[0]]))
        paths = [n.get("path", "") for n in sandbox["info"]["runtimeSpec"]["linux"]["namespaces"] if n["type"] == "network"]
        if not paths or not paths[0]:
            raise RuntimeError(f"pod {self.pod} has no network namespace of its own")
        return str(paths[0])

    def _rule(self, action: str) -> list[str]:
        return self._in_pod_network("iptables", action, "OUTPUT", "-p", "tcp", "--dport", str(self.port),
                                    "-m", "comment", "--comment", RULE_COMMENT, "-j", "REJECT", "--reject-with", "tcp-reset")

    def _established(self, *options: str) -> str:
        return _run(self._in_pod_network("ss", *options, "-H", "-t", "-n", "state", "established",
                                         "dport", "=", f":{self.port}"))

    def cut(self) -> int:
        """Refuse new connections to the port and reset the established ones; returns how many were open."""
        open_before = len(self._established().splitlines())
        _run(self._rule("-I"))
        # The rule resets a connection at its next packet (a busy one at once); ss resets the idle ones too.
        self._established("-K")
        return open_before

    def restore(self) -> None:
        """Remove the rule :meth:`cut` added (every copy of it); nothing to do when there is none."""
        listed = _run(self._in_pod_network("iptables", "-S", "OUTPUT"))
        for _ in range(listed.count(RULE_COMMENT)):
            _run(self._rule("-D"))

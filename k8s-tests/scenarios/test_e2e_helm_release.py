"""The Helm release itself: ``helm test`` passes, ``helm uninstall`` leaves only the broker's data.

Kind only (locally there is no release: the scenarios skip, saying so). Uninstalling runs last
(k8s-tests/conftest.py orders it), since it ends the shared deployment.
"""

from __future__ import annotations

import re

import pytest

from sluice_e2e.deployment import Deployment
from sluice_e2e.scenario import applicable


@pytest.mark.operations("helm_test")
def test_helm_test_passes(deployment: Deployment) -> None:
    output = applicable(deployment.helm_test)
    # helm prints one block per test pod: "TEST SUITE: <pod>", "Phase: Succeeded" or "Failed".
    assert re.search(r"^Phase:\s+Succeeded$", output, re.MULTILINE), output
    assert not re.search(r"^Phase:\s+Failed$", output, re.MULTILINE), output


@pytest.mark.uninstall
@pytest.mark.operations("uninstall")
def test_helm_uninstall_leaves_only_the_broker_volume_and_its_credentials(deployment: Deployment) -> None:
    left = applicable(deployment.uninstall)
    # The broker's PersistentVolumeClaim (data must survive an uninstall) and the credentials
    # Secret (helm.sh/resource-policy: keep: the volume's users were created with them) remain.
    assert sorted(kind for kind, _ in (item.split("/", 1) for item in left)) == ["PersistentVolumeClaim", "Secret"], left

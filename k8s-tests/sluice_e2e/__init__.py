"""The end-to-end suite's deployments: one interface, run on a kind cluster or as local processes.

Scenarios (``k8s-tests/scenarios``) talk only to :class:`~sluice_e2e.deployment.Deployment`;
:mod:`sluice_e2e.local` and :mod:`sluice_e2e.kind` implement it.
"""

from __future__ import annotations

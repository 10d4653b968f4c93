"""Fixtures of the chart tests: the real helm binaries.

Without helm (scripts/get-helm.sh could neither find nor install one) the tests skip with the
reason, except on CI (env CI set), where they fail.
"""

from __future__ import annotations

import pytest
from chartlib import CI, HelmUnavailable, find_helm


def _helm(major: int) -> str:
    try:
        return find_helm(major)
    except HelmUnavailable as e:
        if CI:
            pytest.fail(f"helm {major} is required on CI: {e}")
        pytest.skip(f"helm {major} not available here: {e}")


@pytest.fixture(scope="session")
def helm() -> str:
    """Helm 4, the default for every chart test."""
    return _helm(4)


@pytest.fixture(scope="session")
def helm3() -> str:
    """Helm 3, for the test that both majors render the same objects."""
    return _helm(3)

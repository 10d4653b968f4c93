"""Fixtures of the chart tests: the real helm binaries.

Without helm (scripts/get-helm.sh could neither find nor install one) the tests skip with the
reason, except on CI (env CI set), where they fail.
"""

from __future__ import annotations

import pytest
from chartlib import ToolUnavailable, find_helm, skip_or_fail


def _helm(major: int) -> str:
    try:
        return find_helm(major)
    except ToolUnavailable as e:
        skip_or_fail(f"helm {major} is not available: {e}")
        raise  # not reached: skip_or_fail raises


@pytest.fixture(scope="session")
def helm() -> str:
    """Helm 4, the default for every chart test."""
    return _helm(4)


@pytest.fixture(scope="session")
def helm3() -> str:
    """Helm 3, for the test that both majors render the same objects."""
    return _helm(3)

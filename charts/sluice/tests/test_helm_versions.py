"""Helm 3 and Helm 4 render the same objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chartlib import SCENARIOS, render

#: Keys of the generated Secret that are random on every render.
RANDOM_KEYS = {"password", "erlang-cookie", "management-url", "amqp-url"}


def comparable(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for doc in docs:
        if doc["kind"] == "Secret":
            doc = dict(doc, data={k: "<random>" if k in RANDOM_KEYS else v for k, v in doc["data"].items()})
        out[doc["kind"], doc["metadata"]["name"]] = doc
    return out


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_helm3_and_helm4_render_the_same_objects(helm, helm3, scenario: Path):
    assert comparable(render(helm3, scenario)) == comparable(render(helm, scenario))

"""values.schema.json covers every value, and helm refuses wrong values with a message naming them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from chartlib import CHART, render_error, values_table

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


@pytest.mark.parametrize(
    ("sets", "named"),
    [
        ({"typo": 1}, "typo"),
        ({"producer.replicaCount": "two"}, "replicaCount"),
        ({"consumer.defaults.sink.kind": "kafka"}, "kind"),
        ({"consumer.defaults.prefetch": 0}, "prefetch"),
        ({"consumer.groups": [{"name": "Bad_Name"}]}, "name"),
        ({"consumer.groups": [{"bindingKeys": ["#"]}]}, "name"),
        ({"consumer.groups": []}, "groups"),
        ({"config.retry.delays": ["1x"]}, "delays"),
        ({"config.topology.queueType": "stream"}, "queueType"),
        ({"config.topology.exchange": "amq.topic"}, "exchange"),
        ({"keda.protocol": "grpc"}, "protocol"),
        ({"rabbitmq.auth.username": "guest"}, "username"),
        ({"rabbitmq.replicas": 0}, "replicas"),
        ({"rabbitmq.persistence.size": "lots"}, "size"),
        ({"producer.image.pullPolicy": "Sometimes"}, "pullPolicy"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else None,
)
def test_schema_rejects_invalid_values_naming_them(helm, sets: dict[str, Any], named: str):
    error = render_error(helm, **sets)
    assert "schema" in error and named in error, error


def test_schema_lists_every_key_of_values_yaml():
    # Every mapping key in values.yaml is a property of its (resolved) schema node
    missing = []

    def walk(node: dict[str, Any], schema: dict[str, Any], path: str) -> None:
        schema = values_table.resolve(schema, SCHEMA)
        for key, value in node.items():
            child = schema.get("properties", {}).get(key)
            if child is None and schema.get("additionalProperties") is False:
                missing.append(path + key)
            elif child is not None and isinstance(value, dict):
                walk(value, child, f"{path}{key}.")

    walk(VALUES, SCHEMA, "")
    assert not missing, f"values without a schema entry: {missing}"


def test_schema_objects_with_listed_properties_refuse_unknown_keys():
    loose = []

    def walk(schema: dict[str, Any], path: str) -> None:
        schema = values_table.resolve(schema, SCHEMA)
        if "properties" in schema and schema.get("additionalProperties") is not False:
            loose.append(path or "<root>")
        for key, child in schema.get("properties", {}).items():
            walk(child, f"{path}{key}.")

    walk(SCHEMA, "")
    assert not loose, f"schema objects that accept typos: {loose}"


def test_chart_defaults_satisfy_the_schema():
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)

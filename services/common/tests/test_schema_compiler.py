"""The compiled fast path never accepts what jsonschema rejects (and, for what it compiles, agrees)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from sluice_common.schema_compiler import compile_schema
from sluice_common.validation import _formats

BUILTIN = {
    f.name[: -len(".json")]: json.loads(f.read_text("utf-8"))
    for f in resources.files("sluice_common").joinpath("schemas").iterdir()
    if f.name.endswith(".json")
}

#: JSON values, with the numbers, strings and date-times that sit near the built-in schemas' limits.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-200, 200), st.floats(-200, 200), st.floats(allow_nan=False),
    st.text(max_size=6), st.text(min_size=60, max_size=140),
    st.sampled_from(["2026-11-25T10:00:00Z", "2026-11-25T10:00:00", "2026-11-25 10:00:00+02:00", "yesterday",
                     "2026-02-30T10:00:00Z", "a1b2c3d", "0123456789abcdef0123456789abcdef01234567", ""]),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _documents(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Objects made of the schema's own property names (each maybe missing), values of any kind, extras."""
    names = list(schema.get("properties", {}))
    return st.one_of(
        json_values,
        st.fixed_dictionaries({}, optional={name: json_values for name in names}),
        st.builds(lambda d, extra: {**d, **extra},
                  st.fixed_dictionaries({}, optional={name: json_values for name in names}),
                  st.dictionaries(st.sampled_from(["x", "labels", *names]), json_values, max_size=2)),
    )


def _valid(schema: dict[str, Any], document: Any) -> bool:
    return not any(Draft202012Validator(schema, format_checker=_formats).iter_errors(document))


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_schema_compiles(name: str) -> None:
    assert compile_schema(BUILTIN[name], _formats) is not None


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_the_compiled_check_agrees_with_jsonschema_on_the_builtin_schemas(name: str) -> None:
    schema = BUILTIN[name]
    check = compile_schema(schema, _formats)
    assert check is not None

    @settings(max_examples=400, deadline=None)
    @given(_documents(schema))
    def agree(document: Any) -> None:
        assert check(document) == _valid(schema, document), document

    agree()


#: Schemas made only of the compiled keywords, nested, with bounds that sometimes make no sense.
subschemas = st.deferred(lambda: schemas)
schemas = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["object", "array", "string", "number", "integer", "boolean", "null"])
        | st.lists(st.sampled_from(["string", "number", "null", "integer"]), min_size=1, max_size=3, unique=True),
        "minimum": st.integers(-5, 5) | st.floats(-5, 5),
        "maximum": st.integers(-5, 5),
        "exclusiveMinimum": st.floats(-5, 5),
        "exclusiveMaximum": st.integers(-5, 5),
        "minLength": st.integers(0, 3),
        "maxLength": st.integers(0, 5),
        "pattern": st.sampled_from(["^a", "[0-9]", "^$", "b+"]),
        "format": st.sampled_from(["date-time", "no-such-format"]),
        "required": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True),
        "minProperties": st.integers(0, 2),
        "maxProperties": st.integers(0, 3),
        "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), st.booleans() | subschemas, max_size=2),
        "additionalProperties": st.booleans() | subschemas,
        "items": st.booleans() | subschemas,
        "title": st.just("annotation only"),
    },
)


@settings(max_examples=600, deadline=None)
@given(schemas, json_values | st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), json_values, max_size=4))
def test_a_compiled_check_never_accepts_what_jsonschema_rejects(schema: dict[str, Any], document: Any) -> None:
    check = compile_schema(schema, _formats)
    # fastjsonschema refuses a few contradictory schemas (required but not allowed): jsonschema judges those
    assume(check is not None)
    # For the keywords it compiles, it agrees both ways; soundness (True ⇒ valid) is what safety needs.
    assert check(document) == _valid(schema, document), (schema, document)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}},
        {"allOf": [{"type": "object"}]},
        {"enum": [1, 2]},
        {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
        {"type": "array", "prefixItems": [{"type": "string"}]},
        {"properties": {"a": {"const": 1}}},
        {"items": [{"type": "string"}]},
        {"type": "color"},
    ],
)
def test_a_schema_with_anything_else_is_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert compile_schema(schema, _formats) is None


def test_a_schema_fastjsonschema_refuses_is_left_to_jsonschema() -> None:
    assert compile_schema({"required": ["a"], "additionalProperties": False}, _formats) is None
    assert compile_schema({"type": "color"}, _formats) is None


def test_defaults_are_never_written_into_the_document() -> None:
    check = compile_schema({"properties": {"a": {"type": "integer", "default": 1}}}, _formats)
    assert check is not None
    document: dict[str, Any] = {}
    assert check(document) and document == {}

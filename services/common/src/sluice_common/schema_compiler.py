"""Compiles the common subset of JSON Schema into plain Python checks: the fast path of validation.

``jsonschema`` walks a schema generically for every document (about 30 µs for a small event here);
a compiled check is a few nested closures (about 2 µs). It only ever answers "valid": when it says
no, :class:`~sluice_common.validation.SchemaRegistry` asks ``jsonschema`` for the errors. So the
one property that matters is that a compiled check never accepts what ``jsonschema`` rejects:

- only the keywords below are compiled, each with ``jsonschema``'s semantics (Draft 2020-12: the
  type of a value decides which keywords apply; ``True`` is not a number; ``format`` goes to the
  same :class:`FormatChecker`);
- a schema with any other keyword, anywhere (``$ref``, ``allOf``, ``patternProperties``, ``enum``,
  ...), is not compiled at all: :func:`compile_schema` returns None and ``jsonschema`` does it all.
"""

from __future__ import annotations

import numbers
import operator
import re
from collections.abc import Callable
from typing import Any

from jsonschema import FormatChecker

__all__ = ["Check", "compile_schema"]

#: Returns True only for a document the schema accepts.
Check = Callable[[object], bool]

#: Keywords that only annotate: they never make a document invalid.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "default",
                          "deprecated", "readOnly", "writeOnly"})
_TYPES: dict[str, Callable[[object], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


class _NotCompiled(Exception):
    """The schema uses something this module does not compile."""


def compile_schema(schema: object, formats: FormatChecker) -> Check | None:
    """A fast check for ``schema``, or None when it uses a keyword this module does not compile."""
    try:
        return _compile(schema, formats)
    except _NotCompiled:
        return None


def _compile(schema: object, formats: FormatChecker) -> Check:
    if schema is True:
        return lambda _v: True
    if schema is False:
        return lambda _v: False
    if not isinstance(schema, dict):
        raise _NotCompiled
    checks: list[Check] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or keyword in ("properties", "additionalProperties"):
            continue
        builder = _KEYWORDS.get(keyword)
        if builder is None:
            raise _NotCompiled(keyword)
        checks.append(builder(value, formats))
    if "properties" in schema or "additionalProperties" in schema:
        checks.append(_object_properties(schema.get("properties", {}), schema.get("additionalProperties", True), formats))
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(check(v) for check in checks)


def _type(value: Any, _formats: FormatChecker) -> Check:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or any(n not in _TYPES for n in names):
        raise _NotCompiled("type")
    tests = [_TYPES[n] for n in names]
    if len(tests) == 1:
        return tests[0]
    return lambda v: any(test(v) for test in tests)


def _number(value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _NotCompiled("a bound that is not a number")
    return value


def _is_number(v: object) -> bool:
    # As jsonschema decides whether a bound applies: any Number but a bool (wider than the type check,
    # on purpose: a Decimal below the minimum must still fail here).
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def _bound(fails: Callable[[Any, Any], bool]) -> Callable[[Any, FormatChecker], Check]:
    """``minimum`` and friends: a number (only) fails when ``fails(number, bound)``."""

    def build(value: Any, _formats: FormatChecker) -> Check:
        bound = _number(value)
        return lambda v: not _is_number(v) or not fails(v, bound)

    return build


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _NotCompiled("a count that is not an integer")
    return value


def _size(applies: type, fails: Callable[[int, int], bool]) -> Callable[[Any, FormatChecker], Check]:
    """``minLength`` and friends: a ``str`` (or ``dict``) fails when ``fails(len(value), bound)``."""

    def build(value: Any, _formats: FormatChecker) -> Check:
        bound = _count(value)
        return lambda v: not isinstance(v, applies) or not fails(len(v), bound)  # type: ignore[arg-type]

    return build


def _pattern(value: Any, _formats: FormatChecker) -> Check:
    if not isinstance(value, str):
        raise _NotCompiled("pattern")
    search = re.compile(value).search  # jsonschema uses re.search too
    return lambda v: not isinstance(v, str) or search(v) is not None


def _format(value: Any, formats: FormatChecker) -> Check:
    if not isinstance(value, str):
        raise _NotCompiled("format")
    return lambda v: formats.conforms(v, value)


def _required(value: Any, _formats: FormatChecker) -> Check:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise _NotCompiled("required")
    names = tuple(value)
    return lambda v: not isinstance(v, dict) or all(name in v for name in names)


def _items(value: Any, formats: FormatChecker) -> Check:
    check = _compile(value, formats)  # 2020-12: one schema for every item (arrays of schemas are prefixItems)
    return lambda v: not isinstance(v, list) or all(check(item) for item in v)


def _object_properties(properties: Any, additional: Any, formats: FormatChecker) -> Check:
    if not isinstance(properties, dict):
        raise _NotCompiled("properties")
    known = {name: _compile(sub, formats) for name, sub in properties.items()}
    extra = _compile(additional, formats)
    extra_always_ok = additional is True

    def check(v: object) -> bool:
        if not isinstance(v, dict):
            return True
        for name, item in v.items():
            sub = known.get(name)
            if sub is not None:
                if not sub(item):
                    return False
            elif not extra_always_ok and not extra(item):
                return False
        return True

    return check


_KEYWORDS: dict[str, Callable[[Any, FormatChecker], Check]] = {
    "type": _type,
    "minimum": _bound(operator.lt),
    "maximum": _bound(operator.gt),
    "exclusiveMinimum": _bound(operator.le),
    "exclusiveMaximum": _bound(operator.ge),
    "minLength": _size(str, operator.lt),
    "maxLength": _size(str, operator.gt),
    "pattern": _pattern,
    "format": _format,
    "required": _required,
    "minProperties": _size(dict, operator.lt),
    "maxProperties": _size(dict, operator.gt),
    "items": _items,
}

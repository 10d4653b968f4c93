"""Hypothesis strategies for hostile input: JSON values and AMQP header values a forger could send."""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["header_values", "json_objects", "json_values"]

#: JSON values as any client could send them (finite floats: NaN and Infinity are not JSON).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
#: JSON objects: what an event's ``data`` must be.
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)
#: Values of the types AMQP header tables carry (pika decodes them to these), NaN included.
header_values = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=30)
    | st.binary(max_size=30) | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
)

"""Hypothesis strategies for fuzzing: arbitrary JSON, mutations of valid bodies, mutations of bytes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Strings that reach interesting branches: operators, reserved namespaces, path syntax, limits.
SPECIAL_STRINGS = [
    "",
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$and",
    "$or",
    "$not",
    "__default__",
    "../x",
    "/",
    "\x00",
    "a" * 513,
    "é",
    "🙂",
    "\ud800",
    "NaN",
    "true",
    "null",
    "0",
    "-1",
    "id",
    "values",
    "metadata",
    "namespace",
    "filter",
    "topK",
    "vector",
    "sparseValues",
    "indices",
    "dense",
    "sparse",
    "docs",
    "cosine",
    "euclidean",
    "dotproduct",
    "serverless",
    "pod",
    "aws",
    "pinecone-rag-bm25",
    "pinecone-rag-bm25-rerank",
    "pinecone-sparse-english-v0",
    "passage",
    "query",
]
# all-minilm-l6-v2 is left out on purpose: loading a transformer per fuzz run is too slow for the profile.

_numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, -1, 2**31, 2**63, 10_000, 10_001, 1e308, -0.0])
)
_strings = st.text(max_size=40) | st.sampled_from(SPECIAL_STRINGS)
scalars = st.none() | st.booleans() | _numbers | _strings

json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(_strings, children, max_size=6),
    max_leaves=30,
)
"""Arbitrary JSON-like values (including NaN, huge integers and lone surrogates)."""


def dumps(value: Any) -> bytes:
    """JSON text for any value the strategies make (NaN and lone surrogates included, on purpose)."""
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw: st.DrawFn, valid: Any) -> Any:
    """``valid`` with one to four random edits: replace, delete or add a member anywhere, or retype it."""
    value = json.loads(json.dumps(valid))  # a deep copy
    for _ in range(draw(st.integers(1, 4))):
        value = _edit(draw, value)
    return value


def _edit(draw: st.DrawFn, value: Any) -> Any:
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["recurse", "replace", "delete", "add"]))
        if action == "recurse":
            value[key] = _edit(draw, value[key])
        elif action == "replace":
            value[key] = draw(json_values)
        elif action == "delete":
            del value[key]
        else:
            value[draw(_strings)] = draw(json_values)
        return value
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        action = draw(st.sampled_from(["recurse", "replace", "delete", "duplicate"]))
        if action == "recurse":
            value[index] = _edit(draw, value[index])
        elif action == "replace":
            value[index] = draw(json_values)
        elif action == "delete":
            del value[index]
        else:
            value.extend(value[: draw(st.integers(1, 50))] * draw(st.integers(1, 20)))
        return value
    return draw(st.sampled_from([[value], {"x": value}, None, draw(json_values)]))


def bodies(valid: list[Any]) -> st.SearchStrategy[bytes]:
    """Request bodies: mutated valid ones mostly, arbitrary JSON, and raw bytes."""
    return st.one_of(
        st.sampled_from(valid).flatmap(mutated).map(dumps),
        st.sampled_from(valid).map(dumps),
        json_values.map(dumps),
        st.binary(max_size=200),
        st.sampled_from(valid).map(dumps).flatmap(mutated_bytes),
    )


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with bytes flipped, inserted, deleted, or cut short."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
        if not buffer:
            buffer.extend(draw(st.binary(min_size=1, max_size=8)))
            continue
        at = draw(st.integers(0, len(buffer) - 1))
        if action == "flip":
            buffer[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del buffer[at : at + draw(st.integers(1, 8))]
        elif action == "truncate":
            del buffer[at:]
        else:
            buffer[at:at] = bytes(buffer[at : at + draw(st.integers(1, 16))]) * draw(st.integers(1, 64))
    return bytes(buffer)

"""Shared strategies, oracles and comparisons of the codec property tests (test_codec_*.py).

The generated message classes (upb) are the oracle: encoders must produce bytes that parse to the message
built with them from the same data (byte-identical when no Struct map is involved), and decoders must read
whatever they serialize, field by field and bit for bit. Malformed input must raise ValueError, never
another exception.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pinecone_rag.wire import messages as pb
from pinecone_rag.wire.codec import (
    DecodedFetch,
    DecodedMatch,
    DecodedQuery,
    DecodedVector,
)
from pinecone_rag.wire.structs import struct_to_dict

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- a minimal, independent protobuf writer for hand-made wire data --------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def f_len(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def f_varint(field: int, value: int) -> bytes:
    return key(field, 0) + varint(value)


def f_fixed32(field: int, raw: bytes) -> bytes:
    assert len(raw) == 4
    return key(field, 5) + raw


def f_fixed64(field: int, raw: bytes) -> bytes:
    assert len(raw) == 8
    return key(field, 1) + raw


# --- strategies ------------------------------------------------------------------------------------------

ids = st.text(min_size=1, max_size=64)
namespaces = st.text(max_size=24)
f32 = st.floats(width=32, allow_nan=False)
f64 = st.floats(allow_nan=False)
uint32 = st.integers(0, 2**32 - 1)
dims = st.integers(0, 64)

metadata_values = st.one_of(
    st.text(max_size=16),
    f64,
    st.integers(-(2**53), 2**53),
    st.booleans(),
    st.lists(st.text(max_size=8), max_size=4),
)
flat_metadata = st.dictionaries(st.text(max_size=12), metadata_values, max_size=5)

# What a Struct can hold on the way back: nulls, nested structs, lists of anything.
json_values = st.recursive(
    st.none() | st.booleans() | f64 | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
struct_dicts = st.dictionaries(st.text(max_size=10), json_values, max_size=5)


@st.composite
def sparse_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    size = draw(st.integers(0, 12))
    indices = np.array(draw(st.lists(uint32, min_size=size, max_size=size)), dtype=np.uint32)
    values = draw(hnp.arrays(np.float32, size, elements=f32))
    return indices, values


@st.composite
def upsert_batches(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(0, 6))
    dim = draw(dims)
    record_ids = draw(st.lists(ids, min_size=count, max_size=count))
    dense = draw(st.none() | hnp.arrays(np.float32, (count, dim), elements=f32))
    sparse = draw(st.none() | st.lists(st.none() | sparse_pairs(), min_size=count, max_size=count))
    metadata = draw(st.none() | st.lists(st.none() | flat_metadata, min_size=count, max_size=count))
    return {
        "ids": record_ids,
        "dense": dense,
        "sparse": sparse,
        "metadata": metadata,
        "namespace": draw(namespaces),
    }


def float_list(draw: st.DrawFn, size: int) -> list[float]:
    return [float(x) for x in draw(hnp.arrays(np.float32, size, elements=f32))]


@st.composite
def scored_vectors(draw: st.DrawFn, dim: int) -> Any:
    match = pb.ScoredVector(id=draw(ids), score=draw(f32))
    if draw(st.booleans()):  # include_values
        match.values.extend(float_list(draw, dim))
    if draw(st.booleans()):
        indices, values = draw(sparse_pairs())
        match.sparse_values.SetInParent()
        match.sparse_values.indices.extend(indices.tolist())
        match.sparse_values.values.extend(values.tolist())
    if draw(st.booleans()):  # include_metadata
        match.metadata.SetInParent()
        match.metadata.update(draw(struct_dicts))
    return match


def usage_of(draw: st.DrawFn, message: Any) -> None:
    if draw(st.booleans()):
        message.usage.SetInParent()
        if draw(st.booleans()):
            message.usage.read_units = draw(uint32)


@st.composite
def query_responses(draw: st.DrawFn) -> Any:
    dim = draw(dims)
    count = draw(st.integers(0, 6))
    mixed = draw(st.booleans())  # matches of different lengths take the non-matrix path
    response = pb.QueryResponse(namespace=draw(namespaces))
    for _ in range(count):
        size = draw(dims) if mixed else dim
        response.matches.add().CopyFrom(draw(scored_vectors(size)))
    if draw(st.booleans()):  # the deprecated field is skipped, whatever it holds
        response.results.add().matches.add().CopyFrom(draw(scored_vectors(dim)))
    usage_of(draw, response)
    return response


@st.composite
def vectors(draw: st.DrawFn, dim: int) -> Any:
    vector = pb.Vector(id=draw(ids))
    if draw(st.booleans()):
        vector.values.extend(float_list(draw, dim))
    if draw(st.booleans()):
        indices, values = draw(sparse_pairs())
        vector.sparse_values.SetInParent()
        vector.sparse_values.indices.extend(indices.tolist())
        vector.sparse_values.values.extend(values.tolist())
    if draw(st.booleans()):
        vector.metadata.SetInParent()
        vector.metadata.update(draw(struct_dicts))
    return vector


@st.composite
def fetch_responses(draw: st.DrawFn, cls: Any) -> Any:
    dim = draw(dims)
    mixed = draw(st.booleans())
    response = cls(namespace=draw(namespaces))
    for record_key in draw(st.lists(ids, max_size=5, unique=True)):
        vector = draw(vectors(draw(dims) if mixed else dim))
        if draw(st.booleans()):
            vector.id = record_key  # what the server sends; the other case checks both are kept apart
        response.vectors[record_key].CopyFrom(vector)
    usage_of(draw, response)
    if cls is pb.FetchByMetadataResponse and draw(st.booleans()):
        response.pagination.SetInParent()
        response.pagination.next = draw(st.text(max_size=20))
    return response


@st.composite
def unknown_fields(draw: st.DrawFn) -> bytes:
    """Fields whose numbers no message here uses (above 20), of every skippable wire type."""
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        field = draw(st.integers(21, 2**29 - 1))
        wire = draw(st.sampled_from((0, 1, 2, 5)))
        if wire == 0:
            out += f_varint(field, draw(st.integers(0, 2**64 - 1)))
        elif wire == 1:
            out += f_fixed64(field, draw(st.binary(min_size=8, max_size=8)))
        elif wire == 2:
            out += f_len(field, draw(st.binary(max_size=40)))
        else:
            out += f_fixed32(field, draw(st.binary(min_size=4, max_size=4)))
    return out


# --- comparisons -----------------------------------------------------------------------------------------


def assert_same_python(actual: Any, expected: Any) -> None:
    """Equal JSON-like values with equal types; floats compared bit for bit (so -0.0 != 0.0)."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, float):
        assert struct.pack("<d", actual) == struct.pack("<d", expected)
    elif isinstance(expected, dict):
        assert list(actual) == list(expected) or set(actual) == set(expected)
        for name, value in expected.items():
            assert_same_python(actual[name], value)
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            assert_same_python(got, want)
    else:
        assert actual == expected


def assert_floats(actual: Any, expected: Any) -> None:
    """A decoded float32 array against a repeated float field; None stands for empty."""
    want = np.array(list(expected), dtype=np.float32)
    if want.size == 0:
        assert actual is None
        return
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == np.dtype(np.float32)
    assert actual.shape == want.shape
    assert actual.tobytes() == want.tobytes()


def assert_sparse(actual: Any, message: Any) -> None:
    if not message.HasField("sparse_values"):
        assert actual is None
        return
    indices, values = actual
    assert indices.dtype == np.dtype(np.uint32)
    assert values.dtype == np.dtype(np.float32)
    assert indices.tobytes() == np.array(list(message.sparse_values.indices), dtype=np.uint32).tobytes()
    assert values.tobytes() == np.array(list(message.sparse_values.values), dtype=np.float32).tobytes()


def assert_metadata(actual: Any, message: Any) -> None:
    if not message.HasField("metadata"):
        assert actual is None
        return
    assert_same_python(actual, struct_to_dict(message.metadata))


def read_units_of(message: Any) -> int | None:
    if message.HasField("usage") and message.usage.HasField("read_units"):
        return int(message.usage.read_units)
    return None


def assert_query(actual: DecodedQuery, message: Any) -> None:
    assert isinstance(actual, DecodedQuery)
    assert actual.namespace == message.namespace
    assert actual.read_units == read_units_of(message)
    assert len(actual.matches) == len(message.matches)
    for got, want in zip(actual.matches, message.matches, strict=True):
        assert isinstance(got, DecodedMatch)
        assert got.id == want.id
        assert type(got.score) is float
        assert np.float32(got.score).tobytes() == np.float32(want.score).tobytes()
        assert_floats(got.values, want.values)
        assert_sparse(got.sparse, want)
        assert_metadata(got.metadata, want)


def assert_fetch(actual: DecodedFetch, message: Any, *, paginated: bool) -> None:
    assert isinstance(actual, DecodedFetch)
    assert actual.namespace == message.namespace
    assert actual.read_units == read_units_of(message)
    expected_token = (message.pagination.next or None) if paginated else None
    assert actual.next_token == expected_token
    assert set(actual.vectors) == set(message.vectors)
    for record_key, want in message.vectors.items():
        got = actual.vectors[record_key]
        assert isinstance(got, DecodedVector)
        assert got.id == want.id
        assert_floats(got.values, want.values)
        assert_sparse(got.sparse, want)
        assert_metadata(got.metadata, want)


# --- oracles for the encoders ----------------------------------------------------------------------------


def oracle_upsert(batch: dict[str, Any]) -> Any:
    records = []
    for i, record_id in enumerate(batch["ids"]):
        vector = pb.Vector(id=record_id)
        if batch["dense"] is not None:
            vector.values.extend(batch["dense"][i].tolist())
        if batch["sparse"] is not None and batch["sparse"][i] is not None:
            indices, values = batch["sparse"][i]
            vector.sparse_values.SetInParent()
            vector.sparse_values.indices.extend(indices.tolist())
            vector.sparse_values.values.extend(values.tolist())
        if batch["metadata"] is not None and batch["metadata"][i] is not None:
            vector.metadata.SetInParent()
            vector.metadata.update(batch["metadata"][i])
        records.append(vector)
    return pb.UpsertRequest(vectors=records, namespace=batch["namespace"])


def has_struct(batch: dict[str, Any]) -> bool:
    return batch["metadata"] is not None and any(md for md in batch["metadata"] if md)

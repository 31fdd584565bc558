"""Property tests of the hand-written protobuf codec (pinecone_rag.wire.codec) against the generated classes.

The generated message classes (upb) are the oracle: encoders must produce bytes that parse to the message
built with them from the same data (byte-identical when no Struct map is involved), and decoders must read
whatever they serialize, field by field and bit for bit. Malformed input must raise ValueError, never
another exception.
"""

from __future__ import annotations

import contextlib
import math
import struct
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pinecone_rag.wire import messages as pb
from pinecone_rag.wire.codec import (
    DecodedFetch,
    DecodedMatch,
    DecodedQuery,
    DecodedVector,
    decode_fetch_by_metadata_response,
    decode_fetch_response,
    decode_query_response,
    encode_fetch_request,
    encode_query_request,
    encode_upsert_request,
)
from pinecone_rag.wire.structs import struct_to_dict

if TYPE_CHECKING:
    from collections.abc import Callable

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


# --- encoders --------------------------------------------------------------------------------------------


@SETTINGS
@given(upsert_batches())
def test_upsert_matches_generated(batch: dict[str, Any]) -> None:
    data = encode_upsert_request(**batch)
    assert isinstance(data, bytes)
    expected = oracle_upsert(batch)
    parsed = pb.UpsertRequest.FromString(data)
    assert parsed == expected
    if not has_struct(batch):
        assert data == expected.SerializeToString()
    for i, vector in enumerate(parsed.vectors):
        if batch["dense"] is not None:
            want = batch["dense"][i]
            got = np.array(list(vector.values), dtype=np.float32)
            assert got.tobytes() == want.tobytes()
        if batch["metadata"] is not None and batch["metadata"][i] is not None:
            # Numbers go out as doubles (number_value), booleans stay booleans.
            for name, value in batch["metadata"][i].items():
                kind = vector.metadata.fields[name].WhichOneof("kind")
                if isinstance(value, bool):
                    assert kind == "bool_value"
                elif isinstance(value, (int, float)):
                    assert kind == "number_value"


@FEW
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(0, 5), dims), elements=f32),
    st.sampled_from(("C", "F", "T", "be")),
)
def test_upsert_accepts_any_float_dtype_and_layout(matrix: np.ndarray, layout: str) -> None:
    reference = encode_upsert_request(
        [f"id{i}" for i in range(len(matrix))], matrix.astype(np.float32), None, None
    )
    if layout == "F":
        dense: np.ndarray = np.asfortranarray(matrix)
    elif layout == "T":
        dense = np.ascontiguousarray(matrix.T).T  # a transposed view: neither C nor F order of the data
    elif layout == "be":
        dense = matrix.astype(">f4")
    else:
        dense = matrix
    assert encode_upsert_request([f"id{i}" for i in range(len(matrix))], dense, None, None) == reference


def test_upsert_slices_of_a_larger_matrix() -> None:
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((10, 16), dtype=np.float32)
    view = matrix[2:7, ::2]  # non-contiguous rows and columns
    data = encode_upsert_request([str(i) for i in range(5)], view, None, None, namespace="n")
    parsed = pb.UpsertRequest.FromString(data)
    for i, vector in enumerate(parsed.vectors):
        assert np.array(list(vector.values), dtype=np.float32).tobytes() == view[i].tobytes()


def test_upsert_preserves_float_bits() -> None:
    """NaN payloads, signalling NaNs, infinities, -0.0 and subnormals go out as their exact bits."""
    bits = np.array(
        [0x7FC00001, 0x7F800001, 0xFFBFFFFF, 0x7F800000, 0xFF800000, 0x80000000, 0x00000001, 0x3F800000],
        dtype=np.uint32,
    )
    dense = bits.view(np.float32).reshape(1, -1)
    data = encode_upsert_request(["x"], dense, None, None)
    assert data == f_len(1, f_len(1, b"x") + f_len(2, bits.astype("<u4").tobytes()))


@SETTINGS
@given(
    vector=st.none() | hnp.arrays(np.float32, dims, elements=f32),
    top_k=uint32,
    namespace=namespaces,
    query_filter=st.none() | struct_dicts,
    include_values=st.booleans(),
    include_metadata=st.booleans(),
    sparse=st.none() | sparse_pairs(),
    record_id=st.none() | st.text(max_size=20),
)
def test_query_request_matches_generated(
    vector: np.ndarray | None,
    top_k: int,
    namespace: str,
    query_filter: dict[str, Any] | None,
    include_values: bool,
    include_metadata: bool,
    sparse: tuple[np.ndarray, np.ndarray] | None,
    record_id: str | None,
) -> None:
    data = encode_query_request(
        vector,
        top_k,
        namespace,
        filter=query_filter,
        include_values=include_values,
        include_metadata=include_metadata,
        sparse=sparse,
        record_id=record_id,
    )
    expected = pb.QueryRequest(
        namespace=namespace,
        top_k=top_k,
        include_values=include_values,
        include_metadata=include_metadata,
        id=record_id or "",
    )
    if vector is not None:
        expected.vector.extend(vector.tolist())
    if query_filter is not None:
        expected.filter.SetInParent()
        expected.filter.update(query_filter)
    if sparse is not None:
        expected.sparse_vector.SetInParent()
        expected.sparse_vector.indices.extend(sparse[0].tolist())
        expected.sparse_vector.values.extend(sparse[1].tolist())
    assert pb.QueryRequest.FromString(data) == expected
    if not query_filter:
        assert data == expected.SerializeToString()


@SETTINGS
@given(st.lists(st.text(max_size=20), max_size=8), namespaces)
def test_fetch_request_is_byte_identical(record_ids: list[str], namespace: str) -> None:
    expected = pb.FetchRequest(ids=record_ids, namespace=namespace).SerializeToString()
    assert encode_fetch_request(record_ids, namespace) == expected


def test_encoder_errors() -> None:
    dense = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        encode_upsert_request(["a"], dense, None, None)
    with pytest.raises(ValueError, match="shape"):
        encode_upsert_request(["a", "b"], np.zeros(3, dtype=np.float32), None, None)
    with pytest.raises(ValueError, match="entries"):
        encode_upsert_request(["a", "b"], dense, [None], None)
    with pytest.raises(ValueError, match="entries"):
        encode_upsert_request(["a", "b"], dense, None, [None])
    with pytest.raises(ValueError, match="length"):
        encode_upsert_request(["a"], None, [(np.array([1, 2]), np.array([1.0]))], None)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        encode_upsert_request(["a"], None, [(np.array([-1]), np.array([1.0]))], None)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        encode_upsert_request(["a"], None, [(np.array([2**32]), np.array([1.0]))], None)
    with pytest.raises(TypeError):
        encode_upsert_request(["a"], None, [(np.array([0.5]), np.array([1.0]))], None)
    with pytest.raises(TypeError):
        encode_upsert_request([1], None, None, None)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        encode_upsert_request(["a"], None, None, [{"k": object()}])
    with pytest.raises(TypeError):
        encode_upsert_request(["a"], None, None, [{1: "v"}])  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="double"):
        encode_upsert_request(["a"], None, None, [{"k": 10**400}])
    with pytest.raises(ValueError, match="top_k"):
        encode_query_request(None, -1)
    with pytest.raises(ValueError, match="top_k"):
        encode_query_request(None, 2**32)
    nested: dict[str, Any] = {}
    deep = nested
    for _ in range(200):
        deep["k"] = {}
        deep = deep["k"]
    with pytest.raises(ValueError, match="deeper"):
        encode_query_request(None, 1, filter=nested)


def test_metadata_numpy_scalars_and_sequences() -> None:
    metadata = {"f": np.float32(0.5), "i": np.int64(3), "b": np.bool_(True), "t": ("x", "y"), "n": None}
    parsed = pb.UpsertRequest.FromString(encode_upsert_request(["a"], None, None, [metadata]))
    assert struct_to_dict(parsed.vectors[0].metadata) == {
        "f": 0.5,
        "i": 3.0,
        "b": True,
        "t": ["x", "y"],
        "n": None,
    }


def test_upsert_of_more_than_2_mb() -> None:
    rng = np.random.default_rng(1)
    dense = rng.standard_normal((1000, 768), dtype=np.float32)
    record_ids = [f"доку-{i}-ß" for i in range(1000)]  # non-ASCII: lengths are UTF-8 bytes
    data = encode_upsert_request(record_ids, dense, None, None, namespace="ns")
    assert len(data) > 3_000_000
    expected = pb.UpsertRequest(
        vectors=[pb.Vector(id=i, values=row) for i, row in zip(record_ids, dense.tolist(), strict=True)],
        namespace="ns",
    )
    assert data == expected.SerializeToString()


# --- decoders --------------------------------------------------------------------------------------------


@SETTINGS
@given(query_responses())
def test_query_response_decodes_like_generated(message: Any) -> None:
    assert_query(decode_query_response(message.SerializeToString()), message)


@SETTINGS
@given(fetch_responses(pb.FetchResponse))
def test_fetch_response_decodes_like_generated(message: Any) -> None:
    assert_fetch(decode_fetch_response(message.SerializeToString()), message, paginated=False)


@SETTINGS
@given(fetch_responses(pb.FetchByMetadataResponse))
def test_fetch_by_metadata_response_decodes_like_generated(message: Any) -> None:
    data = message.SerializeToString()
    assert_fetch(decode_fetch_by_metadata_response(data), message, paginated=True)


@SETTINGS
@given(query_responses(), st.data())
def test_unknown_fields_are_skipped_in_query_responses(message: Any, data: st.DataObject) -> None:
    for match in message.matches:  # inside every match: the generated class keeps and re-serializes them
        match.MergeFromString(data.draw(unknown_fields()))
        if match.HasField("sparse_values"):
            match.sparse_values.MergeFromString(data.draw(unknown_fields()))
        if match.HasField("metadata"):
            match.metadata.MergeFromString(data.draw(unknown_fields()))
    if message.HasField("usage"):
        message.usage.MergeFromString(data.draw(unknown_fields()))
    wire = data.draw(unknown_fields()) + message.SerializeToString() + data.draw(unknown_fields())
    assert_query(decode_query_response(wire), message)


@SETTINGS
@given(fetch_responses(pb.FetchByMetadataResponse), st.data())
def test_unknown_fields_are_skipped_in_fetch_responses(message: Any, data: st.DataObject) -> None:
    for vector in message.vectors.values():
        vector.MergeFromString(data.draw(unknown_fields()))
    if message.HasField("pagination"):
        message.pagination.MergeFromString(data.draw(unknown_fields()))
    wire = message.SerializeToString() + data.draw(unknown_fields())
    assert_fetch(decode_fetch_by_metadata_response(wire), message, paginated=True)
    # The same bytes minus pagination are a FetchResponse, where field 4 is unknown.
    plain = pb.FetchResponse.FromString(wire)
    assert_fetch(decode_fetch_response(wire), plain, paginated=False)


def check_against_oracle(wire: bytes, cls: Any, decoder: Any, compare: Any) -> None:
    """The decoder fails with ValueError exactly when the generated parser fails, else agrees with it."""
    try:
        expected = cls.FromString(wire)
    except DecodeError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            decoder(wire)
        return
    compare(decoder(wire), expected)


@FEW
@given(query_responses())
def test_truncated_query_responses(message: Any) -> None:
    wire = message.SerializeToString()
    cuts = (
        range(len(wire))
        if len(wire) <= 600
        else sorted({*range(0, len(wire), len(wire) // 300), len(wire) - 1})
    )
    for cut in cuts:
        check_against_oracle(wire[:cut], pb.QueryResponse, decode_query_response, assert_query)


@FEW
@given(fetch_responses(pb.FetchByMetadataResponse))
def test_truncated_fetch_responses(message: Any) -> None:
    wire = message.SerializeToString()
    cuts = (
        range(len(wire))
        if len(wire) <= 600
        else sorted({*range(0, len(wire), len(wire) // 300), len(wire) - 1})
    )

    def compare(actual: DecodedFetch, expected: Any) -> None:
        assert_fetch(actual, expected, paginated=True)

    for cut in cuts:
        check_against_oracle(
            wire[:cut], pb.FetchByMetadataResponse, decode_fetch_by_metadata_response, compare
        )


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_raises_value_error_or_decodes(garbage: bytes) -> None:
    for decoder in (decode_query_response, decode_fetch_response, decode_fetch_by_metadata_response):
        with contextlib.suppress(ValueError):
            decoder(garbage)
        with contextlib.suppress(ValueError):  # a garbage match, entry or namespace
            decoder(f_len(2, garbage) + f_len(1, garbage))


# --- wire-level cases, checked against the generated parser where it has an opinion ----------------------


def f32_bytes(*values: float) -> bytes:
    return np.array(values, dtype="<f4").tobytes()


def packed_uint32(*values: int) -> bytes:
    return b"".join(varint(v) for v in values)


def test_unpacked_and_split_repeated_fields() -> None:
    """Repeated scalars may come unpacked, packed, or in several runs; all of them concatenate."""
    sparse = (
        f_varint(1, 3)
        + f_len(1, packed_uint32(300, 2**32 - 1))
        + f_fixed32(2, f32_bytes(0.25))
        + f_len(2, f32_bytes(1.5, -2.0))
        + f_varint(1, 70000)
    )
    match = (
        f_len(1, "é".encode())
        + f_fixed32(3, f32_bytes(1.0))
        + f_len(3, f32_bytes(2.0, 3.0))
        + f_fixed32(3, f32_bytes(4.0))
        + f_fixed32(2, f32_bytes(0.75))
        + f_len(5, sparse)
    )
    wire = f_len(2, match) + f_len(3, b"ns")
    expected = pb.QueryResponse.FromString(wire)
    decoded = decode_query_response(wire)
    assert_query(decoded, expected)
    assert decoded.matches[0].values is not None
    assert decoded.matches[0].values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert decoded.matches[0].sparse is not None
    assert decoded.matches[0].sparse[0].tolist() == [3, 300, 2**32 - 1, 70000]

    vector = f_fixed32(2, f32_bytes(1.0)) + f_len(2, f32_bytes(2.0)) + f_len(1, b"k")
    fetch = f_len(1, f_len(1, b"k") + f_len(2, vector))
    assert_fetch(decode_fetch_response(fetch), pb.FetchResponse.FromString(fetch), paginated=False)


def test_repeated_message_fields_merge() -> None:
    """A singular message field sent twice merges, as protobuf parsers do; a repeated map key replaces."""
    first = f_len(4, f_len(1, f_len(1, b"a") + f_len(2, f_len(3, b"x"))))  # metadata {"a": "x"}
    second = f_len(4, f_len(1, f_len(1, b"b") + f_len(2, f_fixed64(2, struct.pack("<d", 2.0)))))
    sparse_a = f_len(5, f_len(1, packed_uint32(1)) + f_len(2, f32_bytes(0.5)))
    sparse_b = f_len(5, f_len(1, packed_uint32(2)) + f_len(2, f32_bytes(0.25)))
    usage = f_len(4, f_varint(1, 7)) + f_len(4, b"")  # the second usage leaves read_units alone
    wire = f_len(2, f_len(1, b"id") + first + sparse_a + second + sparse_b + f_len(1, b"id2")) + usage
    check_against_oracle(wire, pb.QueryResponse, decode_query_response, assert_query)
    decoded = decode_query_response(wire)
    assert decoded.read_units == 7
    assert decoded.matches[0].id == "id2"
    assert decoded.matches[0].metadata == {"a": "x", "b": 2.0}

    # A Struct value sent in several occurrences within one entry merges (struct into struct, list into
    # list); a member of the oneof in between resets it.
    struct_a = f_len(5, f_len(1, f_len(1, b"p") + f_len(2, f_len(3, b"1"))))
    struct_b = f_len(5, f_len(1, f_len(1, b"q") + f_len(2, f_len(3, b"2"))))
    list_a = f_len(6, f_len(1, f_varint(4, 1)))
    list_b = f_len(6, f_len(1, f_varint(1, 0)))
    string, number = f_len(3, b"s"), f_fixed64(2, struct.pack("<d", 1.5))
    cases = [
        [struct_a, struct_b],
        [list_a, list_b],
        [struct_a, string, struct_b],
        [list_a, struct_a],
        [string, number],
    ]
    for parts in [*cases, []]:
        one_value = f_len(1, f_len(1, b"k") + f_len(2, b"".join(parts)))
        split_value = f_len(1, f_len(1, b"k") + b"".join(f_len(2, part) for part in parts))
        for entry in (one_value, split_value):
            check_against_oracle(
                f_len(2, f_len(4, entry)), pb.QueryResponse, decode_query_response, assert_query
            )

    # Two occurrences of one map entry's value merge; a key sent twice keeps its last entry.
    vector_a = f_len(1, b"k") + f_len(2, f_len(1, b"i") + f_len(2, f32_bytes(1.0)))
    vector_b = f_len(1, b"k") + f_len(2, f_len(2, f32_bytes(2.0)))
    vector_c = f_len(1, b"k") + f_len(2, f_len(1, b"j"))
    for wire in (
        f_len(1, vector_a + f_len(2, f_len(2, f32_bytes(2.0)))),
        f_len(1, vector_a) + f_len(1, vector_c),
    ):
        check_against_oracle(
            wire,
            pb.FetchResponse,
            decode_fetch_response,
            lambda actual, expected: assert_fetch(actual, expected, paginated=False),
        )
    merged = decode_fetch_response(f_len(1, vector_a + f_len(2, f_len(2, f32_bytes(2.0)))))
    values = merged.vectors["k"].values
    assert values is not None
    assert values.tolist() == [1.0, 2.0]
    assert decode_fetch_response(f_len(1, vector_a) + f_len(1, vector_b)).vectors["k"].id == ""


def test_float_bits_are_preserved_by_decoders() -> None:
    bits = np.array([0x7FC00001, 0x7F800001, 0xFFBFFFFF, 0x80000000, 0x00000001], dtype="<u4")
    raw = bits.tobytes()
    wire = f_len(2, f_len(1, b"a") + f_fixed32(2, raw[4:8]) + f_len(3, raw))
    match = decode_query_response(wire).matches[0]
    assert match.values is not None
    assert match.values.view(np.uint32).tolist() == bits.tolist()
    assert math.isnan(match.score)
    match = decode_query_response(f_len(2, f_fixed32(2, raw[12:16]))).matches[0]
    assert struct.pack("<f", match.score) == raw[12:16]  # -0.0
    fetch = decode_fetch_response(f_len(1, f_len(1, b"a") + f_len(2, f_len(2, raw))))
    values = fetch.vectors["a"].values
    assert values is not None
    assert values.view(np.uint32).tolist() == bits.tolist()


def test_decoded_arrays_are_writable_and_independent() -> None:
    message = pb.QueryResponse(
        matches=[pb.ScoredVector(id=str(i), values=[float(i)] * 4) for i in range(3)], namespace="n"
    )
    wire = message.SerializeToString()
    decoded = decode_query_response(wire)
    first = decoded.matches[0].values
    assert first is not None
    first[:] = 9.0
    second = decoded.matches[1].values
    assert second is not None
    assert second.tolist() == [1.0] * 4
    assert decode_query_response(wire).matches[0].values.tolist() == [0.0] * 4  # type: ignore[union-attr]


TOP_LEVEL_MALFORMED = [
    pytest.param(b"\x0b\x0c", id="group-known-number"),
    pytest.param(key(100, 3) + key(100, 4), id="group-unknown-number"),
    pytest.param(key(100, 3), id="group-unterminated"),
    pytest.param(b"\x00\x00", id="field-number-0"),
    pytest.param(b"\x0e", id="wire-type-6"),
    pytest.param(b"\x0f", id="wire-type-7"),
    pytest.param(key(100, 0) + b"\xff" * 10 + b"\x01", id="varint-11-bytes"),
    pytest.param(b"\x88\x80\x80\x80\x80\x00\x00", id="tag-6-bytes"),
    pytest.param(b"\xff\xff\xff\xff\x7f\x00", id="tag-over-32-bits"),
    pytest.param(key(100, 2) + b"\x80\x80\x80\x80\x10", id="length-2**32"),
    pytest.param(key(100, 2) + b"\x05abc", id="length-past-end"),
    pytest.param(key(100, 1) + b"\x00" * 7, id="fixed64-truncated"),
    pytest.param(key(100, 5) + b"\x00" * 3, id="fixed32-truncated"),
    pytest.param(key(100, 0) + b"\x80", id="varint-truncated"),
    pytest.param(b"\x80", id="tag-truncated"),
]

MATCH_MALFORMED = [
    pytest.param(f_len(3, b"abc"), id="packed-float-not-multiple-of-4"),
    pytest.param(f_len(1, b"\xff"), id="invalid-utf8-id"),
    pytest.param(f_len(5, f_len(1, b"\x80")), id="packed-varint-unterminated"),
    pytest.param(f_len(5, f_len(1, b"\xff" * 10 + b"\x01")), id="packed-varint-11-bytes"),
    pytest.param(f_len(4, f_len(1, f_len(1, b"\xc3"))), id="invalid-utf8-key"),
    pytest.param(f_len(4, f_len(1, f_len(2, f_len(3, b"\xc3")))), id="invalid-utf8-value"),
    pytest.param(f_len(4, f_len(1, f_len(2, key(2, 1) + b"\x00"))), id="double-truncated"),
    pytest.param(b"\x15\x00\x00", id="score-truncated"),
    pytest.param(b"\x1d\x00\x00", id="unpacked-float-truncated"),
    pytest.param(f_len(4, b"\x0a\x05\x0a\x01"), id="entry-past-struct"),
]


@pytest.mark.parametrize("wire", TOP_LEVEL_MALFORMED)
def test_malformed_input_raises_value_error(wire: bytes) -> None:
    """At the top level and nested: in a match, in a map entry and in the Vector of an entry."""
    cases = [
        (decode_query_response, [wire, f_len(2, wire), f_len(3, b"ns") + f_len(2, b"") + wire]),
        (decode_fetch_response, [wire, f_len(1, wire), f_len(1, f_len(2, wire))]),
        (decode_fetch_by_metadata_response, [wire, f_len(1, wire), f_len(4, wire)]),
    ]
    for decoder, wires in cases:
        for data in wires:
            with pytest.raises(ValueError):
                decoder(data)


@pytest.mark.parametrize("wire", MATCH_MALFORMED)
def test_malformed_matches_raise_value_error(wire: bytes) -> None:
    with pytest.raises(DecodeError):  # the oracle agrees that these are malformed
        pb.ScoredVector.FromString(wire)
    with pytest.raises(ValueError):
        decode_query_response(f_len(2, wire))


def test_groups_are_rejected_though_upb_skips_them() -> None:
    """A documented difference: proto3 has no groups, so this codec refuses them outright."""
    wire = f_len(2, f_len(1, b"a") + key(100, 3) + f_varint(1, 5) + key(100, 4))
    pb.QueryResponse.FromString(wire)  # the generated parser skips the group
    with pytest.raises(ValueError, match="groups"):
        decode_query_response(wire)


def test_deep_nesting_raises_value_error() -> None:
    value = f_len(3, b"leaf")
    for _ in range(300):
        value = f_len(5, f_len(1, f_len(1, b"k") + f_len(2, value)))
    wire = f_len(2, f_len(4, f_len(1, f_len(1, b"k") + f_len(2, value))))
    with pytest.raises(ValueError, match="deeper"):
        decode_query_response(wire)
    shallow = f_len(3, b"leaf")
    for _ in range(20):
        shallow = f_len(6, f_len(1, shallow))
    metadata = decode_query_response(
        f_len(2, f_len(4, f_len(1, f_len(1, b"k") + f_len(2, shallow))))
    ).matches[0]
    assert metadata.metadata is not None
    nested = metadata.metadata["k"]
    for _ in range(20):
        assert isinstance(nested, list)
        nested = nested[0]
    assert nested == "leaf"


def w_value(value: Any) -> bytes:
    """A Value body for str, dict or list (the test's own writer)."""
    if isinstance(value, str):
        return f_len(3, value.encode())
    if isinstance(value, dict):
        return f_len(5, w_struct(value))
    return f_len(6, b"".join(f_len(1, w_value(item)) for item in value))


def w_struct(fields: dict[str, Any]) -> bytes:
    return b"".join(f_len(1, f_len(1, name.encode()) + f_len(2, w_value(v))) for name, v in fields.items())


@pytest.mark.parametrize("kind", ["dict", "list", "empty-dict", "empty-list"])
def test_nesting_limit_is_protobufs(kind: str) -> None:
    """Nothing deeper than 100 messages (map entries included), exactly where the generated parser stops."""
    for levels in range(20, 60):
        value: Any = {} if kind == "empty-dict" else [] if kind == "empty-list" else "leaf"
        for _ in range(levels):
            value = {"k": value} if kind.endswith("dict") else [value]
        metadata = {"top": value}
        struct_body = w_struct(metadata)
        upsert = f_len(1, f_len(1, b"a") + f_len(3, struct_body))
        query = f_len(2, f_len(1, b"a") + f_len(4, struct_body))
        fetch = f_len(1, f_len(1, b"a") + f_len(2, f_len(1, b"a") + f_len(3, struct_body)))
        cases: list[tuple[Any, bytes, Callable[[], object]]] = [
            (pb.UpsertRequest, upsert, partial(encode_upsert_request, ["a"], None, None, [metadata])),
            (pb.QueryResponse, query, partial(decode_query_response, query)),
            (pb.FetchResponse, fetch, partial(decode_fetch_response, fetch)),
        ]
        for cls, wire, ours in cases:
            try:
                cls.FromString(wire)
            except DecodeError:
                with pytest.raises(ValueError, match="deeper"):
                    ours()
            else:
                ours()


def test_large_and_odd_but_valid_wire() -> None:
    huge = np.arange(700_000, dtype=np.float32)  # a 2.8 MB match: multi-byte lengths
    message = pb.QueryResponse(matches=[pb.ScoredVector(id="big", score=1.0, values=huge.tolist())])
    wire = message.SerializeToString()
    assert len(wire) > 2 * 1024 * 1024
    decoded = decode_query_response(wire)
    assert decoded.matches[0].values is not None
    assert decoded.matches[0].values.tobytes() == huge.tobytes()
    # The largest field number, 10-byte varints, a padded length, unknown wire types 1 and 5.
    odd = (
        f_varint(2**29 - 1, 2**64 - 1)
        + key(99, 2)
        + b"\x83\x80\x00abc"
        + f_fixed64(77, b"\x01" * 8)
        + f_fixed32(78, b"\x02" * 4)
    )
    for wire in (odd, odd + f_len(3, b"ns"), f_len(2, odd + f_len(1, b"x")) + odd):
        check_against_oracle(wire, pb.QueryResponse, decode_query_response, assert_query)
    assert decode_query_response(b"") == DecodedQuery([], "", None)
    assert decode_fetch_response(b"") == DecodedFetch({}, "", None, None)
    # Score sent with the wrong wire type is an unknown field, as for protobuf.
    check_against_oracle(f_len(2, f_varint(2, 5)), pb.QueryResponse, decode_query_response, assert_query)
    # read_units wider than 32 bits keeps its low 32 bits.
    wire = f_len(4, f_varint(1, 2**40 + 3))
    check_against_oracle(wire, pb.QueryResponse, decode_query_response, assert_query)


def test_accepts_bytearray_and_memoryview() -> None:
    message = pb.QueryResponse(matches=[pb.ScoredVector(id="a", score=0.5, values=[1.0, 2.0])], namespace="n")
    wire = message.SerializeToString()
    for data in (bytearray(wire), memoryview(wire)):
        assert_query(decode_query_response(data), message)
    with pytest.raises(TypeError):
        decode_query_response("not bytes")  # type: ignore[arg-type]

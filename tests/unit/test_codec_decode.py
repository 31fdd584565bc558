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
from hypothesis import given, settings
from hypothesis import strategies as st

from pinecone_rag.wire import messages as pb
from pinecone_rag.wire.codec import (
    DecodedFetch,
    DecodedQuery,
    decode_fetch_by_metadata_response,
    decode_fetch_response,
    decode_query_response,
    decode_upsert_columns,
    decode_upsert_request,
    encode_upsert_request,
)

from .codec_support import (
    FEW,
    SETTINGS,
    assert_fetch,
    assert_floats,
    assert_metadata,
    assert_query,
    assert_sparse,
    dims,
    f_fixed32,
    f_fixed64,
    f_len,
    f_varint,
    fetch_responses,
    key,
    namespaces,
    query_responses,
    unknown_fields,
    upsert_batches,
    varint,
    vectors,
)

if TYPE_CHECKING:
    from collections.abc import Callable


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


# --- upsert requests (the server's hot path) ---------------------------------------------------------------


@st.composite
def upsert_requests(draw: st.DrawFn) -> Any:
    dim = draw(dims)
    mixed = draw(st.booleans())  # records of different lengths take the non-matrix path
    request = pb.UpsertRequest(namespace=draw(namespaces))
    for _ in range(draw(st.integers(0, 6))):
        request.vectors.add().CopyFrom(draw(vectors(draw(dims) if mixed else dim)))
    return request


def assert_upsert(message: Any, wire: bytes) -> None:
    columns = decode_upsert_columns(wire)
    decoded = decode_upsert_request(wire)
    assert columns.namespace == decoded.namespace == message.namespace
    assert len(columns.ids) == len(decoded.vectors) == len(message.vectors)
    for i, want in enumerate(message.vectors):
        assert columns.ids[i] == decoded.vectors[i].id == want.id
        assert_floats(columns.values[i], want.values)
        assert_floats(decoded.vectors[i].values, want.values)
        assert_sparse(columns.sparse[i], want)
        assert_metadata(columns.metadata[i], want)
        assert_metadata(decoded.vectors[i].metadata, want)
    widths = {len(vector.values) for vector in message.vectors}
    if message.vectors and len(widths) == 1 and 0 not in widths:
        assert columns.matrix is not None
        assert columns.matrix.shape == (len(message.vectors), widths.pop())
        assert columns.matrix.flags.writeable
        for i, row in enumerate(columns.values):
            assert row is not None
            assert np.shares_memory(row, columns.matrix[i])
    else:
        assert columns.matrix is None


@SETTINGS
@given(upsert_requests())
def test_upsert_request_decodes_like_generated(message: Any) -> None:
    assert_upsert(message, message.SerializeToString())


@SETTINGS
@given(upsert_batches())
def test_upsert_request_decodes_what_we_encode(batch: dict[str, Any]) -> None:
    wire = encode_upsert_request(**batch)
    assert_upsert(pb.UpsertRequest.FromString(wire), wire)


@FEW
@given(upsert_requests(), st.data())
def test_upsert_records_in_any_layout_decode_alike(message: Any, data: st.DataObject) -> None:
    """Reordered, split and unknown fields inside a record take the general parser, with the same result."""
    records = b""
    for vector in message.vectors:
        fields = [f_len(1, vector.id.encode())] if vector.id else []
        values = np.array(list(vector.values), dtype="<f4").tobytes()
        if values:
            cut = data.draw(st.integers(0, len(values) // 4)) * 4  # two packed runs concatenate
            fields += [f_len(2, values[:cut]), f_len(2, values[cut:])]
        if vector.HasField("metadata"):
            fields.append(f_len(3, vector.metadata.SerializeToString()))
        if vector.HasField("sparse_values"):
            fields.append(f_len(4, vector.sparse_values.SerializeToString()))
        fields.append(data.draw(unknown_fields()))
        records += f_len(1, b"".join(data.draw(st.permutations(fields))))
    wire = records + (f_len(2, message.namespace.encode()) if message.namespace else b"")
    assert_upsert(pb.UpsertRequest.FromString(wire), wire)


def test_upsert_metadata_entries_are_not_shared_between_records() -> None:
    """Repeated map entries are parsed once; their lists must still be separate objects per record."""
    metadata = [{"tags": ["a", "b"], "source": "doc", "n": 1.0, "ok": True}] * 3
    wire = encode_upsert_request(["x", "y", "z"], None, None, metadata)
    first, second, third = decode_upsert_columns(wire).metadata
    assert first == second == third == metadata[0]
    assert first is not None
    assert second is not None
    first["tags"].append("c")
    assert second["tags"] == ["a", "b"]
    assert first["tags"] is not second["tags"]


def test_upsert_metadata_merges_repeated_occurrences() -> None:
    entry_a = f_len(1, f_len(1, b"a") + f_len(2, f_len(3, b"x")))
    entry_b = f_len(1, f_len(1, b"b") + f_len(2, f_len(3, b"y")))
    entry_a2 = f_len(1, f_len(1, b"a") + f_len(2, f_len(3, b"z")))
    record = f_len(1, b"r") + f_len(3, entry_a + entry_b) + f_len(3, entry_a2)
    wire = f_len(1, record)
    assert decode_upsert_columns(wire).metadata == [{"a": "z", "b": "y"}]
    assert decode_upsert_columns(wire).metadata == [pb.UpsertRequest.FromString(wire).vectors[0].metadata]


@pytest.mark.parametrize(
    "wire",
    [
        f_len(1, f_len(1, b"r") + f_len(2, b"\x00\x00\x80")),  # values not a multiple of 4 bytes
        f_len(1, f_len(1, b"\xff")),  # id not UTF-8
        f_len(1, f_len(1, b"r") + f_len(3, f_len(1, f_len(1, b"\xc3")))),  # metadata key not UTF-8
        f_len(1, f_len(1, b"r") + f_len(3, b"\x0a\x05\x0a")),  # truncated map entry
        f_len(1, f_len(1, b"r"))[:-1],  # truncated record
        f_len(1, f_len(1, b"r") + key(3, 3)),  # a group
    ],
)
def test_malformed_upsert_requests_raise_value_error(wire: bytes) -> None:
    with pytest.raises(ValueError, match=r"malformed|truncated|unsupported"):
        decode_upsert_columns(wire)
    with pytest.raises(DecodeError):
        pb.UpsertRequest.FromString(wire)

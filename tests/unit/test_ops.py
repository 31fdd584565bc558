"""Unit tests of the WAL payload codec (pinecone_rag.server.ops): every operation round-trips exactly."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pinecone_rag.errors import DataLossError
from pinecone_rag.server import wal
from pinecone_rag.server.ops import (
    OP_DELETE_ALL,
    OP_DELETE_FILTER,
    OP_DELETE_IDS,
    OP_UPDATE,
    OP_UPDATE_FILTER,
    OP_UPSERT,
    DeleteAllOp,
    DeleteFilterOp,
    DeleteIdsOp,
    Op,
    UpdateFilterOp,
    UpdateOp,
    UpsertOp,
    decode_op,
    encode_op,
    encode_op_parts,
)
from pinecone_rag.server.records import SparseVector, UpsertBatch

if TYPE_CHECKING:
    from pathlib import Path

# --- helpers ---------------------------------------------------------------------------------------------


def assert_array_exact(actual: Any, expected: Any, dtype: Any) -> None:
    """Same dtype, same shape, same bits (NaN payloads and -0.0 included)."""
    assert actual is not None
    assert actual.dtype == np.dtype(dtype)
    expected_arr = np.asarray(expected, dtype=dtype)
    assert actual.shape == expected_arr.shape
    assert actual.tobytes() == expected_arr.tobytes()


def assert_sparse_exact(actual: SparseVector | None, expected: SparseVector | None) -> None:
    if expected is None:
        assert actual is None
        return
    assert actual is not None
    assert_array_exact(actual.indices, expected.indices, np.uint32)
    assert_array_exact(actual.values, expected.values, np.float32)


def assert_op_equal(actual: Op, expected: Op) -> None:
    assert type(actual) is type(expected)
    if isinstance(expected, UpsertOp):
        assert isinstance(actual, UpsertOp)
        got, want = actual.batch, expected.batch
        assert got.ids == want.ids
        if want.dense is None:
            assert got.dense is None
        else:
            assert_array_exact(got.dense, want.dense, np.float32)
        assert len(got.sparse) == len(want.sparse)
        for got_sparse, want_sparse in zip(got.sparse, want.sparse, strict=True):
            assert_sparse_exact(got_sparse, want_sparse)
        assert got.metadata == want.metadata
        # Numbers stay floats, booleans stay booleans (1.0 == True would hide a type change).
        for got_md, want_md in zip(got.metadata, want.metadata, strict=True):
            if want_md is not None:
                assert got_md is not None
                assert {k: type(v) for k, v in got_md.items()} == {k: type(v) for k, v in want_md.items()}
    elif isinstance(expected, UpdateOp):
        assert isinstance(actual, UpdateOp)
        assert actual.id == expected.id
        if expected.values is None:
            assert actual.values is None
        else:
            assert_array_exact(actual.values, expected.values, np.float32)
        assert_sparse_exact(actual.sparse, expected.sparse)
        assert actual.set_metadata == expected.set_metadata
    else:
        assert actual == expected


def round_trip(op: Op) -> Op:
    payload = encode_op(op)
    assert isinstance(payload, bytes)
    decoded = decode_op(payload)
    assert_op_equal(decoded, op)
    # Encoding is deterministic: re-encoding the decoded op gives the same bytes.
    assert encode_op(decoded) == payload
    return decoded


def sparse(indices: list[int], values: list[float]) -> SparseVector:
    return SparseVector(np.asarray(indices, dtype=np.uint32), np.asarray(values, dtype=np.float32))


def op_code(payload: bytes) -> int:
    code: int = payload[0]
    return code


# --- every operation type ----------------------------------------------------------------------------------


def test_upsert_dense_only() -> None:
    dense = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    op = UpsertOp(UpsertBatch(["a", "b", "c"], dense, [None, None, None], [None, None, None]))
    payload = encode_op(op)
    assert op_code(payload) == OP_UPSERT
    round_trip(op)


def test_upsert_dense_with_mixed_sparse_and_metadata() -> None:
    dense = np.array([[1.5, -2.0], [0.0, -0.0], [np.inf, -np.inf]], dtype=np.float32)
    op = UpsertOp(
        UpsertBatch(
            ["x", "y", "z"],
            dense,
            [sparse([7, 1, 4294967295], [0.5, -1.25, 3.0]), None, sparse([], [])],
            [{"genre": "drama", "year": 2020.0, "ok": True, "tags": ["a", "b"]}, None, {"n": -0.5}],
        )
    )
    decoded = round_trip(op)
    assert isinstance(decoded, UpsertOp)
    # An empty sparse vector stays an empty sparse vector, not None.
    third = decoded.batch.sparse[2]
    assert third is not None
    assert len(third.indices) == 0


def test_upsert_sparse_index_has_no_dense_block() -> None:
    op = UpsertOp(
        UpsertBatch(
            ["s1", "s2"],
            None,
            [sparse([3, 9], [0.25, 0.75]), sparse([1], [2.0])],
            [None, {"k": "v"}],
        )
    )
    decoded = round_trip(op)
    assert isinstance(decoded, UpsertOp)
    assert decoded.batch.dense is None
    header = orjson.loads(encode_op(op)[5 : 5 + struct.unpack_from("<I", encode_op(op), 1)[0]])
    assert header["dim"] == 0
    assert header["nnz"] == [2, 1]


def test_upsert_unicode_ids_and_metadata() -> None:
    ids = ["日本語", "emoji-🙂", "Ünïcødé", 'quote"back\\slash', "nul\x00byte", "tab\tnew\nline"]
    metadata: list[Any] = [
        {"title": "Ελληνικά", "tags": ["🙂", "中文", ""]},
        {"ключ": "значение"},
        None,
        {"empty": ""},
        {"big": 1.7976931348623157e308, "tiny": 5e-324},
        {"neg": -123456.789},
    ]
    dense = np.linspace(-1, 1, len(ids) * 3, dtype=np.float32).reshape(len(ids), 3)
    round_trip(UpsertOp(UpsertBatch(ids, dense, [None] * len(ids), metadata)))


def test_upsert_duplicate_ids_keep_their_order() -> None:
    dense = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    decoded = round_trip(
        UpsertOp(UpsertBatch(["a", "b", "a"], dense, [None] * 3, [{"v": 1.0}, None, {"v": 3.0}]))
    )
    assert isinstance(decoded, UpsertOp)
    assert decoded.batch.ids == ["a", "b", "a"]


def test_upsert_decoded_arrays_are_writable_copies() -> None:
    payload = encode_op(
        UpsertOp(UpsertBatch(["a"], np.ones((1, 2), np.float32), [sparse([1], [1.0])], [None]))
    )
    decoded = decode_op(payload)
    assert isinstance(decoded, UpsertOp)
    assert decoded.batch.dense is not None
    decoded.batch.dense[0, 0] = 5.0  # must not raise (read-only view of the payload) nor alias it
    first = decoded.batch.sparse[0]
    assert first is not None
    first.values[0] = 9.0
    again = decode_op(payload)
    assert isinstance(again, UpsertOp)
    assert again.batch.dense is not None
    assert again.batch.dense[0, 0] == 1.0


def test_delete_ids() -> None:
    op = DeleteIdsOp(["a", "日本", "", "x" * 512])
    assert op_code(encode_op(op)) == OP_DELETE_IDS
    round_trip(op)
    round_trip(DeleteIdsOp([]))


def test_delete_filter() -> None:
    op = DeleteFilterOp({"$or": [{"genre": {"$in": ["a", "b"]}}, {"year": {"$gte": 2000.5}}], "ok": True})
    assert op_code(encode_op(op)) == OP_DELETE_FILTER
    round_trip(op)


def test_delete_all() -> None:
    payload = encode_op(DeleteAllOp())
    assert op_code(payload) == OP_DELETE_ALL
    round_trip(DeleteAllOp())


@pytest.mark.parametrize(
    ("values", "sparse_vec", "metadata"),
    [
        (np.array([0.1, -0.2, 3.5], dtype=np.float32), None, None),
        (None, sparse([5, 2], [1.0, -1.0]), None),
        (None, None, {"k": "v", "n": 2.0, "b": False, "l": ["x"]}),
        (np.array([1.0], dtype=np.float32), sparse([0], [0.5]), {"ü": "ö"}),
        (None, sparse([], []), None),
        (None, None, None),
    ],
    ids=["values", "sparse", "metadata", "all", "empty-sparse", "nothing"],
)
def test_update(values: Any, sparse_vec: SparseVector | None, metadata: Any) -> None:
    op = UpdateOp("räcord-1", values, sparse_vec, metadata)
    assert op_code(encode_op(op)) == OP_UPDATE
    round_trip(op)


def test_update_filter() -> None:
    op = UpdateFilterOp({"genre": {"$eq": "drama"}}, {"seen": True, "count": 3.0, "labels": ["a"]})
    assert op_code(encode_op(op)) == OP_UPDATE_FILTER
    round_trip(op)


# --- malformed payloads ------------------------------------------------------------------------------------


def test_empty_and_short_payloads_raise_data_loss() -> None:
    for payload in (b"", b"\x01", b"\x01\x00\x00"):
        with pytest.raises(DataLossError):
            decode_op(payload)


def test_unknown_operation_code_raises_data_loss() -> None:
    payload = bytearray(encode_op(DeleteAllOp()))
    payload[0] = 99
    with pytest.raises(DataLossError):
        decode_op(bytes(payload))


def test_truncated_blob_raises_data_loss() -> None:
    dense = np.ones((4, 8), dtype=np.float32)
    payload = encode_op(
        UpsertOp(UpsertBatch(list("abcd"), dense, [sparse([1, 2], [1.0, 2.0])] * 4, [None] * 4))
    )
    text_len = struct.unpack_from("<I", payload, 1)[0]
    blob_start = 5 + text_len
    for cut in (1, 4, 5, 32, len(payload) - blob_start):
        with pytest.raises(DataLossError):
            decode_op(payload[:-cut])
    update = encode_op(UpdateOp("a", np.ones(8, np.float32), sparse([1], [1.0]), None))
    with pytest.raises(DataLossError):
        decode_op(update[:-1])


@pytest.mark.parametrize(
    "op",
    [
        DeleteIdsOp(["a", "b"]),
        UpsertOp(UpsertBatch(["a"], np.ones((1, 2), np.float32), [None], [{"k": "v"}])),
        UpdateFilterOp({"a": 1.0}, {"b": 2.0}),
    ],
    ids=["delete-ids", "upsert", "update-filter"],
)
def test_every_truncation_raises_data_loss(op: Op) -> None:
    """A payload cut anywhere (inside the JSON header included) is reported as data loss, never parsed."""
    payload = encode_op(op)
    for end in range(len(payload)):
        with pytest.raises(DataLossError):
            decode_op(payload[:end])


def test_json_length_past_the_end_raises_data_loss() -> None:
    payload = bytearray(encode_op(DeleteIdsOp(["a"])))
    struct.pack_into("<I", payload, 1, len(payload) * 2)
    with pytest.raises(DataLossError):
        decode_op(bytes(payload))


# --- property tests ----------------------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_METADATA_VALUE = st.one_of(
    _TEXT,
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(_TEXT, max_size=4),
)
_METADATA = st.one_of(st.none(), st.dictionaries(_TEXT.filter(bool), _METADATA_VALUE, max_size=5))
_F32 = st.floats(width=32)  # NaN, infinities, -0.0 and subnormals included: the codec copies bits


@st.composite
def sparse_vectors(draw: st.DrawFn) -> SparseVector | None:
    if draw(st.booleans()):
        return None
    count = draw(st.integers(0, 12))
    indices = draw(hnp.arrays(np.uint32, count, elements=st.integers(0, 2**32 - 1), unique=True))
    values = draw(hnp.arrays(np.float32, count, elements=_F32))
    return SparseVector(indices, values)


@st.composite
def upsert_batches(draw: st.DrawFn) -> UpsertBatch:
    count = draw(st.integers(1, 8))
    ids = draw(st.lists(_TEXT, min_size=count, max_size=count))
    dim = draw(st.integers(0, 16))
    dense = draw(hnp.arrays(np.float32, (count, dim), elements=_F32)) if dim else None
    sparse_list = [draw(sparse_vectors()) for _ in range(count)]
    metadata = [draw(_METADATA) for _ in range(count)]
    return UpsertBatch(ids, dense, sparse_list, metadata)


@settings(max_examples=150, deadline=None)
@given(upsert_batches())
def test_property_upsert_round_trip(batch: UpsertBatch) -> None:
    round_trip(UpsertOp(batch))


@settings(max_examples=100, deadline=None)
@given(
    record_id=_TEXT,
    values=st.one_of(st.none(), hnp.arrays(np.float32, st.integers(0, 16), elements=_F32)),
    sparse_vec=sparse_vectors(),
    metadata=_METADATA,
)
def test_property_update_round_trip(
    record_id: str, values: Any, sparse_vec: SparseVector | None, metadata: Any
) -> None:
    round_trip(UpdateOp(record_id, values, sparse_vec, metadata))


@settings(max_examples=50, deadline=None)
@given(st.lists(_TEXT, max_size=20))
def test_property_delete_ids_round_trip(ids: list[str]) -> None:
    round_trip(DeleteIdsOp(ids))


def test_a_payload_in_pieces_is_framed_and_written_as_if_joined(tmp_path: Path) -> None:
    dense = np.arange(12, dtype=np.float32).reshape(4, 3)
    op = UpsertOp(UpsertBatch(["a", "b", "c", "d"], dense, [None] * 4, [{"k": "v"}, None, None, None]))
    pieces = encode_op_parts(op)
    assert any(isinstance(piece, memoryview) for piece in pieces)  # the values are not copied
    assert b"".join(pieces) == encode_op(op)
    writer = wal.WalWriter(tmp_path, 1)
    writer.append(1, pieces)
    writer.append(2, encode_op(op))
    writer.sync()
    writer.close()
    (segment,) = sorted(tmp_path.glob("*.wal"))
    body = segment.read_bytes()[len(wal.encode_segment_header(1)) :]
    assert body == wal.encode_record(1, encode_op(op)) + wal.encode_record(2, encode_op(op))
    assert [record.payload for record in wal.recover(tmp_path)] == [encode_op(op)] * 2

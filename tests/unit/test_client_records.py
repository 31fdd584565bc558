"""Unit tests of upsert input normalisation and batching (pinecone_rag.client._records)."""

from __future__ import annotations

import array
import types
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinecone_rag.client._records import (
    DEFAULT_MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    NormalizedRecord,
    RecordBatch,
    batches_from_matrix,
    iter_batches,
    normalize_record,
)
from pinecone_rag.errors import ConfigurationError, RecordError
from pinecone_rag.models import ScoredVector, SparseValues, Vector
from pinecone_rag.wire import messages

if TYPE_CHECKING:
    from collections.abc import Iterator


def dense(record: NormalizedRecord) -> list[float]:
    assert record.values is not None
    assert record.values.dtype == np.float32
    return record.values.tolist()


def sparse_lists(record: NormalizedRecord) -> tuple[list[int], list[float]]:
    assert record.sparse is not None
    indices, values = record.sparse
    assert indices.dtype == np.uint32
    assert values.dtype == np.float32
    return indices.tolist(), values.tolist()


def proto_size(batch: RecordBatch) -> int:
    """The real encoded size of the batch as an UpsertRequest."""
    request = messages.UpsertRequest()
    for i, record_id in enumerate(batch.ids):
        vector = request.vectors.add(id=record_id)
        if batch.dense is not None:
            vector.values.extend(batch.dense[i].tolist())
        pair = None if batch.sparse is None else batch.sparse[i]
        if pair is not None:
            vector.sparse_values.indices.extend(pair[0].tolist())
            vector.sparse_values.values.extend(pair[1].tolist())
        metadata = None if batch.metadata is None else batch.metadata[i]
        if metadata:
            vector.metadata.update(metadata)
    size: int = request.ByteSize()
    return size


def assert_batches_identical(left: list[RecordBatch], right: list[RecordBatch]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert a.ids == b.ids
        assert a.start == b.start
        assert a.estimated_bytes == b.estimated_bytes
        assert a.metadata == b.metadata
        if a.dense is None or b.dense is None:
            assert a.dense is None
            assert b.dense is None
        else:
            assert a.dense.dtype == b.dense.dtype == np.float32
            assert a.dense.shape == b.dense.shape
            assert a.dense.tobytes() == b.dense.tobytes()
        if a.sparse is None or b.sparse is None:
            assert a.sparse is None
            assert b.sparse is None
        else:
            for pa, pb in zip(a.sparse, b.sparse, strict=True):
                if pa is None or pb is None:
                    assert pa is pb
                else:
                    assert pa[0].tobytes() == pb[0].tobytes()
                    assert pa[1].tobytes() == pb[1].tobytes()


# ------------------------------------------------------------------------------------- accepted forms
@pytest.mark.parametrize(
    "values",
    [
        [1, 2.5, -3],
        (1, 2.5, -3),
        array.array("f", [1, 2.5, -3]),
        array.array("d", [1, 2.5, -3]),
        memoryview(array.array("f", [1, 2.5, -3])),
        np.array([1, 2.5, -3], dtype=np.float64),
        np.array([1, 2.5, -3], dtype=np.float16),
        np.array([1, 2.5, -3], dtype=np.float32),
        np.array([[1, 2.5, -3]], dtype=np.float32)[0],
        np.array([1, 0, 2.5, 0, -3], dtype=np.float32)[::2],  # strided view
    ],
    ids=["list", "tuple", "array-f", "array-d", "memoryview", "f64", "f16", "f32", "row", "strided"],
)
def test_values_of_any_real_type(values: Any) -> None:
    record = normalize_record(("a", values), 0)
    assert dense(record) == [1.0, 2.5, -3.0]
    assert record.values is not None
    assert record.values.flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint8, np.uint64])
def test_integer_values(dtype: Any) -> None:
    assert dense(normalize_record(("a", np.array([1, 2, 3], dtype=dtype)), 0)) == [1.0, 2.0, 3.0]


def test_tuple_forms() -> None:
    two = normalize_record(("a", [1.0, 2.0]), 0)
    assert two.id == "a"
    assert two.sparse is None
    assert two.metadata is None
    three = normalize_record(("a", [1.0, 2.0], {"k": "v"}), 0)
    assert three.metadata == {"k": "v"}
    four = normalize_record(("a", [1.0, 2.0], None, SparseValues.of([3, 1], [0.5, 0.25])), 0)
    assert four.metadata is None
    assert sparse_lists(four) == ([3, 1], [0.5, 0.25])
    four_dict = normalize_record(("a", [1.0], {"k": 1}, {"indices": [7], "values": [2.0]}), 0)
    assert sparse_lists(four_dict) == ([7], [2.0])
    assert four_dict.metadata == {"k": 1}


def test_vector_forms() -> None:
    plain = normalize_record(Vector("v", [0.5, 1.5], metadata={"m": True}), 0)
    assert (plain.id, dense(plain), plain.metadata) == ("v", [0.5, 1.5], {"m": True})
    hybrid = normalize_record(Vector("h", [1.0], sparse_values=SparseValues.of([4], [9.0])), 0)
    assert sparse_lists(hybrid) == ([4], [9.0])
    sparse_only = normalize_record(Vector("s", sparse_values=SparseValues.of([1, 2], [1.0, 2.0])), 0)
    assert sparse_only.values is None
    assert sparse_lists(sparse_only) == ([1, 2], [1.0, 2.0])
    scored = normalize_record(ScoredVector("q", [1.0, 2.0], score=0.5), 0)  # re-upserting a query match
    assert dense(scored) == [1.0, 2.0]


def test_dict_forms() -> None:
    full = normalize_record(
        {
            "id": "d",
            "values": [1, 2],
            "sparse_values": {"indices": [5], "values": [0.5]},
            "metadata": {"a": 1},
        },
        0,
    )
    assert (full.id, dense(full), sparse_lists(full), full.metadata) == (
        "d",
        [1.0, 2.0],
        ([5], [0.5]),
        {"a": 1},
    )
    camel = normalize_record({"id": "c", "sparseValues": SparseValues.of([2], [3.0])}, 0)
    assert camel.values is None
    assert sparse_lists(camel) == ([2], [3.0])
    proxy = normalize_record(types.MappingProxyType({"id": "p", "values": [1.0]}), 0)
    assert dense(proxy) == [1.0]


def test_empty_dense_values_mean_sparse_only() -> None:
    for values in ([], None, np.empty(0, dtype=np.float32)):
        record = normalize_record(
            {"id": "s", "values": values, "sparse_values": {"indices": [1], "values": [1]}}, 0
        )
        assert record.values is None
        assert record.sparse is not None


def test_empty_sparse_values_are_absent() -> None:
    record = normalize_record(("a", [1.0], None, {"indices": [], "values": []}), 0)
    assert record.sparse is None


def test_sparse_index_dtypes() -> None:
    big = 2**32 - 1
    for indices in ([0, big], np.array([0, big], dtype=np.int64), np.array([0, big], dtype=np.uint64)):
        record = normalize_record(("a", None, None, {"indices": indices, "values": [1.0, 2.0]}), 0)
        assert sparse_lists(record)[0] == [0, big]


def test_metadata_none_values_are_dropped_without_mutating_input() -> None:
    metadata = {"keep": "x", "drop": None, "zero": 0, "empty": "", "no": False}
    record = normalize_record(("a", [1.0], metadata), 0)
    assert record.metadata == {"keep": "x", "zero": 0, "empty": "", "no": False}
    assert "drop" in metadata
    assert normalize_record(("a", [1.0], {"only": None}), 0).metadata is None
    assert normalize_record(("a", [1.0], {}), 0).metadata is None


def test_clean_metadata_is_not_copied() -> None:
    metadata = {"k": "v"}
    assert normalize_record(("a", [1.0], metadata), 0).metadata is metadata


def test_mapping_metadata_becomes_a_dict() -> None:
    record = normalize_record(("a", [1.0], types.MappingProxyType({"k": "v"})), 0)
    assert type(record.metadata) is dict
    assert record.metadata == {"k": "v"}


# ------------------------------------------------------------------------------------------ errors
SPARSE_OK = {"indices": [1], "values": [1.0]}
R3 = "Record #3 ('doc-3'): "
FORMS = "Record #3: expected a Vector, a dict or a tuple (id, values[, metadata[, sparse_values]]), got"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            "doc",
            FORMS + " str.",
        ),
        (
            np.zeros(3),
            FORMS + " ndarray (to upsert a matrix, pass ids=[...] with it).",
        ),
        (
            ("a",),
            (
                "Record #3: a tuple record must be (id, values), (id, values, metadata) or "
                "(id, values, metadata, sparse_values), got 1 items."
            ),
        ),
        ((7, [1.0]), "Record #3: id must be a non-empty string, got int."),
        ((None, [1.0]), "Record #3: id must be a non-empty string, got None."),
        (("", [1.0]), "Record #3: id must be a non-empty string, got ''."),
        (("x" * 513, [1.0]), f"Record #3 ('{'x' * 57}...'): id is 513 characters long; the limit is 512."),
        (("doc-3", "0.1, 0.2"), R3 + "values must be a flat sequence of numbers, got str."),
        (
            ("doc-3", b"\x00\x01"),
            R3 + "values must be a flat sequence of numbers, got bytes.",
        ),
        (("doc-3", 0.5), R3 + "values must be a flat sequence of numbers, got float."),
        (("doc-3", {1, 2}), R3 + "values must be a flat sequence of numbers, got set."),
        (("doc-3", (x for x in [1.0])), R3 + "values must be a flat sequence of numbers, got generator."),
        (
            ("doc-3", [1, 2**70]),
            R3 + "values must be a flat sequence of numbers, got elements of type object.",
        ),
        (
            ("doc-3", [0.1, "0.2"]),
            R3 + "values must be a flat sequence of numbers; values[1] is '0.2' (str).",
        ),
        (
            ("doc-3", [0.1, None]),
            R3 + "values must be a flat sequence of numbers; values[1] is None.",
        ),
        (
            ("doc-3", [True, False]),
            R3 + "values must be a flat sequence of numbers; values[0] is True (bool).",
        ),
        (
            ("doc-3", [[1.0], [2.0, 3.0]]),
            R3 + "values must be a flat sequence of numbers; values[0] is [1.0] (list).",
        ),
        (
            ("doc-3", [[1.0, 2.0], [3.0, 4.0]]),
            R3 + "values must be a flat sequence of numbers, got nested sequences of shape (2, 2).",
        ),
        (
            ("doc-3", np.zeros((2, 2))),
            R3 + "values must be a flat sequence of numbers, got an array of shape (2, 2).",
        ),
        (
            ("doc-3", np.array([1 + 2j])),
            R3 + "values must be a flat sequence of numbers, got an array of dtype complex128.",
        ),
        (
            ("doc-3", np.array([True])),
            R3 + "values must be a flat sequence of numbers, got an array of dtype bool.",
        ),
        (
            ("doc-3", [0.0, 1.0, float("nan")]),
            R3 + "values[2] is nan (NaN and infinity are not allowed).",
        ),
        (
            ("doc-3", np.array([float("-inf")], dtype=np.float32)),
            R3 + "values[0] is -inf (NaN and infinity are not allowed).",
        ),
        (("doc-3", [0.0, 1e39]), R3 + "values[1] = 1e+39 is outside the float32 range."),
        (("doc-3", None), R3 + "has neither dense values nor sparse values."),
        (("doc-3", []), R3 + "has neither dense values nor sparse values."),
        ({"id": "doc-3"}, R3 + "has neither dense values nor sparse values."),
        (Vector("doc-3"), R3 + "has neither dense values nor sparse values."),
        (
            {"id": "doc-3", "values": [1.0], "text": "x", "score": 1},
            R3 + "unknown keys ['score', 'text']; a record dict has id, values, sparse_values, metadata.",
        ),
        ({"values": [1.0]}, "Record #3: the record dict has no 'id'."),
        (
            {"id": "doc-3", "sparse_values": SPARSE_OK, "sparseValues": SPARSE_OK},
            R3 + "give sparse_values or sparseValues, not both.",
        ),
        (("doc-3", [1.0], ["a"]), R3 + "metadata must be a dict, got list."),
        (("doc-3", [1.0], {1: "a"}), R3 + "metadata keys must be strings, got 1 (int)."),
        (
            ("doc-3", [1.0], None, [[1], [1.0]]),
            R3 + "sparse_values must be a SparseValues or a dict with 'indices' and 'values', got list.",
        ),
        (
            ("doc-3", [1.0], None, {"indices": [1]}),
            R3 + "sparse_values must have 'indices' and 'values' (missing ['values']).",
        ),
        (
            ("doc-3", [1.0], None, {"indices": [1], "values": [1.0], "tokens": ["a"]}),
            R3 + "sparse_values must have 'indices' and 'values' (unknown keys ['tokens']).",
        ),
        (
            ("doc-3", None, None, {"indices": [1, -2], "values": [1.0, 1.0]}),
            R3 + "sparse_values.indices[1] = -2 is negative.",
        ),
        (
            ("doc-3", None, None, {"indices": [2**32], "values": [1.0]}),
            R3 + "sparse_values.indices[0] = 4294967296 does not fit in 32 bits (max 4294967295).",
        ),
        (
            ("doc-3", None, None, {"indices": [1.0], "values": [1.0]}),
            R3 + "sparse_values.indices must be integers, got float64.",
        ),
        (
            ("doc-3", None, None, {"indices": "12", "values": [1.0]}),
            R3 + "sparse_values.indices must be a flat sequence of numbers, got str.",
        ),
        (
            ("doc-3", None, None, {"indices": [1, 2], "values": [1.0]}),
            R3 + "sparse_values has 2 indices but 1 values.",
        ),
        (
            ("doc-3", None, None, {"indices": [1], "values": ["x"]}),
            R3 + "sparse_values.values must be a flat sequence of numbers; "
            "sparse_values.values[0] is 'x' (str).",
        ),
        (
            ("doc-3", None, None, {"indices": [1, 2], "values": [1.0, float("nan")]}),
            R3 + "sparse_values.values[1] is nan (NaN and infinity are not allowed).",
        ),
        (
            ("doc-3", None, None, {"indices": [1], "values": [-1e40]}),
            R3 + "sparse_values.values[0] = -1e+40 is outside the float32 range.",
        ),
        (
            ("doc-3", None, None, {"indices": [], "values": []}),
            R3 + "has neither dense values nor sparse values.",
        ),
    ],
)
def test_record_errors(record: object, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        normalize_record(record, 3)
    assert str(caught.value) == message
    # The same problem found while batching names the same global position.
    records = [("ok-0", [1.0]), ("ok-1", [1.0]), ("ok-2", [1.0]), record]
    with pytest.raises(RecordError) as batched:
        list(iter_batches(records, batch_size=2))
    # (A record of another dimension may be reported as a dimension mismatch instead.)
    assert str(batched.value).startswith(message.split(":", maxsplit=1)[0] + ":")


def test_record_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"Record #0"):
        normalize_record(("a", "b"), 0)


# ----------------------------------------------------------------------------------- size estimates
def test_estimated_bytes_formula() -> None:
    record = normalize_record(("abc", [1.0] * 10, {"k": "v"}, {"indices": [1, 2], "values": [1.0, 2.0]}), 0)
    json_size = len('{"k":"v"}')
    assert record.estimated_bytes == 16 + 3 + 4 * 10 + 9 * 2 + json_size + 12
    unicode_id = normalize_record(("é", [1.0]), 0)
    assert unicode_id.estimated_bytes == 16 + 2 + 4


def test_estimate_of_unusual_metadata() -> None:
    class Custom:
        def __str__(self) -> str:
            return "custom"

    for metadata in ({"n": np.float64(1.5)}, {"c": Custom()}, {"big": 2**70}, {"nested": {1: "x"}}):
        assert normalize_record(("a", [1.0], metadata), 0).estimated_bytes > 16 + 1 + 4


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {"source": "docs/a.md", "page": 3, "ok": True, "tags": ["a", "bb", "ccc"]},
        {f"n{i}": i for i in range(50)},  # numbers are 9 bytes on the wire
        {"text": "x" * 2000},
        {"list": [str(i) for i in range(100)]},
    ],
)
def test_estimate_bounds_the_real_protobuf_size(metadata: dict[str, Any] | None) -> None:
    records = [
        (
            f"id-{i}",
            np.full(64, 0.25, dtype=np.float32),
            metadata,
            {"indices": [i, 2**32 - 1], "values": [1.0, 2.0]},
        )
        for i in range(50)
    ]
    [batch] = iter_batches(records)
    actual = proto_size(batch)
    assert actual <= batch.estimated_bytes <= 1.5 * actual


# ------------------------------------------------------------------------------------------ batches
def records_of(count: int, dimension: int = 4, *, prefix: str = "r") -> list[tuple[str, list[float]]]:
    return [(f"{prefix}{i}", [float(i)] * dimension) for i in range(count)]


def test_batch_columns() -> None:
    records: list[object] = [
        Vector("a", [1, 2], metadata={"k": "v"}),
        ("b", np.array([3, 4], dtype=np.float64), None, {"indices": [9], "values": [0.5]}),
        {"id": "c", "values": (5, 6)},
    ]
    [batch] = iter_batches(records)
    assert len(batch) == 3
    assert batch.ids == ["a", "b", "c"]
    assert batch.start == 0
    assert batch.dense is not None
    assert batch.dense.dtype == np.float32
    assert batch.dense.flags.c_contiguous
    assert batch.dense.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert batch.metadata == [{"k": "v"}, None, None]
    assert batch.sparse is not None
    assert batch.sparse[0] is None
    assert batch.sparse[2] is None
    assert batch.sparse[1] is not None
    assert batch.sparse[1][0].tolist() == [9]
    assert batch.estimated_bytes == sum(normalize_record(r, i).estimated_bytes for i, r in enumerate(records))


def test_absent_columns_are_none() -> None:
    [batch] = iter_batches(records_of(3))
    assert batch.sparse is None
    assert batch.metadata is None
    [sparse_only] = iter_batches([("s", None, None, {"indices": [1], "values": [1.0]})])
    assert sparse_only.dense is None
    assert sparse_only.sparse is not None


def test_count_based_cutting() -> None:
    batches = list(iter_batches(records_of(10), batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [b.start for b in batches] == [0, 3, 6, 9]
    assert [i for b in batches for i in b.ids] == [f"r{i}" for i in range(10)]


def test_batch_size_is_capped() -> None:
    sizes = [len(b) for b in iter_batches(records_of(2500, 1), batch_size=5000)]
    assert sizes == [MAX_BATCH_RECORDS, MAX_BATCH_RECORDS, 500]
    assert [len(b) for b in iter_batches(records_of(25, 1), batch_size=50, max_batch_records=10)] == [
        10,
        10,
        5,
    ]
    assert [len(b) for b in iter_batches(records_of(2001, 1))] == [1000, 1000, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0."),
        ({"batch_size": 2.5}, "batch_size must be a positive integer, got 2.5."),
        ({"max_batch_bytes": 0}, "max_batch_bytes must be positive, got 0."),
        ({"max_batch_records": 0}, "max_batch_records must be at least 1, got 0."),
    ],
)
def test_bad_batch_settings_raise_at_call_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        iter_batches(records_of(1), **kwargs)
    assert str(caught.value) == message
    with pytest.raises(ConfigurationError):
        batches_from_matrix(["a"], np.zeros((1, 2)), **kwargs)


def test_byte_based_cutting_3000_dimensions() -> None:
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((400, 3000)).astype(np.float32)
    records = [(f"doc-{i}", rows[i], {"source": f"file-{i}.md"}) for i in range(400)]
    batches = list(iter_batches(records))
    assert len(batches) == 3
    for batch in batches[:-1]:
        assert batch.estimated_bytes <= DEFAULT_MAX_BATCH_BYTES
        # Cut only when the next record would not fit.
        following = batch.start + len(batch)
        next_size = normalize_record(records[following], following).estimated_bytes
        assert batch.estimated_bytes + next_size > DEFAULT_MAX_BATCH_BYTES
    assert sum(len(b) for b in batches) == 400
    assert proto_size(batches[0]) < 2_000_000
    assert batches[1].dense is not None
    assert np.array_equal(batches[1].dense, rows[len(batches[0]) : len(batches[0]) + len(batches[1])])


def test_small_byte_budget() -> None:
    records = records_of(10, 10)  # 16 + 2 + 40 = 58 bytes each
    batches = list(iter_batches(records, max_batch_bytes=3 * 58))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert all(b.estimated_bytes <= 3 * 58 for b in batches)


def test_record_bigger_than_the_budget() -> None:
    records: list[object] = [("a", [1.0]), ("huge", [1.0], {"text": "x" * 3_000_000})]
    with pytest.raises(RecordError) as caught:
        list(iter_batches(records))
    assert str(caught.value) == (
        "Record #1 ('huge'): is about 3,000,047 bytes encoded, more than the 1,934,464-byte request budget; "
        "shrink its metadata or values."
    )


def test_errors_name_global_positions() -> None:
    def records() -> Iterator[object]:
        yield from records_of(2503, 2)
        yield ("bad", [1.0, float("nan")])

    batches = iter_batches(records(), batch_size=1000)
    assert len(next(batches)) == 1000
    assert len(next(batches)) == 1000
    with pytest.raises(RecordError, match=r"^Record #2503 \('bad'\): values\[1\] is nan"):
        next(batches)


def test_nan_in_a_later_row_of_a_batch() -> None:
    records = records_of(5, 3)
    records[3] = ("r3", [0.0, float("inf"), 0.0])
    with pytest.raises(RecordError) as caught:
        list(iter_batches(records))
    assert str(caught.value) == "Record #3 ('r3'): values[1] is inf (NaN and infinity are not allowed)."


def test_dimension_mismatch_in_a_batch() -> None:
    records = [*records_of(3, 4), ("short", [1.0, 2.0])]
    with pytest.raises(RecordError) as caught:
        list(iter_batches(records))
    assert str(caught.value) == (
        "Record #3 ('short'): has 2 dense values, but record #0 ('r0') has 4; "
        "every record of an upsert must have the same dimension."
    )


def test_dimension_mismatch_across_batches() -> None:
    records = [*records_of(5, 4), ("wide", [1.0] * 8)]
    with pytest.raises(RecordError, match=r"^Record #5 \('wide'\): has 8 dense values, but record #0"):
        list(iter_batches(records, batch_size=2))


def test_dense_and_sparse_only_records_do_not_mix() -> None:
    sparse_only = ("s", None, None, {"indices": [1], "values": [1.0]})
    with pytest.raises(RecordError) as caught:
        list(iter_batches([("d", [1.0, 2.0]), sparse_only]))
    assert str(caught.value) == (
        "Record #1 ('s'): has no dense values, but record #0 ('d') has 2 dense values; "
        "every record of an upsert must have the same dimension."
    )
    with pytest.raises(
        RecordError, match=r"^Record #1 \('d'\): has 2 dense values, but record #0 \('s'\) has no"
    ):
        list(iter_batches([sparse_only, ("d", [1.0, 2.0])]))


# ------------------------------------------------------------------------------------------ laziness
class CountingSource:
    """A generator of records that remembers how many it has handed out."""

    def __init__(self, count: int, dimension: int = 4) -> None:
        self.count = count
        self.dimension = dimension
        self.consumed = 0

    def __iter__(self) -> Iterator[object]:
        for i in range(self.count):
            self.consumed += 1
            yield (f"id-{i}", np.full(self.dimension, i, dtype=np.float32))


def test_count_cut_reads_nothing_ahead() -> None:
    source = CountingSource(1_000_000)
    batches = iter_batches(source, batch_size=100)
    assert source.consumed == 0
    first = next(batches)
    assert len(first) == 100
    assert source.consumed == 100
    next(batches)
    assert source.consumed == 200


def test_byte_cut_reads_one_record_ahead() -> None:
    source = CountingSource(1_000_000, dimension=3000)
    batches = iter_batches(source)
    first = next(batches)
    assert source.consumed == len(first) + 1
    second = next(batches)
    assert source.consumed == len(first) + len(second) + 1
    assert second.ids[0] == f"id-{len(first)}"


# ----------------------------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(0, 120),
    dimension=st.integers(1, 40),
    batch_size=st.one_of(st.none(), st.integers(1, 50)),
    max_batch_bytes=st.integers(200, 4_000),
    with_metadata=st.booleans(),
)
def test_batches_preserve_ids_in_order(
    count: int, dimension: int, batch_size: int | None, max_batch_bytes: int, with_metadata: bool
) -> None:
    ids = [f"{i}-{'z' * (i % 11)}" for i in range(count)]
    matrix = np.arange(count * dimension, dtype=np.float32).reshape(count, dimension)
    metadata = [{"i": i, "s": "q" * (i % 13)} for i in range(count)] if with_metadata else None
    records = [(ids[i], matrix[i], None if metadata is None else metadata[i]) for i in range(count)]
    smallest = 16 + max(len(i) for i in ids) + 4 * dimension + 60 if ids else 0
    if smallest > max_batch_bytes:
        max_batch_bytes = smallest
    batches = list(iter_batches(records, batch_size=batch_size, max_batch_bytes=max_batch_bytes))
    assert [record_id for batch in batches for record_id in batch.ids] == ids
    assert all(0 < len(batch) <= (batch_size or MAX_BATCH_RECORDS) for batch in batches)
    assert all(batch.estimated_bytes <= max_batch_bytes for batch in batches)
    assert [batch.start for batch in batches] == [
        sum(len(b) for b in batches[:k]) for k in range(len(batches))
    ]
    fast = list(
        batches_from_matrix(ids, matrix, metadata, batch_size=batch_size, max_batch_bytes=max_batch_bytes)
    )
    assert_batches_identical(fast, batches)

"""Record batching from a numpy matrix (the fast path) and from DataFrames."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinecone_rag.client._records import (
    DEFAULT_MAX_BATCH_BYTES,
    batches_from_matrix,
    iter_batches,
    records_from_dataframe,
)
from pinecone_rag.errors import RecordError
from pinecone_rag.models import SparseValues

from .test_client_records import SPARSE_OK, assert_batches_identical


# ---------------------------------------------------------------------------------------- matrix path
def hybrid_inputs(count: int, dimension: int) -> tuple[list[str], Any, list[Any], list[Any]]:
    rng = np.random.default_rng(count * 31 + dimension)
    matrix = rng.standard_normal((count, dimension))  # float64: converted on both paths
    ids = [f"id-{i}-{'x' * (i % 7)}" for i in range(count)]
    metadata: list[Any] = [
        None if i % 3 == 0 else {"i": i, "drop": None, "t": "y" * (i % 50)} for i in range(count)
    ]
    sparse: list[Any] = [
        None if i % 4 == 0 else SparseValues.of(np.arange(i % 5 + 1) * 7, rng.random(i % 5 + 1))
        for i in range(count)
    ]
    return ids, matrix, metadata, sparse


@pytest.mark.parametrize(
    ("batch_size", "max_batch_bytes"),
    [(None, DEFAULT_MAX_BATCH_BYTES), (7, DEFAULT_MAX_BATCH_BYTES), (None, 5_000), (50, 2_000), (1, 1_000)],
)
def test_matrix_path_matches_record_path(batch_size: int | None, max_batch_bytes: int) -> None:
    ids, matrix, metadata, sparse = hybrid_inputs(1200, 16)
    fast = list(
        batches_from_matrix(
            ids, matrix, metadata, sparse, batch_size=batch_size, max_batch_bytes=max_batch_bytes
        )
    )
    records = [(ids[i], matrix[i], metadata[i], sparse[i]) for i in range(len(ids))]
    slow = list(iter_batches(records, batch_size=batch_size, max_batch_bytes=max_batch_bytes))
    assert_batches_identical(fast, slow)
    assert len(fast) > 1


metadata_values = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=4),
    st.tuples(st.text(max_size=5)),
    st.builds(np.float32, st.floats(width=32)),
)
shared_keys = st.lists(st.sampled_from(["a", "b", "c", "tags"]), unique=True, max_size=3)


@st.composite
def matrix_inputs(draw: st.DrawFn) -> tuple[list[str], Any, list[Any] | None]:
    """Ids (some non-ASCII), a matrix and metadata that share keys or not, with None values or not."""
    count = draw(st.integers(0, 40))
    ids = [draw(st.sampled_from(["", "é", "x" * 40])) + str(i) for i in range(count)]
    matrix = np.arange(count * 3, dtype=np.float64).reshape(count, 3)
    if draw(st.booleans()):
        return ids, matrix, None
    keys = draw(shared_keys)
    same = draw(st.booleans())  # one document schema (the column path) or anything
    metadata = [
        None
        if not same and draw(st.booleans())
        else {key: draw(metadata_values) for key in keys}
        if same
        else draw(st.dictionaries(st.sampled_from(["a", "b", "tags"]), metadata_values, max_size=3))
        for _ in range(count)
    ]
    return ids, matrix, metadata


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matrix_inputs(), st.sampled_from([None, 1, 3]), st.sampled_from([DEFAULT_MAX_BATCH_BYTES, 400, 250]))
def test_matrix_path_matches_record_path_for_any_metadata(
    inputs: tuple[list[str], Any, list[Any] | None], batch_size: int | None, max_batch_bytes: int
) -> None:
    """The column-wise checks and size estimates give the record path's batches, or its error."""
    ids, matrix, metadata = inputs
    records = [(ids[i], matrix[i], None if metadata is None else metadata[i]) for i in range(len(ids))]
    outcomes = []
    for make in (
        lambda: batches_from_matrix(
            ids, matrix, metadata, batch_size=batch_size, max_batch_bytes=max_batch_bytes
        ),
        lambda: iter_batches(records, batch_size=batch_size, max_batch_bytes=max_batch_bytes),
    ):
        try:
            outcomes.append(list(make()))
        except RecordError as error:
            outcomes.append(str(error))  # type: ignore[arg-type]
    fast, slow = outcomes
    if isinstance(fast, str) or isinstance(slow, str):
        assert fast == slow
    else:
        assert_batches_identical(fast, slow)


def test_matrix_path_without_metadata_or_sparse() -> None:
    matrix = np.arange(2500 * 3, dtype=np.float32).reshape(2500, 3)
    ids = [str(i) for i in range(2500)]
    fast = list(batches_from_matrix(ids, matrix))
    assert [len(b) for b in fast] == [1000, 1000, 500]
    assert all(b.metadata is None and b.sparse is None for b in fast)
    assert_batches_identical(fast, list(iter_batches(zip(ids, matrix, strict=True))))


def test_matrix_is_not_copied_when_already_float32() -> None:
    matrix = np.ones((10, 4), dtype=np.float32)
    [batch] = batches_from_matrix([str(i) for i in range(10)], matrix)
    assert batch.dense is not None
    assert np.shares_memory(batch.dense, matrix)


def test_matrix_accepts_lists_and_duplicate_ids() -> None:
    [batch] = batches_from_matrix(["a", "a"], [[1, 2], [3, 4]])
    assert batch.ids == ["a", "a"]
    assert batch.dense is not None
    assert batch.dense.dtype == np.float32
    assert batch.dense.tolist() == [[1, 2], [3, 4]]


def test_sparse_only_matrix() -> None:
    [batch] = batches_from_matrix(["a", "b"], np.empty((2, 0)), sparse=[SPARSE_OK, SPARSE_OK])
    assert batch.dense is None
    assert batch.sparse is not None
    with pytest.raises(
        RecordError, match=r"^Record #1 \('b'\): has neither dense values nor sparse values\.$"
    ):
        batches_from_matrix(["a", "b"], np.empty((2, 0)), sparse=[SPARSE_OK, None])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["a"], np.zeros((2, 3))), "ids has 1 entries but the matrix has 2 rows."),
        ((["a", "b"], np.zeros((2, 3)), [None]), "metadata has 1 entries but the matrix has 2 rows."),
        ((["a", "b"], np.zeros((2, 3)), None, [None] * 3), "sparse has 3 entries but the matrix has 2 rows."),
        ((["a"], np.zeros(3)), "The matrix must be 2-D (records, dimension), got shape (3,)."),
        ((["a"], np.array([["x"]])), "The matrix must hold real numbers, got dtype <U1."),
        ((["a"], np.array([[1j]])), "The matrix must hold real numbers, got dtype complex128."),
        ((["a"], [[None, 1.0]]), "The matrix must hold real numbers, got dtype object."),
        ((["a"], [["0.5"]]), "The matrix must hold real numbers, got dtype <U3."),
        (
            (["a", "b"], [[1.0, 2.0], [3.0]]),
            "The matrix must be a 2-D array of numbers, with rows of equal length.",
        ),
        ((["a", 5], np.zeros((2, 3))), "Record #1: id must be a non-empty string, got int."),
        ((["a", ""], np.zeros((2, 3))), "Record #1: id must be a non-empty string, got ''."),
        (
            (["a", "b"], np.zeros((2, 3)), [None, {2: 3}]),
            "Record #1 ('b'): metadata keys must be strings, got 2 (int).",
        ),
        (
            (["a", "b"], np.zeros((2, 3)), None, [None, {"indices": [-1], "values": [1]}]),
            "Record #1 ('b'): sparse_values.indices[0] = -1 is negative.",
        ),
        (
            (["a", "b"], np.array([[0.0, 0.0], [0.0, 1e300]])),
            "Record #1 ('b'): values[1] = 1e+300 is outside the float32 range.",
        ),
    ],
)
def test_matrix_errors(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(RecordError) as caught:
        batches_from_matrix(*args)
    assert str(caught.value) == message


def test_matrix_nan_is_found_before_anything_is_yielded() -> None:
    matrix = np.zeros((5000, 8), dtype=np.float32)
    matrix[4321, 5] = np.nan
    ids = [f"v{i}" for i in range(5000)]
    with pytest.raises(RecordError) as caught:
        batches_from_matrix(ids, matrix)  # raised at call time: nothing can have been sent
    assert str(caught.value) == "Record #4321 ('v4321'): values[5] is nan (NaN and infinity are not allowed)."
    records = zip(ids, matrix, strict=True)
    with pytest.raises(RecordError) as batched:
        list(iter_batches(records))
    assert str(batched.value) == str(caught.value)


def test_matrix_row_bigger_than_the_budget() -> None:
    with pytest.raises(RecordError, match=r"^Record #0 \('a'\): is about 4,017 bytes encoded"):
        batches_from_matrix(["a"], np.zeros((1, 1000)), max_batch_bytes=4000)


# ----------------------------------------------------------------------------------------- dataframes
class FakeFrame:
    """The two things records_from_dataframe uses: ``columns`` and column lookup."""

    def __init__(self, data: dict[str, list[Any]]) -> None:
        self.data = data
        self.columns = list(data)

    def __getitem__(self, name: str) -> list[Any]:
        return self.data[name]


def test_dataframe_rows() -> None:
    frame = FakeFrame(
        {
            "id": ["a", "b"],
            "values": [[1.0, 2.0], np.array([3.0, 4.0])],
            "metadata": [{"k": "v"}, float("nan")],
            "sparse_values": [None, {"indices": [1], "values": [0.5]}],
        }
    )
    rows = list(records_from_dataframe(frame))
    assert rows[0] == {"id": "a", "values": [1.0, 2.0], "sparse_values": None, "metadata": {"k": "v"}}
    assert rows[1]["metadata"] is None
    [batch] = iter_batches(records_from_dataframe(frame))
    assert batch.ids == ["a", "b"]
    assert batch.metadata == [{"k": "v"}, None]


def test_sparse_only_dataframe() -> None:
    frame = FakeFrame({"id": ["a"], "sparse_values": [{"indices": [1], "values": [0.5]}]})
    [batch] = iter_batches(records_from_dataframe(frame))
    assert batch.dense is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ([1, 2], "Expected a pandas DataFrame, got list."),
        (
            FakeFrame({"values": [[1.0]]}),
            "The DataFrame needs an 'id' column and a 'values' or 'sparse_values' column; it has ['values'].",
        ),
        (
            FakeFrame({"id": ["a"], "values": [[1.0]], "text": ["t"]}),
            (
                "The DataFrame has unknown columns ['text']; the accepted columns are id, values, "
                "sparse_values and metadata (drop or rename the others)."
            ),
        ),
    ],
)
def test_dataframe_errors(frame: Any, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        records_from_dataframe(frame)
    assert str(caught.value) == message


def test_real_pandas_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": ["a", "b"], "values": [[1.0, 2.0], [3.0, 4.0]], "metadata": [{"x": 1}, None]})
    [batch] = iter_batches(records_from_dataframe(frame))
    assert batch.ids == ["a", "b"]
    assert batch.metadata == [{"x": 1}, None]

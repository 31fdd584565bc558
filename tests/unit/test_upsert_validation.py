"""check_upsert (pinecone_rag.server.validation): the decoder's matrix and per-record rows check alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.server.records import IndexSpec
from pinecone_rag.server.validation import check_upsert

COSINE = IndexSpec(dimension=3, metric="cosine", vector_type="dense")
EUCLIDEAN = IndexSpec(dimension=3, metric="euclidean", vector_type="dense")
SPARSE = IndexSpec(dimension=None, metric="dotproduct", vector_type="sparse")


def _outcome(spec: IndexSpec, ids: list[str], dense: Any, metadata: list[object]) -> tuple[str, Any]:
    try:
        batch = check_upsert(spec, ids, dense, [None] * len(ids), metadata)
    except InvalidArgumentError as error:
        return "error", error.message
    assert batch.dense is not None
    assert batch.dense.dtype == np.float32
    return "ok", (batch.ids, batch.dense.tobytes(), batch.metadata)


@pytest.mark.parametrize(
    ("spec", "ids", "matrix"),
    [
        (COSINE, ["a", "b"], [[1, 0, 0], [0, 1, 0]]),
        (COSINE, ["a", "b"], [[1, 0, 0], [np.nan, 1, 0]]),
        (COSINE, ["a", "b"], [[1, 0, 0], [0, np.inf, 0]]),
        (COSINE, ["a", "b"], [[1, 0, 0], [0, 0, 0]]),
        (EUCLIDEAN, ["a", "b"], [[0, 0, 0], [3e38, 3e38, 0]]),
        (EUCLIDEAN, ["a", "b"], [[0, 0, 0], [1e18, 0, 0]]),
        (COSINE, ["a", ""], [[1, 0, 0], [0, 1, 0]]),
        (COSINE, ["a", "é"], [[1, 0, 0], [0, 1, 0]]),
        (COSINE, ["a", "b\x00"], [[1, 0, 0], [0, 1, 0]]),
        (COSINE, ["a", "b" * 513], [[1, 0, 0], [0, 1, 0]]),
    ],
)
def test_matrix_and_rows_give_the_same_result(spec: IndexSpec, ids: list[str], matrix: Any) -> None:
    block = np.array(matrix, dtype=np.float32)
    metadata: list[object] = [{"k": "v"}, None]
    from_rows = _outcome(spec, ids, list(block.copy()), metadata)
    from_matrix = _outcome(spec, ids, block, metadata)
    assert from_matrix == from_rows


def test_the_matrix_is_used_without_a_copy() -> None:
    block = np.eye(3, dtype=np.float32)
    batch = check_upsert(COSINE, ["a", "b", "c"], block, [None] * 3, [None] * 3)
    assert batch.dense is block


def test_a_matrix_of_the_wrong_width_is_reported_per_record() -> None:
    with pytest.raises(InvalidArgumentError, match="Vector dimension 2 does not match"):
        check_upsert(COSINE, ["a"], np.ones((1, 2), dtype=np.float32), [None], [None])


def test_sparse_indexes_refuse_a_dense_matrix() -> None:
    with pytest.raises(InvalidArgumentError, match="sparse indexes do not accept dense values"):
        check_upsert(SPARSE, ["a"], np.ones((1, 2), dtype=np.float32), [None], [None])

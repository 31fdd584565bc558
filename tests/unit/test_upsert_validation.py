"""check_upsert (pinecone_rag.server.validation): the decoder's matrix and per-record rows check alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _exact_verdict(spec: IndexSpec, row: Any) -> str:
    """What the rules say of one row, checked value by value in float64 (no shortcut)."""
    values = np.asarray(row, dtype=np.float64)
    if not np.isfinite(values).all():
        return "not finite"
    if float(values @ values) > float(np.finfo(np.float32).max):
        return "too large"
    if spec.metric == "cosine" and not values.any():
        return "zero"
    return "ok"


def _verdict(spec: IndexSpec, block: Any) -> str:
    try:
        check_upsert(spec, ["r"], block, [None], [None])
    except InvalidArgumentError as error:
        verdicts = {"NaN and infinity": "not finite", "too large": "too large", "non-zero value": "zero"}
        return next((verdict for text, verdict in verdicts.items() if text in error.message), error.message)
    return "ok"


_EDGE_VALUES = [0.0, 1e-30, -1e-25, 0.5, -3.0, 1e18, -1.3e19, 1.9e19, 3e38, np.nan, np.inf, -np.inf]


@settings(max_examples=300, deadline=None)
@given(
    row=st.lists(st.sampled_from(_EDGE_VALUES), min_size=3, max_size=3),
    metric=st.sampled_from(["cosine", "euclidean", "dotproduct"]),
)
def test_the_one_pass_check_decides_as_the_exact_rules(row: list[float], metric: Any) -> None:
    # Validation checks a block through its float32 squared norms; a row of values whose squares vanish
    # (1e-30) is not a zero vector, and squared norms near float32's limit are decided exactly.
    spec = IndexSpec(dimension=3, metric=metric, vector_type="dense")
    with np.errstate(over="ignore"):
        block = np.array([row], dtype=np.float32)
    assert _verdict(spec, block) == _exact_verdict(spec, block[0])


def test_the_squared_norms_validation_computed_are_handed_on() -> None:
    block = np.array([[3, 4, 0], [1e-30, 0, 0], [1, 1, 1]], dtype=np.float32)
    batch = check_upsert(COSINE, ["a", "b", "c"], block, [None] * 3, [None] * 3)
    assert batch.squared_norms is not None
    assert batch.squared_norms.tolist() == [25.0, 0.0, 3.0]  # the tiny row's square vanishes, yet it is kept
    # Values near float32's limit are checked one by one; the freshness layer then computes the norms.
    large = check_upsert(EUCLIDEAN, ["a"], np.array([[1.5e19, 0, 0]], dtype=np.float32), [None], [None])
    assert large.squared_norms is None

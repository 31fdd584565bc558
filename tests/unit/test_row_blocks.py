"""The freshness layer's block-wise row storage: the same answers as one contiguous matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinecone_rag.server import freshness
from pinecone_rag.server.freshness import FreshnessState, _RowBlocks
from pinecone_rag.server.records import IndexSpec, Metric, UpsertBatch
from pinecone_rag.server.validation import check_upsert

if TYPE_CHECKING:
    from numpy.typing import NDArray


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.integers(min_value=0, max_value=23), min_size=1, max_size=12),
    per_block=st.integers(min_value=1, max_value=7),
    width=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=2**16),
    adopt_rows=st.integers(min_value=1, max_value=30),
)
def test_row_blocks_match_a_contiguous_matrix(
    chunks: list[int], per_block: int, width: int, seed: int, adopt_rows: int
) -> None:
    # Appends of at least ``adopt_rows`` rows become blocks of their own, between fixed-size blocks
    # the smaller appends fill: every mix of the two must read back as the one matrix.
    rng = np.random.default_rng(seed)
    blocks = _RowBlocks(width, rows_per_block=per_block)
    parts = [rng.standard_normal((count, width)).astype(np.float32) for count in chunks]
    with patch.object(freshness, "_ADOPT_MIN_BYTES", adopt_rows * width * 4):
        for part in parts:
            blocks.extend(part.copy())
    reference = np.concatenate(parts)
    assert blocks.size == len(reference)
    for row in range(len(reference)):
        assert np.array_equal(blocks.row(row), reference[row])
    picked = rng.permutation(len(reference))[: len(reference) // 2].astype(np.int64)
    assert np.array_equal(blocks.take(picked), reference[picked])
    assert np.array_equal(blocks.take(np.zeros(0, dtype=np.int64)), reference[:0])
    vector = rng.standard_normal(width).astype(np.float32)
    assert np.allclose(blocks.matvec(vector), reference @ vector, rtol=1e-5, atol=1e-5)
    kept = np.sort(picked)
    with patch.object(freshness, "_ADOPT_MIN_BYTES", adopt_rows * width * 4):
        blocks.replace(reference[kept])
    assert np.array_equal(blocks.take(np.arange(len(kept), dtype=np.int64)), reference[kept])
    assert blocks.size == len(kept)


def _rows(count: int, width: int = 4, first: float = 0.0) -> NDArray[np.float32]:
    return (np.arange(count * width, dtype=np.float32) + first).reshape(count, width)


def test_a_large_append_is_kept_without_a_copy_and_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(freshness, "_ADOPT_MIN_BYTES", 10 * 4 * 4)  # 10 rows of width 4
    blocks = _RowBlocks(4, rows_per_block=8)
    small = _rows(3)
    large = _rows(10, first=100.0)
    blocks.extend(small)
    blocks.extend(large)
    blocks.extend(small)
    assert not np.shares_memory(blocks.row(0), small)  # small appends are copied
    assert np.shares_memory(blocks.row(3), large)  # the large one is held as it is
    with pytest.raises(ValueError, match="read-only"):
        blocks.row(3)[0] = 0.0
    assert large.flags.writeable  # the caller's own array is left as it was
    assert np.array_equal(blocks.take(np.arange(16, dtype=np.int64)), np.concatenate([small, large, small]))


def test_a_partly_filled_block_is_cut_to_its_rows_before_a_large_append(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fixed-size block's free rows are not left behind as a gap: row numbers stay dense.
    monkeypatch.setattr(freshness, "_ADOPT_MIN_BYTES", 10 * 4 * 4)
    blocks = _RowBlocks(4, rows_per_block=64)
    for first in range(3):
        blocks.extend(_rows(1, first=float(first)))
        blocks.extend(_rows(10, first=1000.0 * (first + 1)))
    assert blocks.size == 33
    assert blocks.matvec(np.ones(4, dtype=np.float32)).shape == (33,)
    assert np.array_equal(blocks.row(11), _rows(1, first=1.0)[0])
    assert np.array_equal(blocks.row(32), _rows(10, first=3000.0)[9])


def test_a_layer_spanning_many_blocks_searches_and_compacts_like_brute_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 64 rows per block (the minimum): 1,000 records fill 16 blocks, the last one partly.
    monkeypatch.setattr(freshness, "_BLOCK_BYTES", 1)
    rng = np.random.default_rng(7)
    spec = IndexSpec(8, "cosine", "dense")
    state = FreshnessState(spec)
    vectors = rng.standard_normal((1000, 8)).astype(np.float32)
    ids = [f"r{i}" for i in range(1000)]
    for start in range(0, 1000, 130):
        stop = min(start + 130, 1000)
        state.append(ids[start:stop], vectors[start:stop], [None] * (stop - start), [None] * (stop - start))
    # Kill most of the first rows: compaction moves every surviving row to a new place.
    for i in range(0, 1000, 2):
        state.kill(ids[i])
    state.compact()
    live_ids, dense, _, _ = state.live()
    assert live_ids == ids[1::2]
    assert dense is not None
    assert np.array_equal(dense, vectors[1::2])
    query = rng.standard_normal(8).astype(np.float32)
    found = state.search(
        vector=query, sparse=None, top_k=10, flt=None, include_values=True, include_metadata=False
    )
    survivors = vectors[1::2]
    cosine = survivors @ query / (np.linalg.norm(survivors, axis=1) * np.linalg.norm(query))
    expected = [ids[1::2][i] for i in np.argsort(-cosine, kind="stable")[:10]]
    assert [hit.record.id for hit in found] == expected
    for hit in found:
        assert hit.record.values is not None
        assert np.array_equal(hit.record.values, vectors[int(hit.record.id[1:])])


def test_upsert_batches_of_a_namespace_stay_whole_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(freshness, "_BLOCK_BYTES", 1)
    spec = IndexSpec(4, "dotproduct", "dense")
    state = FreshnessState(spec)
    batch = UpsertBatch(
        [f"x{i}" for i in range(150)], np.eye(150, 4, dtype=np.float32), [None] * 150, [None] * 150
    )
    state.append(batch.ids, batch.dense, batch.sparse, batch.metadata)
    record = state.get("x3")
    assert record is not None
    assert record.values is not None
    assert np.array_equal(record.values, np.array([0, 0, 0, 1], dtype=np.float32))


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_squared_norms_from_validation_score_as_norms_computed_on_apply(metric: Metric) -> None:
    spec = IndexSpec(16, metric, "dense")
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    ids = [f"r{i}" for i in range(300)]
    batch = check_upsert(spec, ids, vectors, [None] * 300, [None] * 300)
    assert batch.squared_norms is not None
    handed, computed = FreshnessState(spec), FreshnessState(spec)
    handed.append(batch.ids, batch.dense, batch.sparse, batch.metadata, batch.squared_norms)
    computed.append(batch.ids, batch.dense, batch.sparse, batch.metadata)
    query = rng.standard_normal(16).astype(np.float32)
    found = [
        [
            (hit.record.id, hit.score)
            for hit in state.search(
                vector=query, sparse=None, top_k=20, flt=None, include_values=False, include_metadata=False
            )
        ]
        for state in (handed, computed)
    ]
    assert found[0] == found[1]

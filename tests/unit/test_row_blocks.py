"""The freshness layer's block-wise row storage: the same answers as one contiguous matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pinecone_rag.server import freshness
from pinecone_rag.server.freshness import FreshnessState, _RowBlocks
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    import pytest


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.integers(min_value=0, max_value=23), min_size=1, max_size=12),
    per_block=st.integers(min_value=1, max_value=7),
    width=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_row_blocks_match_a_contiguous_matrix(
    chunks: list[int], per_block: int, width: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    blocks = _RowBlocks(width, rows_per_block=per_block)
    parts = [rng.standard_normal((count, width)).astype(np.float32) for count in chunks]
    for part in parts:
        blocks.extend(part)
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
    blocks.replace(reference[kept])
    assert np.array_equal(blocks.take(np.arange(len(kept), dtype=np.int64)), reference[kept])


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

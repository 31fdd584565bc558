"""Sparse-only clusters carry an inverted index; scores from it equal the CSR scan's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinecone_rag.errors import DataLossError
from pinecone_rag.server.blobstore import LocalBlobStore
from pinecone_rag.server.cluster_file import SECTION_POSTINGS, ClusterFile, write_cluster
from pinecone_rag.server.executor import _postings_scores, _sparse_scores
from pinecone_rag.server.records import SparseVector

if TYPE_CHECKING:
    from pathlib import Path

entries = st.dictionaries(st.integers(0, 40), st.floats(-3, 3, allow_nan=False, width=32), max_size=8)


def _vector(raw: dict[int, float]) -> SparseVector:
    indices = np.asarray(sorted(raw), dtype=np.uint32)
    return SparseVector(indices, np.asarray([raw[i] for i in sorted(raw)], dtype=np.float32))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.none() | entries, min_size=1, max_size=30), query=entries)
def test_postings_give_the_csr_scores(tmp_path_factory: pytest.TempPathFactory, rows, query) -> None:
    store = LocalBlobStore(tmp_path_factory.mktemp("blobs"))
    sparse = [None if raw is None else _vector(raw) for raw in rows]
    write_cluster(
        store,
        "c",
        ids=[f"r{i}" for i in range(len(rows))],
        dense=None,
        sparse=sparse,
        metadata=[None] * len(rows),
        metric="dotproduct",
        postings=True,
    )
    file = ClusterFile.open(store, "c")
    q = _vector(query)
    if file.sparse is None:
        assert file.postings is None
        return
    assert file.postings is not None
    expected, expected_overlap = _sparse_scores(file.sparse, q, file.count)
    got, overlap = _postings_scores(file.postings, q, file.count)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert np.array_equal(overlap, expected_overlap)


def test_a_flipped_byte_in_the_postings_is_detected(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    sparse = [_vector({1: 1.0, 5: 2.0}), _vector({5: 0.5})]
    write_cluster(
        store,
        "c",
        ids=["a", "b"],
        dense=None,
        sparse=sparse,
        metadata=[None, None],
        metric="dotproduct",
        postings=True,
    )
    with ClusterFile.open(store, "c") as intact:
        offset, length = intact._sections[SECTION_POSTINGS]
    path = store.path_of("c")
    data = bytearray(path.read_bytes())
    data[offset + length - 1] ^= 0xFF  # the last posting's value
    path.write_bytes(bytes(data))
    with pytest.raises(DataLossError, match="postings"):
        ClusterFile.open(store, "c")

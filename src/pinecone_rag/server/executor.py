"""The query executor: score one cluster file against a query, filter first, keep its top k.

Everything on the hot path is a numpy operation over the memory-mapped arrays of the file: the filter is
evaluated on the cluster's metadata columns (:mod:`pinecone_rag.server.column_filter`), rows hidden by
newer writes are masked out, and when the filter leaves few rows only those rows' vectors are read and
scored. No Python loop runs per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from pinecone_rag.server.column_filter import column_mask

if TYPE_CHECKING:
    import numpy.typing as npt

    from pinecone_rag.server.cluster_file import ClusterFile, Postings, SparseCSR
    from pinecone_rag.server.filters import Filter
    from pinecone_rag.server.records import FloatArray, SparseVector

_GATHER_BELOW: Final = 0.5
"""Score only the surviving rows when fewer than this share of the cluster survives the mask."""


@dataclass(frozen=True, slots=True)
class ScanQuery:
    """What a cluster scan needs to know about a query.

    Attributes:
        vector: The dense query, or None (sparse-only queries).
        sparse: The sparse query, or None.
        metric: The index metric; euclidean scores are squared distances (lower is better).
        top_k: How many matches to keep per cluster.
        flt: The parsed metadata filter, or None.
        sparse_index: The index is sparse-only: records that share no dimension with the query are not
            matches (Pinecone drops them).
    """

    vector: FloatArray | None
    sparse: SparseVector | None
    metric: str
    top_k: int
    flt: Filter | None
    sparse_index: bool

    @property
    def ascending(self) -> bool:
        """Lower scores rank first (euclidean distance)."""
        return self.metric == "euclidean"


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One cluster's best matches.

    Attributes:
        rows: Rows of the cluster file, best first.
        scores: Their scores.
        matched: How many rows matched the filter and were not hidden (for expand-until-k).
    """

    rows: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float32]
    matched: int


_EMPTY: Final = ScanResult(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), 0)


def scan_cluster(file: ClusterFile, query: ScanQuery, hidden: npt.NDArray[np.int64] | None) -> ScanResult:
    """Score a cluster's eligible rows and return its top ``query.top_k``.

    Args:
        file: The open cluster file.
        query: The query.
        hidden: Rows that newer writes replaced or deleted, or None.
    """
    count = file.count
    if count == 0:
        return _EMPTY
    # Take the arrays once: the file may be evicted from the cache while we scan, the arrays stay valid.
    dense, norms, csr = file.dense, file.norms, file.sparse
    mask: npt.NDArray[np.bool_] | None = None
    if query.flt is not None:
        mask = column_mask(query.flt, file.metadata_columns(), count)
    if hidden is not None and len(hidden):
        if mask is None:
            mask = np.ones(count, dtype=np.bool_)
        mask[hidden] = False
    rows: npt.NDArray[np.int64] | None = None
    if mask is not None:
        rows = np.flatnonzero(mask)
        if len(rows) == 0:
            return _EMPTY
        if len(rows) >= _GATHER_BELOW * count:
            rows = None  # scoring everything and masking is cheaper than gathering most rows
    scores = np.zeros(count if rows is None else len(rows), dtype=np.float32)
    if query.vector is not None and dense is not None and norms is not None:
        scores += dense_scores(dense, norms, query.vector, query.metric, rows)
    postings = file.postings
    if query.sparse is not None and (csr is not None or postings is not None):
        if postings is not None:
            sparse_scores, overlap = _postings_scores(postings, query.sparse, count)
        else:
            assert csr is not None
            sparse_scores, overlap = _sparse_scores(csr, query.sparse, count)
        scores += sparse_scores if rows is None else sparse_scores[rows]
        if query.sparse_index:
            mask = overlap if mask is None else mask & overlap
            if rows is not None:
                keep = overlap[rows]
                rows, scores = rows[keep], scores[keep]
    elif query.sparse_index:
        return _EMPTY
    if rows is None:
        rows = np.arange(count, dtype=np.int64)
        if mask is not None:
            rows = np.flatnonzero(mask)
            scores = scores[rows]
    matched = len(rows)
    if matched == 0:
        return _EMPTY
    order = top_positions(scores, query.top_k, ascending=query.ascending)
    return ScanResult(rows[order], scores[order], matched)


def top_positions(scores: npt.NDArray[np.float32], k: int, *, ascending: bool) -> npt.NDArray[np.int64]:
    """Positions of the best ``k`` scores, best first (ties by position, so results are deterministic)."""
    key = scores if ascending else -scores
    part = np.argpartition(key, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order: npt.NDArray[np.int64] = part[np.lexsort((part, key[part]))]
    return order


def dense_scores(
    dense: npt.NDArray[np.float32],
    norms: npt.NDArray[np.float32],
    vector: FloatArray,
    metric: str,
    rows: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.float32]:
    """Scores of ``dense`` rows (all, or ``rows``) against ``vector``: cosine, dot, squared distance."""
    block = dense if rows is None else dense[rows]
    row_norms = norms if rows is None else norms[rows]
    dots: npt.NDArray[np.float32] = block @ vector
    if metric == "cosine":
        denom = row_norms * np.float32(np.linalg.norm(vector))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denom > 0, dots / denom, 0.0).astype(np.float32)
    if metric == "euclidean":
        squared = np.float32(np.dot(vector, vector))
        distances: npt.NDArray[np.float32] = np.maximum(row_norms - 2.0 * dots + squared, 0.0).astype(
            np.float32
        )
        return distances
    return dots


def _postings_scores(
    postings: Postings, query: SparseVector, count: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Sparse dot products from the inverted index: only the query terms' posting lists are read."""
    overlap = np.zeros(count, dtype=np.bool_)
    terms = postings.terms
    if len(query.indices) == 0 or len(terms) == 0:
        return np.zeros(count, dtype=np.float32), overlap
    positions = np.searchsorted(terms, query.indices)
    clipped = np.minimum(positions, len(terms) - 1)
    found = np.flatnonzero(terms[clipped] == query.indices)
    if not len(found):
        return np.zeros(count, dtype=np.float32), overlap
    rows: list[npt.NDArray[np.uint32]] = []
    weights: list[npt.NDArray[np.float64]] = []
    for term in found.tolist():
        start, end = int(postings.offsets[clipped[term]]), int(postings.offsets[clipped[term] + 1])
        rows.append(postings.rows[start:end])
        weights.append(postings.values[start:end].astype(np.float64) * float(query.values[term]))
    all_rows = np.concatenate(rows).astype(np.int64)
    overlap[all_rows] = True
    scores = np.bincount(all_rows, weights=np.concatenate(weights), minlength=count).astype(np.float32)
    return scores, overlap


def _sparse_scores(
    csr: SparseCSR, query: SparseVector, count: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Sparse dot products of every row with ``query``, and which rows share a dimension with it."""
    overlap = np.zeros(count, dtype=np.bool_)
    if len(query.indices) == 0 or len(csr.indices) == 0:
        return np.zeros(count, dtype=np.float32), overlap
    order = np.argsort(query.indices, kind="stable")
    q_idx, q_val = query.indices[order], query.values[order]
    positions = np.minimum(np.searchsorted(q_idx, csr.indices), len(q_idx) - 1)
    hit = q_idx[positions] == csr.indices
    if not hit.any():
        return np.zeros(count, dtype=np.float32), overlap
    lengths = np.diff(csr.offsets).astype(np.int64)
    entry_rows = np.repeat(np.arange(count, dtype=np.int64), lengths)[hit]
    weights = csr.values[hit].astype(np.float64) * q_val[positions[hit]]
    overlap[entry_rows] = True
    return np.bincount(entry_rows, weights=weights, minlength=count).astype(np.float32), overlap

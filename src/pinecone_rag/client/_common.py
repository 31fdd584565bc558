"""I/O-free argument handling shared by :class:`Index` and :class:`AsyncIndex`."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.client._records import DEFAULT_MAX_BATCH_BYTES, batches_from_matrix, iter_batches
from pinecone_rag.errors import ConfigurationError, RecordError
from pinecone_rag.models import QueryResponse, ScoredVector, SparseValues, Usage

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    import numpy.typing as npt

    from pinecone_rag.client._records import RecordBatch

DEFAULT_MAX_CONCURRENCY = 8


def vector_arg(vector: Any) -> npt.NDArray[np.float32] | None:
    """A query or update vector as float32, or None."""
    if vector is None:
        return None
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1:
        raise ConfigurationError(f"A vector must be one-dimensional, got shape {array.shape}.")
    return array


def sparse_arg(sparse: Any) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]] | None:
    """Sparse values given as SparseValues, a dict ``{"indices", "values"}`` or a pair."""
    if sparse is None:
        return None
    if isinstance(sparse, SparseValues):
        return sparse.indices, sparse.values
    if isinstance(sparse, dict):
        indices, values = sparse.get("indices", []), sparse.get("values", [])
    else:
        indices, values = sparse
    return np.asarray(indices, dtype=np.uint32), np.asarray(values, dtype=np.float32)


def upsert_batches(
    vectors: Any,
    *,
    ids: Sequence[str] | None,
    metadata: Sequence[dict[str, Any] | None] | None,
    batch_size: int | None,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
) -> Iterator[RecordBatch]:
    """Batches for ``upsert``: a numpy matrix with ``ids`` (fast path), or any iterable of records.

    ``max_batch_bytes`` is the transport's budget per request (see ``max_upsert_bytes`` on transports).
    """
    if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
        if ids is None:
            raise RecordError("Upserting a matrix needs ids=[...] with one id per row.")
        return batches_from_matrix(
            ids, vectors, metadata, batch_size=batch_size, max_batch_bytes=max_batch_bytes
        )
    if ids is not None or metadata is not None:
        raise RecordError("ids= and metadata= go with a 2-D numpy matrix; records carry their own.")
    records: Iterable[object] = vectors
    return iter_batches(records, batch_size=batch_size, max_batch_bytes=max_batch_bytes)


def total_hint(vectors: Any) -> int | None:
    """The number of records, when it is known without consuming an iterator."""
    try:
        return len(vectors)
    except TypeError:
        return None


def check_query(vector: Any, record_id: str | None, sparse: Any) -> None:
    """A query takes a vector or an id (plus optional sparse values), or sparse values alone."""
    if vector is not None and record_id is not None:
        raise ConfigurationError("Pass either vector= or id= to query, not both.")
    if vector is None and record_id is None and sparse is None:
        raise ConfigurationError("query needs vector=, id= or sparse_vector=.")


def merge_namespace_results(results: Sequence[QueryResponse], *, metric: str, top_k: int) -> QueryResponse:
    """The best ``top_k`` matches over several namespaces (euclidean: lowest scores first)."""
    if metric not in ("cosine", "dotproduct", "euclidean"):
        raise ConfigurationError("metric must be cosine, dotproduct or euclidean.")
    matches: list[ScoredVector] = [match for result in results for match in result.matches]
    if metric == "euclidean":
        best = heapq.nsmallest(top_k, matches, key=lambda m: m.score)
    else:
        best = heapq.nlargest(top_k, matches, key=lambda m: m.score)
    units = [r.usage.read_units for r in results if r.usage is not None and r.usage.read_units is not None]
    return QueryResponse(best, "", Usage(sum(units)) if units else None)

"""I/O-free planning of a ``VectorStoreQuery`` and parsing of its result, shared by sync and async calls.

Supported modes: DEFAULT (dense), SPARSE, HYBRID (``alpha``; ``hybrid_top_k``) and MMR (``mmr_threshold``).
Any other mode raises :class:`UnsupportedQueryError` rather than searching with a made-up vector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.vector_stores.types import (
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)

from llama_index.vector_stores.pinecone_rag.filters import FilterTree, and_filters, to_pinecone_filter
from llama_index.vector_stores.pinecone_rag.metadata import NODE_ID_KEY, REF_DOC_KEY, metadata_to_node
from llama_index.vector_stores.pinecone_rag.sparse import hybrid_scale

if TYPE_CHECKING:
    from collections.abc import Mapping

    from llama_index.core.schema import BaseNode

    from llama_index.vector_stores.pinecone_rag.sparse import SparseEncoder
    from pinecone_rag import QueryResponse, SparseValues

__all__ = ["DEFAULT_ALPHA", "IndexInfo", "QueryPlan", "UnsupportedQueryError", "plan_query"]

DEFAULT_ALPHA: Final = 0.5
"""HYBRID weight of the dense part when the query gives no ``alpha``."""
MMR_PREFETCH_FACTOR: Final = 4
"""MMR re-ranks this many times ``similarity_top_k`` candidates (at least :data:`MMR_MIN_PREFETCH`)."""
MMR_MIN_PREFETCH: Final = 20


class UnsupportedQueryError(ValueError):
    """A query this store cannot run as asked (unsupported mode, missing embedding or sparse encoder)."""


@dataclass(frozen=True)
class IndexInfo:
    """What the store needs to know about its index: metric, dense dimension and vector type."""

    metric: str
    dimension: int | None
    vector_type: str


@dataclass(frozen=True)
class QueryPlan:
    """One Pinecone query and how to turn its matches into a ``VectorStoreQueryResult``.

    ``filter`` False means nothing can match: callers return :meth:`empty` without a request.
    """

    vector: Any
    sparse_vector: SparseValues | None
    top_k: int
    filter: FilterTree
    include_values: bool
    metric: str
    text_key: str
    mmr: tuple[list[float], int, float | None] | None = None

    @property
    def filter_dict(self) -> dict[str, Any] | None:
        """The filter to send (None for no filtering)."""
        return self.filter if isinstance(self.filter, dict) else None

    @staticmethod
    def empty() -> VectorStoreQueryResult:
        """The result of a query nothing can match."""
        return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])

    def result(self, response: QueryResponse) -> VectorStoreQueryResult:
        """Nodes, similarities (higher is better for every metric) and ids of the matches."""
        nodes: list[BaseNode] = []
        similarities: list[float] = []
        ids: list[str] = []
        for match in response.matches:
            node = metadata_to_node(match.metadata or {}, record_id=match.id, text_key=self.text_key)
            if match.values is not None and len(match.values):
                node.embedding = match.values.tolist()
            nodes.append(node)
            similarities.append(similarity(match.score, self.metric))
            ids.append(match.id)
        if self.mmr is None:
            return VectorStoreQueryResult(nodes=nodes, similarities=similarities, ids=ids)
        return self._rerank_mmr(nodes, ids)

    def _rerank_mmr(self, nodes: list[BaseNode], ids: list[str]) -> VectorStoreQueryResult:
        assert self.mmr is not None
        query_embedding, top_k, threshold = self.mmr
        embeddings = [node.get_embedding() for node in nodes]
        scores, chosen = get_top_k_mmr_embeddings(
            query_embedding,
            embeddings,
            similarity_top_k=top_k,
            embedding_ids=list(range(len(nodes))),
            mmr_threshold=threshold,
        )
        return VectorStoreQueryResult(
            nodes=[nodes[i] for i in chosen], similarities=list(scores), ids=[ids[i] for i in chosen]
        )


def similarity(score: float, metric: str) -> float:
    """A similarity where higher is better: the score itself, or ``1 / (1 + distance)`` for euclidean.

    Pinecone's euclidean score is the squared distance (lower is better).

    Example:
        >>> similarity(9.0, "euclidean")
        0.25
    """
    if metric == "euclidean":
        return 1.0 / (1.0 + math.sqrt(max(score, 0.0)))
    return score


def plan_query(
    query: VectorStoreQuery,
    *,
    info: IndexInfo,
    sparse_encoder: SparseEncoder | None,
    text_key: str,
    kwargs: Mapping[str, Any],
) -> QueryPlan:
    """Plan the Pinecone query for ``query``.

    Args:
        query: The LlamaIndex query. Non-empty ``doc_ids`` / ``node_ids`` restrict the search; empty lists
            (what ``as_retriever()`` passes for text-storing stores) do not.
        info: The index's metric, dimension and vector type.
        sparse_encoder: Needed by SPARSE and HYBRID.
        text_key: Where a stripped text is stored.
        kwargs: ``vector_store_kwargs``: ``filter`` (a raw Pinecone filter, AND-ed with ``query.filters``),
            ``include_values``, ``mmr_threshold``, ``mmr_prefetch_k``.

    Raises:
        UnsupportedQueryError: An unsupported mode, or a mode whose inputs are missing.
        UnsupportedFilterError: A filter Pinecone cannot express.
    """
    mode = VectorStoreQueryMode(query.mode)
    filters = and_filters(
        to_pinecone_filter(query.filters),
        _restriction(REF_DOC_KEY, query.doc_ids),
        _restriction(NODE_ID_KEY, query.node_ids),
        kwargs.get("filter") or kwargs.get("pinecone_query_filters") or True,
    )
    include_values = bool(kwargs.get("include_values", False))
    top_k = query.similarity_top_k
    vector: Any = None
    sparse: SparseValues | None = None
    mmr: tuple[list[float], int, float | None] | None = None
    if mode == VectorStoreQueryMode.DEFAULT:
        vector = _dense(query, mode, info)
    elif mode == VectorStoreQueryMode.MMR:
        vector = _dense(query, mode, info)
        threshold = query.mmr_threshold if query.mmr_threshold is not None else kwargs.get("mmr_threshold")
        mmr = (vector, top_k, threshold)
        prefetch = int(kwargs.get("mmr_prefetch_k") or max(MMR_MIN_PREFETCH, MMR_PREFETCH_FACTOR * top_k))
        top_k, include_values = max(prefetch, top_k), True
    elif mode == VectorStoreQueryMode.SPARSE:
        if info.vector_type == "dense" and info.metric != "dotproduct":
            raise UnsupportedQueryError(
                "SPARSE queries need a sparse index or a dense index with the dotproduct metric; this one "
                f"uses {info.metric}."
            )
        sparse = _sparse(query, mode, sparse_encoder)
        # A dense index needs a dense vector too: all zeros is a sparse-only score (alpha = 0), deliberately.
        if info.vector_type != "sparse":
            vector = np.zeros(_dimension(info), dtype=np.float32)
        top_k = query.sparse_top_k or top_k
    elif mode == VectorStoreQueryMode.HYBRID:
        if info.metric != "dotproduct" or info.vector_type == "sparse":
            raise UnsupportedQueryError(
                f"HYBRID queries need a dense index with the dotproduct metric; this one is "
                f"{info.vector_type} with {info.metric}."
            )
        alpha = DEFAULT_ALPHA if query.alpha is None else query.alpha
        vector, sparse = hybrid_scale(_dense(query, mode, info), _sparse(query, mode, sparse_encoder), alpha)
        top_k = query.hybrid_top_k or top_k
    else:
        raise UnsupportedQueryError(
            f"Query mode {mode.value!r} is not supported by this store; use 'default', 'sparse', 'hybrid' "
            "or 'mmr'."
        )
    return QueryPlan(
        vector,
        sparse,
        top_k,
        filter=filters,
        include_values=include_values,
        metric=info.metric,
        text_key=text_key,
        mmr=mmr,
    )


def _restriction(key: str, values: list[str] | None) -> FilterTree:
    return {key: {"$in": list(values)}} if values else True


def _dense(query: VectorStoreQuery, mode: VectorStoreQueryMode, info: IndexInfo) -> list[float]:
    if info.vector_type == "sparse":
        raise UnsupportedQueryError(
            f"Mode {mode.value!r} needs dense vectors but the index is sparse; use mode 'sparse'."
        )
    if query.query_embedding is None:
        raise UnsupportedQueryError(
            f"Mode {mode.value!r} needs query.query_embedding (is the store's is_embedding_query off?)."
        )
    return list(query.query_embedding)


def _sparse(
    query: VectorStoreQuery, mode: VectorStoreQueryMode, encoder: SparseEncoder | None
) -> SparseValues:
    if encoder is None:
        raise UnsupportedQueryError(
            f"Mode {mode.value!r} needs a sparse encoder: build the store with sparse_encoder=BM25Encoder() "
            "(fitted on your corpus) or any BaseSparseEmbedding, and add the documents through it."
        )
    if not query.query_str:
        raise UnsupportedQueryError(f"Mode {mode.value!r} needs query.query_str to encode.")
    return encoder.encode_queries(query.query_str)


def _dimension(info: IndexInfo) -> int:
    if not info.dimension:
        raise UnsupportedQueryError("The index reports no dimension; cannot build a dense vector.")
    return info.dimension

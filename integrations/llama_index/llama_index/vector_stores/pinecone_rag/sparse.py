"""Sparse encoders for SPARSE and HYBRID queries, and Pinecone's convex hybrid weighting.

Any object with ``encode_documents(texts) -> list[SparseValues]`` and ``encode_queries(text) ->
SparseValues`` works, such as the shared :class:`pinecone_rag.sparse.BM25Encoder` (the default: pure
numpy, no model download). A LlamaIndex ``BaseSparseEmbedding`` (``{index: weight}`` dicts) is adapted by
:func:`as_sparse_encoder`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding

from pinecone_rag import SparseValues
from pinecone_rag.sparse import BM25Encoder

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SparseEmbeddingEncoder", "SparseEncoder", "as_sparse_encoder", "hybrid_scale"]


@runtime_checkable
class SparseEncoder(Protocol):
    """Encodes documents and queries into sparse vectors (``BM25Encoder`` is one)."""

    def encode_documents(self, texts: Sequence[str]) -> list[SparseValues]:
        """One sparse vector per document text."""
        ...

    def encode_queries(self, texts: str) -> SparseValues:
        """The sparse vector of one query text."""
        ...


class SparseEmbeddingEncoder:
    """A LlamaIndex ``BaseSparseEmbedding`` seen as a :class:`SparseEncoder`."""

    def __init__(self, model: BaseSparseEmbedding) -> None:
        self.model = model

    def encode_documents(self, texts: Sequence[str]) -> list[SparseValues]:
        """Embed document texts with the model's text embedding."""
        return [_from_dict(item) for item in self.model.get_text_embedding_batch(list(texts))]

    def encode_queries(self, texts: str) -> SparseValues:
        """Embed a query with the model's query embedding."""
        return _from_dict(self.model.get_query_embedding(texts))


def _from_dict(weights: dict[int, float]) -> SparseValues:
    indices = sorted(weights)
    return SparseValues.of(indices, [weights[i] for i in indices])


def as_sparse_encoder(encoder: Any) -> SparseEncoder | None:
    """Normalise the store's ``sparse_encoder`` argument (None stays None; True means a new BM25Encoder)."""
    if encoder is None or encoder is False:
        return None
    if encoder is True:
        return BM25Encoder()
    if isinstance(encoder, BaseSparseEmbedding):
        return SparseEmbeddingEncoder(encoder)
    if isinstance(encoder, SparseEncoder):
        return encoder
    raise TypeError(
        "sparse_encoder must be a BM25Encoder, an object with encode_documents/encode_queries, or a "
        f"LlamaIndex BaseSparseEmbedding; got {type(encoder).__name__}."
    )


def hybrid_scale(dense: Sequence[float], sparse: SparseValues, alpha: float) -> tuple[Any, SparseValues]:
    """Weight a hybrid query: dense by ``alpha``, sparse by ``1 - alpha`` (Pinecone's convex combination).

    On a dotproduct index the score is then ``alpha * dense_score + (1 - alpha) * sparse_score``.

    Example:
        >>> dense, sparse = hybrid_scale([1.0, 1.0], SparseValues.of([3], [2.0]), 0.25)
        >>> dense.tolist(), sparse.values.tolist()
        ([0.25, 0.25], [1.5])
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 (sparse only) and 1 (dense only), got {alpha}.")
    scaled = np.asarray(dense, dtype=np.float32) * np.float32(alpha)
    return scaled, SparseValues(sparse.indices, sparse.values * np.float32(1.0 - alpha))

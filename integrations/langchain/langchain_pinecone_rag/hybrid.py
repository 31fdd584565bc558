"""Hybrid (dense + sparse) queries: BM25 sparse vectors weighted against the dense embedding.

Pinecone scores a hybrid query on a dotproduct index as ``dense . q_dense + sparse . q_sparse``. Scaling
the query's dense part by ``alpha`` and its sparse part by ``1 - alpha`` turns that into the convex
combination ``alpha * dense_score + (1 - alpha) * sparse_score``: ``alpha=1`` is pure semantic search,
``alpha=0`` pure keyword search. Stored documents keep their unscaled vectors, so ``alpha`` can change per
query.

Example:
    >>> from pinecone_rag import SparseValues
    >>> dense, sparse = hybrid_scale([1.0, 2.0], SparseValues.of([7], [4.0]), alpha=0.75)
    >>> dense, sparse.values.tolist()
    ([0.75, 1.5], [1.0])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pinecone_rag import SparseValues

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["check_alpha", "hybrid_scale"]


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in 0..1.

    Raises:
        ValueError: ``alpha`` is outside 0..1.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha weighs dense against sparse and must be within 0..1, got {alpha}.")
    return float(alpha)


def hybrid_scale(
    dense: Sequence[float], sparse: SparseValues, alpha: float
) -> tuple[list[float], SparseValues]:
    """The dense query times ``alpha`` and the sparse query times ``1 - alpha``.

    Raises:
        ValueError: ``alpha`` is outside 0..1.
    """
    weight = check_alpha(alpha)
    scaled_dense = [float(value) * weight for value in dense]
    scaled_sparse = SparseValues(
        sparse.indices, (sparse.values * np.float32(1.0 - weight)).astype(np.float32)
    )
    return scaled_dense, scaled_sparse

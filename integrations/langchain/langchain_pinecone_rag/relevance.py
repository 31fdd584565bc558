"""Relevance functions: the engine's native score for each metric mapped onto 0..1, higher is better.

Pinecone returns, best first:

* cosine: the cosine similarity s in [-1, 1]; relevance (1 + s) / 2.
* dotproduct: the dot product; for unit vectors (what dotproduct indexes are meant for) it is the cosine
  similarity, so relevance is (1 + s) / 2 as well.
* euclidean: the *squared* distance d, lower is better (see ``pinecone_rag.ScoredVector``). For unit
  vectors d = 2 - 2s, so 1 - d / 4 equals the cosine relevance exactly: a ``score_threshold`` means the
  same thing whichever metric the index uses.

Vectors that are not unit length can fall outside the range the formulas assume; results are clipped to
0..1 (also absorbing float noise such as 1.0000001, which made langchain-pinecone's own relevance tests
xfail). Pass ``relevance_score_fn=`` to the store for another mapping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["cosine_relevance", "dotproduct_relevance", "relevance_fn", "squared_euclidean_relevance"]


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def cosine_relevance(score: float) -> float:
    """Cosine similarity -> 0..1.

    Example:
        >>> cosine_relevance(1.0), cosine_relevance(0.0), cosine_relevance(-1.0)
        (1.0, 0.5, 0.0)
    """
    return _clip((1.0 + score) / 2.0)


def dotproduct_relevance(score: float) -> float:
    """Dot product of unit vectors -> 0..1 (a similarity, not a distance).

    Example:
        >>> dotproduct_relevance(0.9) > dotproduct_relevance(0.2)
        True
    """
    return _clip((1.0 + score) / 2.0)


def squared_euclidean_relevance(distance: float) -> float:
    """Squared euclidean distance of unit vectors (0..4) -> 0..1.

    Example:
        >>> [squared_euclidean_relevance(d) for d in (0.0, 2.0, 4.0)]
        [1.0, 0.5, 0.0]
    """
    return _clip(1.0 - distance / 4.0)


def relevance_fn(metric: str) -> Callable[[float], float]:
    """The relevance function for an index metric.

    Raises:
        ValueError: an unknown metric.
    """
    functions: dict[str, Callable[[float], float]] = {
        "cosine": cosine_relevance,
        "dotproduct": dotproduct_relevance,
        "euclidean": squared_euclidean_relevance,
    }
    try:
        return functions[metric]
    except KeyError:
        raise ValueError(
            f"No relevance function for metric {metric!r}; expected one of {sorted(functions)}."
        ) from None

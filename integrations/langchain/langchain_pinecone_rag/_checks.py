"""Argument checks shared by the vector store's sync and async methods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


def no_extra(method: str, kwargs: Mapping[str, Any]) -> None:
    """Refuse keyword arguments a method does not take."""
    # Silently ignoring unknown keyword arguments hid typos in langchain-pinecone (include_values ...).
    if kwargs:
        raise TypeError(f"{method}() got unexpected keyword arguments: {', '.join(sorted(kwargs))}.")


def check_k(k: int) -> int:
    """``k`` if it is a positive integer; ValueError otherwise."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    return k

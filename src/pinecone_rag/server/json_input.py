"""Checks of JSON request values shared by the REST routes: lists, and lists of numbers as arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from pinecone_rag.errors import InvalidArgumentError


def as_list(value: Any, what: str) -> list[Any]:
    """``value`` if it is a JSON list, ``[]`` if absent; anything else is a 400 naming ``what``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgumentError(f"{what} must be a list.")
    return value


def number_array(value: Any, what: str) -> Any:
    """A JSON list of numbers as a numpy array (one C-level conversion, no per-float Python checks).

    Returns ``[]`` for an absent or empty list. Anything but a flat list of numbers (strings, nulls,
    booleans, nested or ragged lists, integers too large for a float) is a 400 naming ``what``.
    """
    items = as_list(value, what)
    if not items:
        return items
    try:
        array = np.array(items)
    except (ValueError, TypeError, OverflowError):
        array = None  # ragged nesting such as [1, [2, 3]]: numpy refuses to build the array
    # Strings, nulls and nested lists give a non-numeric dtype or more dimensions.
    if array is None or array.ndim != 1 or array.dtype.kind not in "fiu":
        raise InvalidArgumentError(f"{what} must be a list of numbers.")
    return array


def float32_vector(value: Any, what: str) -> Any:
    """A JSON list of numbers as float32, or None when absent or empty (see :func:`number_array`).

    Numbers beyond float32's range become infinities here, which the engine's checks then refuse with
    a 400 naming the position; the cast itself must not fail (nor warn) on them.
    """
    values = number_array(value, what)
    if not len(values):
        return None
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float32)


__all__ = ["as_list", "float32_vector", "number_array"]

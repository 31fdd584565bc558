"""Metadata filters evaluated over a cluster's columns, as numpy operations.

:func:`pinecone_rag.server.filters.filter_mask` calls the compiled filter once per record; a cluster scan
cannot afford a Python call per row. Here every condition becomes one array operation on the cluster's
:class:`~pinecone_rag.server.cluster_stats.MetadataColumn` of its field (a posting-list lookup for string
equality, a comparison on the number or bool array otherwise), and ``$and`` / ``$or`` become ``&`` / ``|``.
The result is the same mask, row for row, as the per-record matcher gives (a property test checks it).
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Final

import numpy as np

from pinecone_rag.server.filters import And, Condition, Or

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import numpy.typing as npt

    from pinecone_rag.server.cluster_stats import MetadataColumn
    from pinecone_rag.server.filters import Filter, Node, Scalar

_COMPARE: Final[dict[str, Callable[[npt.NDArray[np.float64], float], npt.NDArray[np.bool_]]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def column_mask(flt: Filter, columns: Mapping[str, MetadataColumn], count: int) -> npt.NDArray[np.bool_]:
    """Rows of a cluster whose metadata matches ``flt``.

    Args:
        flt: The parsed filter.
        columns: The cluster's metadata columns by field name (a field no record has is absent).
        count: The cluster's record count.

    Returns:
        A boolean array of length ``count``.
    """
    return _node(flt.root, columns, count)


def _node(node: Node, columns: Mapping[str, MetadataColumn], count: int) -> npt.NDArray[np.bool_]:
    if isinstance(node, And):
        result = _node(node.children[0], columns, count)
        for child in node.children[1:]:
            if not result.any():
                break
            result &= _node(child, columns, count)
        return result
    if isinstance(node, Or):
        result = _node(node.children[0], columns, count)
        for child in node.children[1:]:
            result |= _node(child, columns, count)
        return result
    return _condition(node, columns.get(node.field), count)


def _condition(condition: Condition, column: MetadataColumn | None, count: int) -> npt.NDArray[np.bool_]:
    op, value = condition.op, condition.value
    if op == "$exists":
        present = _present(column, count)
        return present if value else ~present
    if op in ("$in", "$nin"):
        values = value if isinstance(value, tuple) else (value,)
        hits = np.zeros(count, dtype=np.bool_)
        for item in values:
            hits |= _equal(column, item, count)
        return hits if op == "$in" else ~hits
    if isinstance(value, tuple):
        raise TypeError(f"operator {op} does not accept a tuple operand")
    if op in ("$eq", "$ne"):
        hits = _equal(column, value, count)
        return hits if op == "$eq" else ~hits
    if isinstance(value, bool) or not isinstance(value, int | float) or column is None:
        return np.zeros(count, dtype=np.bool_)
    if column.numbers is None:
        return np.zeros(count, dtype=np.bool_)
    with np.errstate(invalid="ignore"):  # NaN marks rows without a number: every comparison is False
        return np.asarray(_COMPARE[op](column.numbers, float(value)), dtype=np.bool_)


def _present(column: MetadataColumn | None, count: int) -> npt.NDArray[np.bool_]:
    if column is None:
        return np.zeros(count, dtype=np.bool_)
    return np.array(column.present, dtype=np.bool_)


def _equal(column: MetadataColumn | None, value: Scalar, count: int) -> npt.NDArray[np.bool_]:
    hits = np.zeros(count, dtype=np.bool_)
    if column is None:
        return hits
    if isinstance(value, bool):
        if column.bools is not None:
            hits = column.bools == int(value)
        return hits
    if isinstance(value, str):
        hits[column.strings.rows(value)] = True
        return hits
    if column.numbers is not None:
        hits = column.numbers == float(value)
    return hits

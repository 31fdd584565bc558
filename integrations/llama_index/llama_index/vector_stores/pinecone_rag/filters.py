"""LlamaIndex ``MetadataFilters`` -> Pinecone's metadata filter language.

Every ``FilterOperator`` that Pinecone can express is translated so that, on metadata this store writes,
a record matches exactly when LlamaIndex's reference implementation (``build_metadata_filter_fn``, used by
``SimpleVectorStore``) says it does:

============================  ===========================================  ============================
LlamaIndex                    Pinecone                                     Notes
============================  ===========================================  ============================
EQ / NE                       ``$eq`` / ``$ne``                            NE matches a missing key
GT / GTE / LT / LTE           ``$gt`` / ``$gte`` / ``$lt`` / ``$lte``      numbers only
IN / NIN                      ``$in`` / ``$nin``                           NIN matches a missing key
ANY                           ``$in``                                      on list-of-string fields
ALL                           ``$and`` of ``$eq``                          on list-of-string fields
CONTAINS                      ``$eq``                                      on list-of-string fields
IS_EMPTY                      ``$exists: false`` or ``$eq: ""``            the store drops None and []
TEXT_MATCH(_INSENSITIVE)      --                                           raises UnsupportedFilterError
============================  ===========================================  ============================

Conditions ``AND`` / ``OR`` map to ``$and`` / ``$or``; ``NOT`` ("none of the filters match", as in the
reference) has no Pinecone operator, so it is pushed down to the leaves by De Morgan's laws and each leaf is
replaced by its exact negation (EQ <-> NE, IN <-> NIN, GT -> missing or LTE, ...). Nested
``MetadataFilters`` nest to any depth.

Where Pinecone's semantics differ from Python's, the reference's own domain decides: on a list field
Pinecone's ``$eq`` means "contains" (the reference compares the whole list), and ``CONTAINS`` / ``ANY`` on a
string field mean equality rather than substring search. Range operators compare numbers only; a string
operand raises instead of silently matching nothing.

Example:
    >>> from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters
    >>> to_pinecone_filter(MetadataFilters(filters=[MetadataFilter(key="year", value=2020, operator=">")]))
    {'year': {'$gt': 2020}}
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

__all__ = ["FilterTree", "UnsupportedFilterError", "and_filters", "to_pinecone_filter"]

FilterTree: TypeAlias = dict[str, Any] | bool
"""A Pinecone filter, or a constant: True matches every record, False none."""

_COMPARISON: Final = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
}
_NEGATED_COMPARISON: Final = {
    "$eq": "$ne",
    "$ne": "$eq",
    "$gt": "$lte",
    "$gte": "$lt",
    "$lt": "$gte",
    "$lte": "$gt",
}
_RANGE: Final = frozenset({FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE})
_LIST_OPERATORS: Final = frozenset(
    {FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL}
)


class UnsupportedFilterError(ValueError):
    """A filter that Pinecone's filter language cannot express (the message names the operator)."""


def to_pinecone_filter(filters: MetadataFilters | None) -> FilterTree:
    """Translate LlamaIndex filters into a Pinecone filter.

    Args:
        filters: The filters; None or an empty list means no filtering.

    Returns:
        A Pinecone filter dict, True when every record matches (no filter to send), or False when no record
        can match (e.g. ``IN []``), so callers can skip the request.

    Raises:
        UnsupportedFilterError: An operator Pinecone cannot express (TEXT_MATCH, TEXT_MATCH_INSENSITIVE), or
            an operand of the wrong shape (a list for EQ, a string for GT, ...).
    """
    if filters is None or not filters.filters:
        return True
    return _group(filters, negate=False)


def and_filters(*parts: FilterTree) -> FilterTree:
    """Combine filters with AND, folding constants (``and_filters(True, f) == f``)."""
    clauses: list[dict[str, Any]] = []
    for part in parts:
        if part is False:
            return False
        if part is True:
            continue
        assert isinstance(part, dict)
        clauses.extend(part["$and"] if set(part) == {"$and"} else [part])
    if not clauses:
        return True
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _or_filters(parts: list[FilterTree]) -> FilterTree:
    clauses: list[dict[str, Any]] = []
    for part in parts:
        if part is True:
            return True
        if part is False:
            continue
        assert isinstance(part, dict)
        clauses.extend(part["$or"] if set(part) == {"$or"} else [part])
    if not clauses:
        return False
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _group(filters: MetadataFilters, *, negate: bool) -> FilterTree:
    condition = filters.condition or FilterCondition.AND
    # NOT(f1, f2) means "none matches": AND of the negations. De Morgan turns a negated group into the dual
    # group of negated children, so negation only ever reaches the leaves.
    if condition == FilterCondition.NOT:
        children_negated, conjunctive = not negate, not negate
    elif condition == FilterCondition.AND:
        children_negated, conjunctive = negate, not negate
    elif condition == FilterCondition.OR:
        children_negated, conjunctive = negate, negate
    else:
        raise UnsupportedFilterError(f"Filter condition {condition!r} is not supported.")
    children = [_node(child, negate=children_negated) for child in filters.filters]
    return and_filters(*children) if conjunctive else _or_filters(children)


def _node(node: MetadataFilter | MetadataFilters, *, negate: bool) -> FilterTree:
    if isinstance(node, MetadataFilters):
        if not node.filters:
            # An empty group constrains nothing; its negation excludes everything.
            return not negate
        return _group(node, negate=negate)
    return _leaf(node, negate=negate)


def _leaf(item: MetadataFilter, *, negate: bool) -> FilterTree:
    op, key, value = FilterOperator(item.operator), item.key, item.value
    if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        raise UnsupportedFilterError(
            f"Filter operator {op.name} ({op.value!r}) on key {key!r} is not supported: Pinecone's filter "
            "language has no substring or text search. Store the terms as a list of strings and use CONTAINS "
            "or ANY, or use a sparse/hybrid query."
        )
    if op == FilterOperator.IS_EMPTY:
        empty: dict[str, Any] = {"$or": [{key: {"$exists": False}}, {key: {"$eq": ""}}]}
        if negate:
            return {"$and": [{key: {"$exists": True}}, {key: {"$ne": ""}}]}
        return empty
    if op in _LIST_OPERATORS:
        return _list_leaf(op, key, _list_operand(op, key, value), negate=negate)
    if op == FilterOperator.CONTAINS:
        return {key: {"$ne" if negate else "$eq": _scalar_operand(op, key, value)}}
    pinecone_op = _COMPARISON.get(op)
    if pinecone_op is None:
        raise UnsupportedFilterError(
            f"Filter operator {op.name} ({op.value!r}) on key {key!r} is not supported."
        )
    operand = _scalar_operand(op, key, value)
    if op in _RANGE:
        if isinstance(operand, str):
            raise UnsupportedFilterError(
                f"Filter operator {op.name} on key {key!r} got the string {operand!r}: Pinecone compares "
                "numbers only. Store the field as a number (e.g. a Unix timestamp) to filter by range."
            )
        if negate:
            # not (x > v) holds for a missing key too, so the negation keeps records without the key.
            return {"$or": [{key: {"$exists": False}}, {key: {_NEGATED_COMPARISON[pinecone_op]: operand}}]}
        return {key: {pinecone_op: operand}}
    return {key: {_NEGATED_COMPARISON[pinecone_op] if negate else pinecone_op: operand}}


def _list_leaf(op: FilterOperator, key: str, values: list[Any], *, negate: bool) -> FilterTree:
    if op in (FilterOperator.IN, FilterOperator.ANY, FilterOperator.NIN):
        positive = op != FilterOperator.NIN
        if negate:
            positive = not positive
        if not values:
            # IN [] matches nothing and NIN [] everything; Pinecone rejects empty lists, so fold them here.
            return not positive
        return {key: {"$in" if positive else "$nin": values}}
    # ALL: every value is an element of the field. all([]) holds for any present field.
    if not values:
        return {key: {"$exists": not negate}}
    if negate:
        return _or_filters([{key: {"$ne": value}} for value in values])
    return and_filters(*({key: {"$eq": value}} for value in values))


def _list_operand(op: FilterOperator, key: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise UnsupportedFilterError(
            f"Filter operator {op.name} on key {key!r} needs a list of values, got {type(value).__name__}."
        )
    return list(value)


def _scalar_operand(op: FilterOperator, key: str, value: object) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        hint = "; use IN, ANY or ALL for several values" if isinstance(value, list) else ""
        raise UnsupportedFilterError(
            f"Filter operator {op.name} on key {key!r} needs a string or a number, got "
            f"{type(value).__name__}{hint}."
        )
    return value

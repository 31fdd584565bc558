"""Self-query: LangChain's structured query language translated into Pinecone metadata filters.

``SelfQueryRetriever`` (in ``langchain-classic``) asks an LLM for a ``StructuredQuery`` and hands it to a
``Visitor``; pass ``structured_query_translator=PineconeTranslator()`` when building it.

What Pinecone can express:

* comparators ``eq ne gt gte lt lte in nin`` map to ``$eq $ne $gt $gte $lt $lte $in $nin``;
* operators ``and`` / ``or`` map to ``$and`` / ``$or``;
* ``not`` is rewritten, because Pinecone has no ``$not``: ``eq``/``ne`` and ``in``/``nin`` swap (exact
  negations under Pinecone's rules, also for missing fields and list fields) and ``and``/``or`` swap by
  De Morgan. ``not`` over a range comparison is refused: ``not (x > 3)`` also holds where ``x`` is missing
  or not a number, which ``x <= 3`` does not.

``contain`` and ``like`` (substring / pattern matches) have no Pinecone equivalent and raise a
``ValueError`` naming them.

Example:
    >>> from langchain_core.structured_query import Comparator, Comparison, Operation, Operator
    >>> PineconeTranslator().visit_operation(
    ...     Operation(operator=Operator.AND, arguments=[
    ...         Comparison(comparator=Comparator.EQ, attribute="genre", value="drama"),
    ...         Comparison(comparator=Comparator.GTE, attribute="year", value=2000),
    ...     ])
    ... )
    {'$and': [{'genre': {'$eq': 'drama'}}, {'year': {'$gte': 2000}}]}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from langchain_core.structured_query import (
    Comparator,
    Comparison,
    Operation,
    Operator,
    StructuredQuery,
    Visitor,
)
from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PineconeTranslator"]

_COMPARATORS: Final = {
    Comparator.EQ: "$eq",
    Comparator.NE: "$ne",
    Comparator.GT: "$gt",
    Comparator.GTE: "$gte",
    Comparator.LT: "$lt",
    Comparator.LTE: "$lte",
    Comparator.IN: "$in",
    Comparator.NIN: "$nin",
}
_NEGATED: Final = {"$eq": "$ne", "$ne": "$eq", "$in": "$nin", "$nin": "$in"}
_UNSUPPORTED_COMPARATORS: Final = {
    Comparator.CONTAIN: "Pinecone filters have no substring or containment match",
    Comparator.LIKE: "Pinecone filters have no pattern match",
}


def _unsupported(func: Comparator | Operator) -> ValueError:
    allowed = ", ".join(c.value for c in _COMPARATORS)
    reason = _UNSUPPORTED_COMPARATORS.get(func, "") if isinstance(func, Comparator) else ""
    return ValueError(
        f"Comparator {func.value!r} cannot be expressed as a Pinecone filter ({reason}); "
        f"supported comparators: {allowed}; operators: and, or, not."
    )


def _negate(node: dict[str, Any]) -> dict[str, Any]:
    ((key, value),) = node.items()
    if key in ("$and", "$or"):
        return {"$or" if key == "$and" else "$and": [_negate(child) for child in value]}
    ((op, operand),) = value.items()
    if op not in _NEGATED:
        raise ValueError(
            f"not({key} {op} ...) cannot be expressed as a Pinecone filter: the negation of a range "
            "comparison also matches records where the field is missing or not a number. Rewrite the "
            "condition without 'not' (e.g. lte instead of not gt)."
        )
    return {key: {_NEGATED[op]: operand}}


class PineconeTranslator(Visitor):
    """Translate LangChain structured queries into Pinecone metadata filters.

    Example:
        >>> from langchain_core.structured_query import Comparator, Comparison
        >>> PineconeTranslator().visit_comparison(
        ...     Comparison(comparator=Comparator.IN, attribute="tag", value=["a", "b"])
        ... )
        {'tag': {'$in': ['a', 'b']}}
    """

    allowed_comparators: Sequence[Comparator] | None = tuple(_COMPARATORS)
    allowed_operators: Sequence[Operator] | None = (Operator.AND, Operator.OR, Operator.NOT)

    @override
    def _validate_func(self, func: Operator | Comparator) -> None:
        if isinstance(func, Comparator) and func not in _COMPARATORS:
            raise _unsupported(func)
        super()._validate_func(func)

    @override
    def visit_operation(self, operation: Operation) -> dict[str, Any]:
        """``and`` / ``or`` as ``$and`` / ``$or``; ``not`` rewritten (see the module docstring)."""
        self._validate_func(operation.operator)
        arguments = [argument.accept(self) for argument in operation.arguments]
        if operation.operator == Operator.NOT:
            if len(arguments) == 1:
                return _negate(arguments[0])
            # not(a, b, ...) reads as not(a and b and ...).
            return _negate({"$and": arguments})
        return {f"${operation.operator.value}": arguments}

    @override
    def visit_comparison(self, comparison: Comparison) -> dict[str, Any]:
        """One field condition, e.g. ``{"year": {"$gte": 2000}}``."""
        self._validate_func(comparison.comparator)
        op = _COMPARATORS[comparison.comparator]
        value = comparison.value
        if op in ("$in", "$nin") and not isinstance(value, (list, tuple)):
            value = [value]
        elif isinstance(value, tuple):
            value = list(value)
        return {comparison.attribute: {op: value}}

    @override
    def visit_structured_query(self, structured_query: StructuredQuery) -> tuple[str, dict[str, Any]]:
        """The query text and the search kwargs (``{"filter": ...}`` when there is a filter)."""
        if structured_query.filter is None:
            return structured_query.query, {}
        return structured_query.query, {"filter": structured_query.filter.accept(self)}

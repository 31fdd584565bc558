"""Client-side validation of Pinecone metadata filters, so a bad filter fails before any request.

The language: a JSON object whose keys are ``$and`` / ``$or`` (a non-empty list of filters) or field
names. A field maps to a scalar (shorthand for ``$eq``) or to an object of operators: ``$eq`` / ``$ne``
(string, number, boolean), ``$gt`` / ``$gte`` / ``$lt`` / ``$lte`` (number), ``$in`` / ``$nin`` (a list of
strings, numbers or booleans) and ``$exists`` (boolean).

Example:
    >>> validate_filter({"genre": "drama", "year": {"$gte": 2000}})
    {'genre': 'drama', 'year': {'$gte': 2000}}
    >>> validate_filter({"year": {"$like": 2000}})
    Traceback (most recent call last):
    ...
    langchain_pinecone_rag.filters.FilterError: filter.year: unknown operator '$like'; ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["FIELD_OPERATORS", "LOGICAL_OPERATORS", "FilterError", "validate_filter"]

FIELD_OPERATORS: Final = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
"""Operators Pinecone accepts on a field."""
LOGICAL_OPERATORS: Final = ("$and", "$or")
"""Operators Pinecone accepts in place of a field name."""

_SUPPORTED: Final = ", ".join(FIELD_OPERATORS)


class FilterError(ValueError):
    """A metadata filter Pinecone would reject; the message names the offending path."""


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, bool)) or _is_number(value)


def _check_operator(path: str, op: str, arg: object) -> None:
    if op in ("$eq", "$ne"):
        if not _is_scalar(arg):
            raise FilterError(f"{path}.{op}: expects a string, number or boolean, got {arg!r}.")
    elif op in ("$gt", "$gte", "$lt", "$lte"):
        if not _is_number(arg):
            raise FilterError(f"{path}.{op}: expects a number, got {arg!r}.")
    elif op in ("$in", "$nin"):
        if not isinstance(arg, (list, tuple)) or not arg or not all(_is_scalar(item) for item in arg):
            raise FilterError(
                f"{path}.{op}: expects a non-empty list of strings, numbers or booleans, got {arg!r}."
            )
    elif op == "$exists":
        if not isinstance(arg, bool):
            raise FilterError(f"{path}.$exists: expects true or false, got {arg!r}.")
    else:
        raise FilterError(f"{path}: unknown operator {op!r}; the field operators are {_SUPPORTED}.")


def _check_field(path: str, value: object) -> None:
    if isinstance(value, Mapping):
        if not value:
            raise FilterError(f"{path}: an empty operator object matches nothing; give an operator.")
        for op, arg in value.items():
            if not isinstance(op, str) or not op.startswith("$"):
                raise FilterError(
                    f"{path}: nested objects are not supported ({op!r}); Pinecone metadata is flat, "
                    f"use an operator such as {_SUPPORTED}."
                )
            _check_operator(path, op, arg)
    elif isinstance(value, (list, tuple)):
        raise FilterError(f'{path}: to match one of several values use {{"$in": [...]}}.')
    elif not _is_scalar(value):
        raise FilterError(f"{path}: expects a string, number, boolean or operator object, got {value!r}.")


def _check(node: object, path: str) -> None:
    if not isinstance(node, Mapping):
        raise FilterError(f"{path}: a filter is an object, got {type(node).__name__}.")
    for key, value in node.items():
        if not isinstance(key, str) or not key:
            raise FilterError(f"{path}: field names are non-empty strings, got {key!r}.")
        if key in LOGICAL_OPERATORS:
            if not isinstance(value, (list, tuple)) or not value:
                raise FilterError(f"{path}.{key}: expects a non-empty list of filters.")
            for position, child in enumerate(value):
                _check(child, f"{path}.{key}[{position}]")
        elif key.startswith("$"):
            raise FilterError(
                f"{path}: {key!r} cannot stand in place of a field; only $and and $or can "
                f"(field operators are {_SUPPORTED})."
            )
        else:
            _check_field(f"{path}.{key}", value)


def validate_filter(filter: Mapping[str, Any] | None) -> dict[str, Any] | None:  # noqa: A002
    """Check ``filter`` against Pinecone's filter language and return it as a dict (None stays None).

    An empty dict means "no filter" and becomes None.

    Raises:
        FilterError: the filter is malformed; the message names the path, e.g. ``filter.year.$gt``.
    """
    if filter is None:
        return None
    _check(filter, "filter")
    return dict(filter) or None

"""How LangGraph store items become Pinecone records, and back (no I/O here).

Layout (see ``memory.py`` for the reasons):

* Item record id: ``"<label>.<label>..<key>"``. Labels are non-empty and contain no ``"."`` (LangGraph
  validates that), so the first ``".."`` ends the namespace and the key may contain anything. Every id of
  namespace ``("a", "b")`` and of the namespaces below it starts with ``"a.b."``, so Pinecone's id
  listing by prefix enumerates a namespace subtree.
* Vector record id: ``"<item id>#<n>"``, one per embedded text.
* Metadata: ``_ns`` (joined namespace), ``_ns_prefixes`` (every ancestor path, so one ``$eq`` on a list
  field selects a subtree), ``_key``, ``_value`` (the JSON value), ``_created`` / ``_updated`` (epoch
  seconds), ``_vectors`` (how many vector records exist), and the value's scalar leaves as ``v.<path>`` for
  filters.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langgraph.store.base import MatchCondition

VALUE_PREFIX: Final = "v."
MAX_FILTERABLE_STRING: Final = 1024
"""Longer strings are kept in ``_value`` only: nobody filters on them by equality, and Pinecone's 40 KB
metadata budget is better spent on the value itself."""
_COMPARISONS: Final = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"})


def join(namespace: tuple[str, ...]) -> str:
    """The namespace as one string (labels never contain ``"."``)."""
    return ".".join(namespace)


def item_id(namespace: tuple[str, ...], key: str) -> str:
    """The record id of an item.

    Example:
        >>> item_id(("users", "u1"), "prefs")
        'users.u1..prefs'
    """
    return f"{join(namespace)}..{key}"


def namespace_of(record_id: str) -> tuple[str, ...]:
    """The namespace part of an item or vector record id.

    Example:
        >>> namespace_of("users.u1...dotted.key")
        ('users', 'u1')
    """
    return tuple(record_id[: record_id.index("..")].split("."))


def id_prefix(path: tuple[str, ...]) -> str:
    """The id prefix of every item in ``path`` and below it."""
    return join(path) + "."


def _leaves(value: Mapping[str, Any], path: str, out: dict[str, Any]) -> None:
    for key, leaf in value.items():
        field = f"{path}{key}"
        if isinstance(leaf, dict):
            _leaves(leaf, field + ".", out)
        elif _filterable(leaf):
            out[field] = leaf


def _filterable(leaf: object) -> bool:
    # Other leaves (None, lists of numbers or objects) stay in _value only: Pinecone cannot store them.
    if isinstance(leaf, bool):
        return True
    if isinstance(leaf, (int, float)):
        return math.isfinite(leaf)
    if isinstance(leaf, str):
        return len(leaf) <= MAX_FILTERABLE_STRING
    return isinstance(leaf, list) and bool(leaf) and all(isinstance(item, str) for item in leaf)


def item_metadata(  # noqa: PLR0917 - one record's fields, always passed together
    namespace: tuple[str, ...],
    key: str,
    value: Mapping[str, Any],
    created: float,
    updated: float,
    vectors: int,
) -> dict[str, Any]:
    """The metadata of an item's records."""
    metadata: dict[str, Any] = {
        "_ns": join(namespace),
        "_ns_prefixes": [join(namespace[:depth]) for depth in range(1, len(namespace) + 1)],
        "_key": key,
        "_value": orjson.dumps(value).decode(),
        "_created": created,
        "_updated": updated,
        "_vectors": vectors,
    }
    _leaves(value, VALUE_PREFIX, metadata)
    return metadata


def _when(seconds: object) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc)  # type: ignore[arg-type]


def item_fields(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``Item`` / ``SearchItem`` from a record's metadata."""
    return {
        "namespace": tuple(str(metadata["_ns"]).split(".")),
        "key": str(metadata["_key"]),
        "value": orjson.loads(metadata["_value"]),
        "created_at": _when(metadata["_created"]),
        "updated_at": _when(metadata["_updated"]),
    }


def _value_filter(filter: Mapping[str, Any], path: str) -> list[dict[str, Any]]:  # noqa: A002
    clauses: list[dict[str, Any]] = []
    for field, condition in filter.items():
        target = f"{path}{field}"
        if isinstance(condition, dict) and condition and all(op.startswith("$") for op in condition):
            unknown = set(condition) - _COMPARISONS
            if unknown:
                raise ValueError(f"Filter on {field!r}: unsupported operators {sorted(unknown)}.")
            clauses.append({target: dict(condition)})
        elif isinstance(condition, dict):
            clauses.extend(_value_filter(condition, target + "."))
        elif isinstance(condition, (list, tuple)):
            raise ValueError(
                f"Filter on {field!r}: matching a whole list is not supported; use {{'$in': [...]}} to "
                "match one of several values (a list field matches when any element does)."
            )
        else:
            clauses.append({target: {"$eq": condition}})
    return clauses


def search_filter(prefix: tuple[str, ...], filter: Mapping[str, Any] | None) -> dict[str, Any] | None:  # noqa: A002
    """The Pinecone filter of a search: the namespace subtree plus the value conditions.

    Example:
        >>> search_filter(("users",), {"lang": "en", "age": {"$gte": 18}})
        {'$and': [{'_ns_prefixes': 'users'}, {'v.lang': {'$eq': 'en'}}, {'v.age': {'$gte': 18}}]}
    """
    clauses: list[dict[str, Any]] = []
    if prefix:
        clauses.append({"_ns_prefixes": join(prefix)})
    clauses.extend(_value_filter(filter or {}, VALUE_PREFIX))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Whether ``namespace`` satisfies a prefix or suffix condition (``"*"`` matches any label)."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = (
        namespace[: len(path)]
        if condition.match_type == "prefix"
        else namespace[len(namespace) - len(path) :]
    )
    return all(want in ("*", label) for want, label in zip(path, part, strict=True))


def listing_prefix(conditions: tuple[MatchCondition, ...] | None) -> str | None:
    """An id prefix that narrows a namespace listing, or None to list everything.

    It is made of the labels of the first prefix condition before any wildcard.
    """
    for condition in conditions or ():
        if condition.match_type == "prefix":
            labels: list[str] = []
            for label in condition.path:
                if label == "*":
                    break
                labels.append(label)
            return id_prefix(tuple(labels)) if labels else None
    return None

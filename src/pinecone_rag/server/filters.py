"""Pinecone's metadata filter language: validation, a typed tree, and fast per-record evaluation.

A filter is a JSON object. Its keys are the logical operators ``$and`` / ``$or`` (each taking a non-empty
list of filter objects) or field names; several keys in one object combine with an implicit AND. A
field's value is a scalar (shorthand for ``$eq``) or an object of one or more operators, which also
combine with AND::

    {"genre": "drama", "year": {"$gte": 2000, "$lt": 2010}, "$or": [{"lang": "en"}, {"subbed": True}]}

Operators: ``$eq`` / ``$ne`` (string, number or boolean), ``$gt`` / ``$gte`` / ``$lt`` / ``$lte`` (numbers),
``$in`` / ``$nin`` (a list of strings, numbers or booleans) and ``$exists`` (boolean).

Evaluation follows Pinecone's MongoDB-like rules over metadata values that are strings, floats, booleans
or lists of strings:

* A list field matches ``$eq`` / ``$in`` when any element matches, and ``$ne`` / ``$nin`` when none does
  (``$ne`` and ``$nin`` are exactly the negations of ``$eq`` and ``$in``).
* A missing field (absent, or ``None``) matches only ``$ne``, ``$nin`` and ``$exists: false``.
* Booleans, numbers and strings are distinct types: ``True`` never equals ``1``, ``"1"`` never equals
  ``1.0``, and range operators only ever match numbers. Type mismatches are non-matches, never errors.

:func:`parse_filter` validates once and compiles the tree into nested closures, so :meth:`Filter.matches`
costs a few dict lookups and comparisons per record. The parsed tree (:class:`And`, :class:`Or`,
:class:`Condition`) stays available as :attr:`Filter.root` for planning, e.g. pruning storage clusters
whose metadata statistics cannot satisfy it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import numpy as np

from pinecone_rag.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy.typing as npt

MAX_FILTER_DEPTH: Final = 32
"""How many ``$and`` / ``$or`` operators may enclose one another."""
MAX_FILTER_NODES: Final = 10_000
"""How many conditions (field/operator pairs) plus ``$and`` / ``$or`` operators one filter may hold."""
MAX_IN_VALUES: Final = 10_000
"""How many values one ``$in`` or ``$nin`` list may hold."""
MAX_FILTER_VALUES: Final = 100_000
"""How many ``$in`` / ``$nin`` values one filter may hold in total."""

Operator: TypeAlias = Literal["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]
Scalar: TypeAlias = str | float | bool
"""A filter operand; numbers are always floats after parsing."""
ConditionValue: TypeAlias = Scalar | tuple[Scalar, ...]
"""A scalar for most operators, a tuple for ``$in`` / ``$nin``, a bool for ``$exists``."""

SUPPORTED_OPERATORS: Final[tuple[Operator, ...]] = (
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
)
LOGICAL_OPERATORS: Final = ("$and", "$or")

_OPERATORS: Final[dict[str, Operator]] = {op: op for op in SUPPORTED_OPERATORS}
_SUPPORTED_TEXT: Final = ", ".join(SUPPORTED_OPERATORS)
_RANGE_OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_PLAIN_KEY: Final = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]{0,63}")
_MAX_SHOWN_CHARS: Final = 64
_EMPTY: Final[Mapping[str, Any]] = {}

_Matcher: TypeAlias = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True, eq=False)
class Condition:
    """One test of one metadata field, e.g. ``Condition("year", "$gte", 2000.0)``.

    Attributes:
        field: The metadata field name.
        op: The operator.
        value: The operand: a string, float or bool; a tuple of those for ``$in`` / ``$nin``; a bool
            for ``$exists``.
    """

    field: str
    op: Operator
    value: ConditionValue

    # Python's True == 1.0 would make {"f": True} and {"f": 1} equal (and collide in caches keyed by
    # the tree), so equality and hashing compare values together with their type.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Condition):
            return NotImplemented
        return (self.field, self.op, _typed(self.value)) == (other.field, other.op, _typed(other.value))

    def __hash__(self) -> int:
        return hash((self.field, self.op, _typed(self.value)))


@dataclass(frozen=True, slots=True)
class And:
    """Matches when every child matches.

    Attributes:
        children: Two or more sub-trees (the parser flattens nested ``And`` nodes and unwraps single ones).
    """

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Matches when at least one child matches.

    Attributes:
        children: Two or more sub-trees (the parser flattens nested ``Or`` nodes and unwraps single ones).
    """

    children: tuple[Node, ...]


Node: TypeAlias = Condition | And | Or
"""A node of a parsed filter tree."""


class Filter:
    """A validated, compiled metadata filter.

    Attributes:
        root: The parsed tree.
        fields: Every field name the filter references.
    """

    __slots__ = ("_match", "fields", "root")

    root: Node
    fields: frozenset[str]

    def __init__(self, root: Node) -> None:
        """Compile ``root``; usually called through :func:`parse_filter`, which also validates.

        Args:
            root: The tree to evaluate. Numeric operands should be floats and ``$in`` / ``$nin`` operands
                tuples, as :func:`parse_filter` produces them.
        """
        self.root = root
        self.fields = frozenset(_fields(root))
        self._match = _compile(root)

    def matches(self, metadata: Mapping[str, object] | None) -> bool:
        """Whether a record's metadata satisfies the filter.

        Args:
            metadata: The record's metadata; None counts as empty metadata.

        Returns:
            True when the record matches.
        """
        return self._match(_EMPTY if metadata is None else metadata)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Filter):
            return NotImplemented
        return self.root == other.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"Filter({self.root!r})"


def parse_filter(raw: object, *, where: str = "filter") -> Filter | None:
    """Validate and compile a metadata filter.

    Args:
        raw: The filter as decoded from a REST JSON body, or from a protobuf ``Struct`` converted to Python
            (where every number is a float).
        where: How error messages name the filter, e.g. ``"filter"`` or ``"delete filter"``.

    Returns:
        The compiled filter, or None when ``raw`` is None or an empty object (no filtering).

    Raises:
        InvalidArgumentError: The filter is malformed or breaks a limit; the message says what and where.
    """
    if raw is None or (isinstance(raw, dict) and not raw):
        return None
    return Filter(_Parser(where).parse_object(raw, where, 0))


def filter_mask(
    filter: Filter | None,  # noqa: A002 - the natural name; shadowing the builtin here is harmless
    metadata_list: Sequence[Mapping[str, object] | None],
) -> npt.NDArray[np.bool_]:
    """Evaluate a filter over many records at once.

    Args:
        filter: The filter; None matches every record.
        metadata_list: One metadata mapping (or None) per record.

    Returns:
        A boolean array, True where the record matches.
    """
    count = len(metadata_list)
    if filter is None:
        return np.ones(count, dtype=np.bool_)
    match = filter._match  # skips a bound-method call per record
    return np.fromiter(
        (match(_EMPTY if metadata is None else metadata) for metadata in metadata_list),
        dtype=np.bool_,
        count=count,
    )


# --- parsing -------------------------------------------------------------------------------------------


class _Parser:
    """Validates one raw filter, counting nodes and values against the limits."""

    __slots__ = ("nodes", "values", "where")

    def __init__(self, where: str) -> None:
        self.where = where
        self.nodes = 0
        self.values = 0

    def error(self, path: str, problem: str) -> InvalidArgumentError:
        at = f" (at {path})" if path != self.where else ""
        return InvalidArgumentError(f"Invalid {self.where}: {problem}{at}.")

    def count_node(self, path: str) -> None:
        self.nodes += 1
        if self.nodes > MAX_FILTER_NODES:
            raise self.error(
                path,
                f"a filter may hold at most {MAX_FILTER_NODES} conditions and $and/$or operators in total",
            )

    def parse_object(self, raw: object, path: str, depth: int) -> Node:
        if not isinstance(raw, dict):
            raise self.error(path, f"expected a filter object, got {_kind(raw)}")
        if not raw:
            raise self.error(path, "a filter object must contain at least one condition")
        parts: list[Node] = []
        for key, value in raw.items():
            if not isinstance(key, str):
                raise self.error(path, f"keys must be strings, got {_kind(key)} {_show(key)}")
            child_path = _child(path, key)
            if key in LOGICAL_OPERATORS:
                node = self.parse_logical(key, value, child_path, depth)
                parts.extend(node.children if isinstance(node, And) else (node,))
            elif key.startswith("$"):
                if key in _OPERATORS:
                    problem = f'operator {key} must be applied to a field, e.g. {{"genre": {{"{key}": ...}}}}'
                else:
                    problem = f"unsupported operator {_show(key)}"
                raise self.error(
                    child_path,
                    f"{problem}; only $and and $or may appear in place of a field name (field names must "
                    f"not start with '$'), and the operators supported on fields are {_SUPPORTED_TEXT}",
                )
            elif not key:
                raise self.error(child_path, "field names must not be empty")
            else:
                parts.extend(self.parse_field(key, value, child_path))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def parse_logical(self, op: str, value: object, path: str, depth: int) -> Node:
        if depth >= MAX_FILTER_DEPTH:
            raise self.error(path, f"$and/$or operators may be nested at most {MAX_FILTER_DEPTH} levels deep")
        if not isinstance(value, list | tuple):
            raise self.error(path, f"{op} expects a non-empty list of filter objects, got {_kind(value)}")
        if not value:
            raise self.error(path, f"{op} expects a non-empty list of filter objects, got an empty list")
        self.count_node(path)
        flatten = And if op == "$and" else Or
        children: list[Node] = []
        for index, item in enumerate(value):
            child = self.parse_object(item, f"{path}[{index}]", depth + 1)
            if isinstance(child, flatten):
                children.extend(child.children)
            else:
                children.append(child)
        if len(children) == 1:
            return children[0]
        return And(tuple(children)) if op == "$and" else Or(tuple(children))

    def parse_field(self, field: str, value: object, path: str) -> list[Condition]:
        shown = _show(field)
        if isinstance(value, dict):
            if not value:
                raise self.error(
                    path, f"field {shown} has an empty operator object; expected one of {_SUPPORTED_TEXT}"
                )
            conditions: list[Condition] = []
            for key, arg in value.items():
                if not isinstance(key, str):
                    raise self.error(path, f"operator names must be strings, got {_kind(key)} {_show(key)}")
                op = _OPERATORS.get(key)
                if op is None:
                    if key in LOGICAL_OPERATORS:
                        problem = f"{key} cannot be applied to field {shown}; use it at the top level"
                    elif key.startswith("$"):
                        problem = f"unsupported operator {_show(key)} on field {shown}"
                    else:
                        problem = (
                            f"field {shown} has a nested object with key {_show(key)}; nested metadata "
                            "fields are not supported, and operator names start with '$'"
                        )
                    raise self.error(
                        _child(path, key), f"{problem}; supported operators are {_SUPPORTED_TEXT}"
                    )
                conditions.append(self.parse_condition(field, op, arg, _child(path, key)))
            return conditions
        if isinstance(value, list | tuple):
            raise self.error(
                path,
                f"field {shown} has a list value; to match any of several values use "
                f'{{"$in": [...]}}, to match one value use a string, number or boolean',
            )
        self.count_node(path)
        return [Condition(field, "$eq", self.parse_scalar(field, "$eq", value, path))]

    def parse_condition(self, field: str, op: Operator, arg: object, path: str) -> Condition:
        self.count_node(path)
        value: ConditionValue
        if op in ("$eq", "$ne"):
            value = self.parse_scalar(field, op, arg, path)
        elif op in _RANGE_OPERATORS:
            value = self.parse_number(field, op, arg, path)
        elif op in ("$in", "$nin"):
            value = self.parse_list(field, op, arg, path)
        else:
            if not isinstance(arg, bool):
                raise self.error(
                    path, f"operator $exists on field {_show(field)} expects true or false, got {_kind(arg)}"
                )
            value = arg
        return Condition(field, op, value)

    def parse_scalar(self, field: str, op: str, arg: object, path: str) -> Scalar:
        if isinstance(arg, bool | str):
            return arg
        if isinstance(arg, int | float):
            return self.parse_number(field, op, arg, path)
        if isinstance(arg, list | tuple):
            hint = "; use $in to match any of several values" if op == "$eq" else "; use $nin"
            raise self.error(path, f"operator {op} on field {_show(field)} does not accept a list{hint}")
        raise self.error(
            path,
            f"operator {op} on field {_show(field)} expects a string, number or boolean, got {_kind(arg)}",
        )

    def parse_number(self, field: str, op: str, arg: object, path: str) -> float:
        if isinstance(arg, bool) or not isinstance(arg, int | float):
            raise self.error(
                path, f"operator {op} on field {_show(field)} expects a number, got {_kind(arg)}"
            )
        try:
            number = float(arg)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.error(
                path, f"operator {op} on field {_show(field)} expects a finite number, got {_show(arg)}"
            )
        return number

    def parse_list(self, field: str, op: str, arg: object, path: str) -> tuple[Scalar, ...]:
        shown = _show(field)
        if not isinstance(arg, list | tuple):
            raise self.error(
                path,
                f"operator {op} on field {shown} expects a list of strings, numbers or booleans, "
                f"got {_kind(arg)}",
            )
        if len(arg) > MAX_IN_VALUES:
            raise self.error(
                path,
                f"operator {op} on field {shown} has {len(arg)} values, "
                f"more than the limit of {MAX_IN_VALUES}",
            )
        self.values += len(arg)
        if self.values > MAX_FILTER_VALUES:
            raise self.error(path, f"a filter may hold at most {MAX_FILTER_VALUES} $in/$nin values in total")
        values: list[Scalar] = []
        for index, item in enumerate(arg):
            if isinstance(item, bool | str):
                values.append(item)
            elif isinstance(item, int | float):
                values.append(self.parse_number(field, op, item, f"{path}[{index}]"))
            else:
                raise self.error(
                    f"{path}[{index}]",
                    f"operator {op} on field {shown} accepts only strings, numbers and booleans, "
                    f"got {_kind(item)}",
                )
        return tuple(values)


def _kind(value: object) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a value of type {type(value).__name__}"


def _show(value: object) -> str:
    """A short, safe rendering of a key or scalar for error messages (never the repr of a container)."""
    if isinstance(value, str):
        text = value if len(value) <= _MAX_SHOWN_CHARS else value[: _MAX_SHOWN_CHARS - 3] + "..."
        # Keep unpaired surrogates from making the message itself unencodable.
        return "'" + text.encode("utf-8", "backslashreplace").decode("utf-8") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        # repr() of an int with more than ~4300 digits raises ValueError.
        return repr(value) if abs(value) < 10**20 else "a very large integer"
    return type(value).__name__


def _child(path: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{_show(key)}]"


# --- the tree ------------------------------------------------------------------------------------------


def _type_tag(value: Scalar) -> tuple[str, Scalar]:
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, str):
        return ("str", value)
    return ("number", value)


def _typed(value: ConditionValue) -> object:
    if isinstance(value, tuple):
        return tuple(_type_tag(item) for item in value)
    return _type_tag(value)


def _fields(node: Node) -> list[str]:
    if isinstance(node, Condition):
        return [node.field]
    return [field for child in node.children for field in _fields(child)]


# --- compilation ---------------------------------------------------------------------------------------
#
# Every matcher takes a mapping and returns a bool. Type checks use `type(x) is T` rather than
# isinstance: bool is a subclass of int, and exact checks are also the cheapest ones in CPython.


def _compile(node: Node) -> _Matcher:
    if isinstance(node, Condition):
        return _compile_condition(node)
    matchers = tuple(_compile(child) for child in node.children)
    return _all_of(matchers) if isinstance(node, And) else _any_of(matchers)


def _all_of(matchers: tuple[_Matcher, ...]) -> _Matcher:
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        first, second = matchers

        def both(metadata: Mapping[str, Any]) -> bool:
            return first(metadata) and second(metadata)

        return both

    def every(metadata: Mapping[str, Any]) -> bool:
        # A plain loop: all() over a generator allocates a generator per record.
        for matcher in matchers:  # noqa: SIM110
            if not matcher(metadata):
                return False
        return True

    return every


def _any_of(matchers: tuple[_Matcher, ...]) -> _Matcher:
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        first, second = matchers

        def either(metadata: Mapping[str, Any]) -> bool:
            return first(metadata) or second(metadata)

        return either

    def some(metadata: Mapping[str, Any]) -> bool:
        for matcher in matchers:  # noqa: SIM110 - see every()
            if matcher(metadata):
                return True
        return False

    return some


def _negate(matcher: _Matcher) -> _Matcher:
    def negated(metadata: Mapping[str, Any]) -> bool:
        return not matcher(metadata)

    return negated


def _never(metadata: Mapping[str, Any]) -> bool:  # noqa: ARG001 - the matcher signature
    return False


def _compile_condition(condition: Condition) -> _Matcher:
    field, op, value = condition.field, condition.op, condition.value
    if op == "$exists":
        return _exists(field) if value else _negate(_exists(field))
    if op in ("$in", "$nin"):
        values = value if isinstance(value, tuple) else (value,)
        matcher = _in(field, values)
        return matcher if op == "$in" else _negate(matcher)
    if isinstance(value, tuple):
        raise TypeError(f"operator {op} does not accept a tuple operand")
    if op in ("$eq", "$ne"):
        matcher = _eq(field, value)
        return matcher if op == "$eq" else _negate(matcher)
    if isinstance(value, bool) or not isinstance(value, int | float):
        # Range operators only apply to numbers, so no record can match.
        return _never
    return _range(field, _RANGE_OPERATORS[op], float(value))


def _exists(field: str) -> _Matcher:
    def exists(metadata: Mapping[str, Any]) -> bool:
        return metadata.get(field) is not None

    return exists


def _eq(field: str, target: Scalar) -> _Matcher:
    if isinstance(target, bool):

        def eq_bool(metadata: Mapping[str, object]) -> bool:
            value = metadata.get(field)
            return value is target or (type(value) is list and any(item is target for item in value))

        return eq_bool

    if isinstance(target, str):

        def eq_str(metadata: Mapping[str, object]) -> bool:
            value = metadata.get(field)
            return value == target or (type(value) is list and target in value)

        return eq_str

    number = float(target)

    def eq_number(metadata: Mapping[str, object]) -> bool:
        value = metadata.get(field)
        if type(value) is float or type(value) is int:
            return value == number
        if type(value) is list:
            return any((type(item) is float or type(item) is int) and item == number for item in value)
        return False

    return eq_number


def _range(field: str, compare: Callable[[float, float], bool], target: float) -> _Matcher:
    def in_range(metadata: Mapping[str, object]) -> bool:
        value = metadata.get(field)
        if type(value) is float or type(value) is int:
            return compare(value, target)
        if type(value) is list:
            return any((type(item) is float or type(item) is int) and compare(item, target) for item in value)
        return False

    return in_range


def _in(field: str, targets: tuple[Scalar, ...]) -> _Matcher:
    if not targets:
        return _never
    strings = frozenset(item for item in targets if isinstance(item, str))
    booleans = frozenset(item for item in targets if isinstance(item, bool))
    numbers = frozenset(
        float(item) for item in targets if isinstance(item, int | float) and not isinstance(item, bool)
    )

    if not booleans and not numbers:

        def in_strings(metadata: Mapping[str, object]) -> bool:
            value = metadata.get(field)
            if type(value) is str:
                return value in strings
            if type(value) is list:
                return any(type(item) is str and item in strings for item in value)
            return False

        return in_strings

    def scalar_in(value: object) -> bool:
        kind = type(value)
        if kind is str:
            return value in strings
        if kind is float or kind is int:
            return value in numbers
        if kind is bool:
            return value in booleans
        return False

    def in_values(metadata: Mapping[str, object]) -> bool:
        value = metadata.get(field)
        if type(value) is list:
            return any(scalar_in(item) for item in value)
        return scalar_in(value)

    return in_values


__all__ = [
    "LOGICAL_OPERATORS",
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_NODES",
    "MAX_FILTER_VALUES",
    "MAX_IN_VALUES",
    "SUPPORTED_OPERATORS",
    "And",
    "Condition",
    "ConditionValue",
    "Filter",
    "Node",
    "Operator",
    "Or",
    "Scalar",
    "filter_mask",
    "parse_filter",
]

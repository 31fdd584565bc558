"""Unit tests of the metadata filter language (pinecone_rag.server.filters)."""

from __future__ import annotations

import contextlib
import math
import operator
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.server.filters import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_NODES,
    MAX_FILTER_VALUES,
    MAX_IN_VALUES,
    SUPPORTED_OPERATORS,
    And,
    Condition,
    Filter,
    Or,
    filter_mask,
    parse_filter,
)

if TYPE_CHECKING:
    from collections.abc import Callable


def compile_filter(raw: object) -> Filter:
    flt = parse_filter(raw)
    assert flt is not None
    return flt


def matches(raw: object, metadata: dict[str, Any] | None) -> bool:
    return compile_filter(raw).matches(metadata)


MOVIE = {"genre": "drama", "year": 2005.0, "rating": 7.5, "awarded": True, "tags": ["classic", "noir"]}


# --- operators -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"genre": "drama"}, True),
        ({"genre": "comedy"}, False),
        ({"genre": {"$eq": "drama"}}, True),
        ({"genre": {"$eq": "Drama"}}, False),
        ({"year": 2005}, True),
        ({"year": 2005.0}, True),
        ({"year": {"$eq": 2006}}, False),
        ({"awarded": True}, True),
        ({"awarded": False}, False),
        ({"genre": {"$ne": "drama"}}, False),
        ({"genre": {"$ne": "comedy"}}, True),
        ({"year": {"$ne": 2005}}, False),
        ({"year": {"$ne": 1999}}, True),
        ({"awarded": {"$ne": False}}, True),
        ({"awarded": {"$ne": True}}, False),
        ({"year": {"$gt": 2004}}, True),
        ({"year": {"$gt": 2005}}, False),
        ({"year": {"$gte": 2005}}, True),
        ({"year": {"$gte": 2005.5}}, False),
        ({"year": {"$lt": 2006}}, True),
        ({"year": {"$lt": 2005}}, False),
        ({"year": {"$lte": 2005}}, True),
        ({"year": {"$lte": 2004.9}}, False),
        ({"rating": {"$gt": -1e300}}, True),
        ({"genre": {"$in": ["comedy", "drama"]}}, True),
        ({"genre": {"$in": ["comedy", "action"]}}, False),
        ({"year": {"$in": [1999, 2005]}}, True),
        ({"year": {"$in": [1999.0, 2006.0]}}, False),
        ({"awarded": {"$in": [True]}}, True),
        ({"awarded": {"$in": [False, "x", 3]}}, False),
        ({"genre": {"$in": [1, True, "drama"]}}, True),
        ({"genre": {"$nin": ["comedy", "drama"]}}, False),
        ({"genre": {"$nin": ["comedy", "action"]}}, True),
        ({"year": {"$nin": [2005]}}, False),
        ({"genre": {"$exists": True}}, True),
        ({"genre": {"$exists": False}}, False),
        ({"missing": {"$exists": True}}, False),
        ({"missing": {"$exists": False}}, True),
        ({"genre": {"$in": []}}, False),
        ({"genre": {"$nin": []}}, True),
        ({"missing": {"$nin": []}}, True),
        ({"missing": {"$in": []}}, False),
    ],
)
def test_operator(raw: dict[str, Any], expected: bool) -> None:
    assert matches(raw, MOVIE) is expected


def test_supported_operator_list() -> None:
    assert set(SUPPORTED_OPERATORS) == {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"}


def test_several_operators_on_one_field_combine_with_and() -> None:
    decade = {"year": {"$gte": 2000, "$lt": 2010}}
    assert matches(decade, {"year": 2000.0})
    assert matches(decade, {"year": 2009.5})
    assert not matches(decade, {"year": 2010.0})
    assert not matches(decade, {"year": 1999.0})


def test_implicit_and_of_fields() -> None:
    raw = {"genre": "drama", "year": {"$gt": 2000}, "awarded": True}
    assert matches(raw, MOVIE)
    assert not matches(raw, {**MOVIE, "awarded": False})
    assert not matches(raw, {**MOVIE, "year": 1990.0})
    assert not matches(raw, {**MOVIE, "genre": "comedy"})


def test_nested_and_or() -> None:
    raw = {
        "$or": [
            {"$and": [{"genre": "drama"}, {"year": {"$lt": 2000}}]},
            {"$and": [{"genre": "comedy"}, {"$or": [{"rating": {"$gte": 8}}, {"awarded": True}]}]},
        ]
    }
    assert matches(raw, {"genre": "drama", "year": 1990.0})
    assert not matches(raw, {"genre": "drama", "year": 2000.0})
    assert matches(raw, {"genre": "comedy", "rating": 8.0})
    assert matches(raw, {"genre": "comedy", "rating": 1.0, "awarded": True})
    assert not matches(raw, {"genre": "comedy", "rating": 1.0, "awarded": False})
    assert not matches(raw, {})


def test_logical_operators_combine_with_fields_at_the_same_level() -> None:
    raw = {"genre": "drama", "$or": [{"year": 2005}, {"year": 1990}]}
    assert matches(raw, {"genre": "drama", "year": 1990.0})
    assert not matches(raw, {"genre": "comedy", "year": 1990.0})
    assert not matches(raw, {"genre": "drama", "year": 2000.0})


def test_single_child_logical_operators() -> None:
    assert matches({"$and": [{"genre": "drama"}]}, MOVIE)
    assert not matches({"$or": [{"genre": "comedy"}]}, MOVIE)


def test_many_children() -> None:
    raw: dict[str, Any] = {"$or": [{"n": i} for i in range(50)]}
    assert matches(raw, {"n": 49.0})
    assert not matches(raw, {"n": 50.0})
    raw = {"$and": [{"n": {"$ne": i}} for i in range(50)]}
    assert matches(raw, {"n": 50.0})
    assert not matches(raw, {"n": 7.0})


# --- list fields ---------------------------------------------------------------------------------------

FILM = {"genre": ["comedy", "documentary"]}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"genre": "comedy"}, True),
        ({"genre": "documentary"}, True),
        ({"genre": "drama"}, False),
        ({"genre": {"$eq": "comedy"}}, True),
        ({"genre": {"$in": ["documentary", "action"]}}, True),
        ({"genre": {"$in": ["drama", "action"]}}, False),
        ({"genre": {"$ne": "drama"}}, True),
        ({"genre": {"$ne": "comedy"}}, False),
        ({"genre": {"$nin": ["drama", "action"]}}, True),
        ({"genre": {"$nin": ["drama", "comedy"]}}, False),
        ({"$and": [{"genre": "comedy"}, {"genre": "documentary"}]}, True),
        ({"$and": [{"genre": "comedy"}, {"genre": "drama"}]}, False),
        ({"$or": [{"genre": "drama"}, {"genre": "documentary"}]}, True),
        ({"genre": {"$exists": True}}, True),
        ({"genre": {"$gt": 0}}, False),
        ({"genre": {"$in": [1, True]}}, False),
        ({"genre": {"$eq": 1}}, False),
        ({"genre": {"$eq": True}}, False),
    ],
)
def test_list_field(raw: dict[str, Any], expected: bool) -> None:
    assert matches(raw, FILM) is expected


def test_empty_list_field() -> None:
    record: dict[str, Any] = {"genre": []}
    assert not matches({"genre": "comedy"}, record)
    assert not matches({"genre": {"$in": ["comedy"]}}, record)
    assert matches({"genre": {"$ne": "comedy"}}, record)
    assert matches({"genre": {"$nin": ["comedy"]}}, record)
    assert matches({"genre": {"$exists": True}}, record)


# --- missing fields and type mismatches ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"$eq": "x"}, False),
        ({"$eq": 1}, False),
        ({"$eq": False}, False),
        ({"$ne": "x"}, True),
        ({"$ne": False}, True),
        ({"$gt": 0}, False),
        ({"$gte": 0}, False),
        ({"$lt": 0}, False),
        ({"$lte": 0}, False),
        ({"$in": ["x", 1, True]}, False),
        ({"$nin": ["x", 1, True]}, True),
        ({"$exists": True}, False),
        ({"$exists": False}, True),
    ],
)
def test_missing_field(condition: dict[str, Any], expected: bool) -> None:
    flt = compile_filter({"f": condition})
    assert flt.matches({}) is expected
    assert flt.matches(None) is expected
    assert flt.matches({"other": "x"}) is expected
    assert flt.matches({"f": None}) is expected


@pytest.mark.parametrize(
    ("raw", "metadata", "expected"),
    [
        # True == 1 in Python, never in a filter.
        ({"f": True}, {"f": 1.0}, False),
        ({"f": 1}, {"f": True}, False),
        ({"f": 1.0}, {"f": True}, False),
        ({"f": 0}, {"f": False}, False),
        ({"f": False}, {"f": 0.0}, False),
        ({"f": {"$in": [1]}}, {"f": True}, False),
        ({"f": {"$in": [True]}}, {"f": 1.0}, False),
        ({"f": {"$in": [0.0, "x"]}}, {"f": False}, False),
        ({"f": {"$ne": 1}}, {"f": True}, True),
        ({"f": {"$ne": True}}, {"f": 1.0}, True),
        ({"f": {"$nin": [1]}}, {"f": True}, True),
        ({"f": {"$gt": 0}}, {"f": True}, False),
        ({"f": {"$gte": 1}}, {"f": True}, False),
        ({"f": {"$lt": 1}}, {"f": False}, False),
        ({"f": {"$lte": 0}}, {"f": False}, False),
        # Strings and numbers are distinct too.
        ({"f": "1"}, {"f": 1.0}, False),
        ({"f": 1}, {"f": "1"}, False),
        ({"f": {"$gt": 5}}, {"f": "10"}, False),
        ({"f": {"$lt": 5}}, {"f": "1"}, False),
        ({"f": {"$in": ["1"]}}, {"f": 1.0}, False),
        ({"f": {"$in": [1]}}, {"f": "1"}, False),
        ({"f": "true"}, {"f": True}, False),
        ({"f": True}, {"f": "true"}, False),
        # Integers in metadata (unvalidated input) compare as numbers.
        ({"f": 3}, {"f": 3}, True),
        ({"f": {"$in": [3]}}, {"f": 3}, True),
        ({"f": {"$gt": 2.5}}, {"f": 3}, True),
        # Unexpected metadata shapes never match and never raise.
        ({"f": "x"}, {"f": {"x": 1}}, False),
        ({"f": {"$in": ["x"]}}, {"f": {"x": 1}}, False),
        ({"f": {"$in": ["x", 1]}}, {"f": [["x"], {"y": 2}]}, False),
        ({"f": {"$gt": 1}}, {"f": [["x"], {"y": 2}]}, False),
        ({"f": {"$ne": "x"}}, {"f": {"x": 1}}, True),
        ({"f": {"$eq": 1}}, {"f": math.nan}, False),
        ({"f": {"$gt": 1}}, {"f": math.nan}, False),
    ],
)
def test_types_are_distinct(raw: dict[str, Any], metadata: dict[str, Any], expected: bool) -> None:
    assert matches(raw, metadata) is expected


# --- the tree ----------------------------------------------------------------------------------------------


def test_empty_filters_are_none() -> None:
    assert parse_filter(None) is None
    assert parse_filter({}) is None


def test_tree_shape() -> None:
    flt = compile_filter({"genre": "drama", "year": {"$gte": 2000, "$lt": 2010}})
    assert flt.root == And(
        (
            Condition("genre", "$eq", "drama"),
            Condition("year", "$gte", 2000.0),
            Condition("year", "$lt", 2010.0),
        )
    )
    assert flt.fields == frozenset({"genre", "year"})


def test_tree_normalises_numbers_and_lists() -> None:
    flt = compile_filter({"n": {"$in": [1, 2.5, "x", True]}})
    assert flt.root == Condition("n", "$in", (1.0, 2.5, "x", True))
    assert isinstance(flt.root, Condition)
    assert isinstance(flt.root.value, tuple)
    assert [type(v) for v in flt.root.value] == [float, float, str, bool]
    single = compile_filter({"n": 3})
    assert isinstance(single.root, Condition)
    assert type(single.root.value) is float


def test_tree_flattens_nested_logical_operators() -> None:
    flt = compile_filter({"$and": [{"$and": [{"a": 1}, {"b": 2}]}, {"c": 3}], "d": 4})
    assert flt.root == And(
        (
            Condition("a", "$eq", 1.0),
            Condition("b", "$eq", 2.0),
            Condition("c", "$eq", 3.0),
            Condition("d", "$eq", 4.0),
        )
    )
    flt = compile_filter({"$or": [{"$or": [{"a": 1}, {"b": 2}]}, {"$and": [{"c": 3}]}]})
    assert flt.root == Or(
        (Condition("a", "$eq", 1.0), Condition("b", "$eq", 2.0), Condition("c", "$eq", 3.0))
    )
    assert flt.fields == frozenset("abc")


def test_tree_nodes_are_frozen_and_hashable() -> None:
    condition = Condition("a", "$eq", 1.0)
    with pytest.raises(AttributeError):
        condition.field = "b"  # type: ignore[misc]
    assert len({condition, Condition("a", "$eq", 1.0), And((condition,))}) == 2


def test_conditions_distinguish_bool_from_number() -> None:
    assert Condition("a", "$eq", True) != Condition("a", "$eq", 1.0)
    assert Condition("a", "$in", (True,)) != Condition("a", "$in", (1.0,))
    assert compile_filter({"a": True}) != compile_filter({"a": 1})
    assert compile_filter({"a": 1}) == compile_filter({"a": 1.0})
    assert hash(compile_filter({"a": 1})) == hash(compile_filter({"a": 1.0}))
    assert Condition("a", "$eq", 1.0) != "a"


def test_filter_built_from_a_tree() -> None:
    flt = Filter(Or((Condition("a", "$gt", 5.0), Condition("b", "$exists", False))))
    assert flt.matches({"a": 6.0, "b": 1.0})
    assert flt.matches({"a": 1.0})
    assert not flt.matches({"a": 1.0, "b": "x"})
    assert "Condition" in repr(flt)


def test_filter_mask() -> None:
    flt = compile_filter({"genre": {"$in": ["drama", "comedy"]}})
    mask = filter_mask(flt, [{"genre": "drama"}, None, {"genre": "action"}, {"genre": ["x", "comedy"]}])
    assert mask.dtype == np.bool_
    assert mask.tolist() == [True, False, False, True]
    assert filter_mask(None, [{}, None]).tolist() == [True, True]
    assert filter_mask(flt, []).shape == (0,)


def test_where_label_in_messages() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"\) Invalid delete filter: .*\(at delete filter\.a\.\$foo\)\.$"
    ):
        parse_filter({"a": {"$foo": 1}}, where="delete filter")


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ("genre", ["expected a filter object", "a string"]),
        ([{"a": 1}], ["expected a filter object", "a list"]),
        (3, ["a number"]),
        ({1: "x"}, ["keys must be strings"]),
        ({"": "x"}, ["field names must not be empty"]),
        ({"$regex": "x"}, ["unsupported operator '$regex'", "$and", "$exists"]),
        ({"$eq": "x"}, ["operator $eq must be applied to a field"]),
        ({"$not": {"a": 1}}, ["'$not'"]),
        (
            {"a": {"$regex": "^x"}},
            ["unsupported operator '$regex' on field 'a'", "$eq, $ne, $gt", "filter.a.$regex"],
        ),
        ({"a": {"$not": {"$eq": 1}}}, ["'$not'", "supported operators are"]),
        ({"a": {"$contains": "x"}}, ["'$contains'"]),
        ({"a": {"$and": [{"b": 1}]}}, ["$and cannot be applied to field 'a'"]),
        ({"a": {"b": 1}}, ["nested object", "'b'"]),
        ({"a": {}}, ["empty operator object", "'a'"]),
        ({"a": {1: 2}}, ["operator names must be strings"]),
        ({"a": ["x", "y"]}, ["field 'a' has a list value", "$in"]),
        ({"a": ("x",)}, ["list value"]),
        ({"a": None}, ["null", "$eq", "field 'a'"]),
        ({"a": {"$eq": None}}, ["null"]),
        ({"a": {"$eq": ["x"]}}, ["does not accept a list", "$in"]),
        ({"a": {"$ne": ["x"]}}, ["$ne", "does not accept a list"]),
        ({"a": {"$eq": {"x": 1}}}, ["an object"]),
        ({"a": {"$eq": b"x"}}, ["bytes"]),
        ({"a": math.nan}, ["finite", "nan"]),
        ({"a": {"$eq": math.inf}}, ["finite", "inf"]),
        ({"a": {"$gt": -math.inf}}, ["finite"]),
        ({"a": {"$in": [1, math.nan]}}, ["finite", "filter.a.$in[1]"]),
        ({"a": 10**400}, ["finite", "very large integer"]),
        ({"a": {"$gt": True}}, ["$gt", "expects a number", "a boolean"]),
        ({"a": {"$gte": "5"}}, ["$gte", "expects a number", "a string"]),
        ({"a": {"$lt": None}}, ["$lt", "null"]),
        ({"a": {"$lte": [1]}}, ["$lte", "a list"]),
        ({"a": {"$in": "x"}}, ["$in", "expects a list", "a string"]),
        ({"a": {"$nin": {"x": 1}}}, ["$nin", "an object"]),
        ({"a": {"$in": [["x"]]}}, ["accepts only strings, numbers and booleans", "a list"]),
        ({"a": {"$in": [None]}}, ["null"]),
        ({"a": {"$exists": 1}}, ["$exists", "true or false", "a number"]),
        ({"a": {"$exists": "true"}}, ["$exists", "a string"]),
        ({"a": {"$exists": None}}, ["$exists", "null"]),
        ({"$and": []}, ["$and", "non-empty list", "empty list"]),
        ({"$or": []}, ["$or", "non-empty list"]),
        ({"$and": {"a": 1}}, ["$and", "an object"]),
        ({"$or": "a"}, ["$or", "a string"]),
        ({"$and": [{}]}, ["at least one condition", "filter.$and[0]"]),
        ({"$or": [{"a": 1}, "b"]}, ["expected a filter object", "filter.$or[1]"]),
        ({"$and": [{"a": {"$foo": 1}}]}, ["'$foo'", "filter.$and[0].a.$foo"]),
        ({"odd key": {"$gt": "x"}}, ["field 'odd key'", "filter['odd key'].$gt"]),
    ],
)
def test_invalid_filters(raw: object, fragments: list[str]) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_filter(raw)
    message = caught.value.message
    assert message.startswith("Invalid filter: ")
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_long_keys_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_filter({"k" * 10_000: {"$bad": 1}})
    assert len(caught.value.message) < 600


def test_unpaired_surrogates_in_messages_are_escaped() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_filter({"\ud800": {"$bad": 1}})
    caught.value.message.encode()


def test_in_limit() -> None:
    ok = compile_filter({"n": {"$in": list(range(MAX_IN_VALUES))}})
    assert ok.matches({"n": float(MAX_IN_VALUES - 1)})
    assert not ok.matches({"n": float(MAX_IN_VALUES)})
    compile_filter({"n": {"$nin": [str(i) for i in range(MAX_IN_VALUES)]}})
    for op in ("$in", "$nin"):
        with pytest.raises(
            InvalidArgumentError, match=rf"\{op} on field 'n' has 10001 values.*limit of 10000"
        ):
            parse_filter({"n": {op: list(range(MAX_IN_VALUES + 1))}})


def test_total_values_limit() -> None:
    per_field = MAX_FILTER_VALUES // MAX_IN_VALUES
    values = list(range(MAX_IN_VALUES))
    compile_filter({f"f{i}": {"$in": values} for i in range(per_field)})
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_FILTER_VALUES}"):
        parse_filter({f"f{i}": {"$in": values} for i in range(per_field + 1)})


def nested(depth: int) -> dict[str, Any]:
    # Alternating levels that let the innermost condition decide: x AND a==1, x OR z==1 (z is never set).
    raw: dict[str, Any] = {"a": 1}
    for level in range(depth):
        raw = {"$or": [raw, {"z": 1}]} if level % 2 else {"$and": [raw, {"a": 1}]}
    return raw


def test_depth_limit() -> None:
    flt = compile_filter(nested(MAX_FILTER_DEPTH))
    assert flt.matches({"a": 1.0})
    assert not flt.matches({"a": 2.0})
    with pytest.raises(InvalidArgumentError, match=f"nested at most {MAX_FILTER_DEPTH} levels"):
        parse_filter(nested(MAX_FILTER_DEPTH + 1))


def test_pathological_nesting_is_rejected_without_recursion_errors() -> None:
    raw: Any = {"a": 1}
    for _ in range(10_000):
        raw = {"$and": [raw]}
    with pytest.raises(InvalidArgumentError, match="nested at most"):
        parse_filter(raw)
    raw = {"a": 1}
    for _ in range(10_000):
        raw = {"a": {"$eq": raw}}
    with pytest.raises(InvalidArgumentError):
        parse_filter(raw)


def test_node_limit() -> None:
    # The $or operator itself counts as a node.
    compile_filter({"$or": [{"n": i} for i in range(MAX_FILTER_NODES - 1)]})
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_FILTER_NODES} conditions"):
        parse_filter({"$or": [{"n": i} for i in range(MAX_FILTER_NODES)]})
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_FILTER_NODES} conditions"):
        parse_filter({f"f{i}": i for i in range(MAX_FILTER_NODES + 1)})


def test_protobuf_struct_style_input() -> None:
    # google.protobuf.Struct turns every number into a float.
    flt = compile_filter({"year": {"$gte": 2000.0, "$in": [2005.0, 2010.0]}, "ok": {"$exists": True}})
    assert flt.matches({"year": 2005.0, "ok": "y"})
    assert not flt.matches({"year": 2006.0, "ok": "y"})


# --- properties --------------------------------------------------------------------------------------------

FIELDS = ("a", "b", "c")
STRINGS = st.sampled_from(["x", "y", "z", "1", "True", ""])
NUMBERS = st.sampled_from([-1.5, 0.0, 1.0, 2.0, 2.5, 1e6])
INTS = st.sampled_from([0, 1, 2, -3])
SCALARS = st.one_of(STRINGS, NUMBERS, INTS, st.booleans())

METADATA_VALUES = st.one_of(STRINGS, NUMBERS, INTS, st.booleans(), st.lists(STRINGS, max_size=3), st.none())
METADATA = st.dictionaries(st.sampled_from(FIELDS), METADATA_VALUES, max_size=3)

RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")


def operand(op: str) -> st.SearchStrategy[Any]:
    if op in ("$eq", "$ne"):
        return SCALARS
    if op in RANGE_OPS:
        return st.one_of(NUMBERS, INTS)
    if op in ("$in", "$nin"):
        return st.lists(SCALARS, max_size=4)
    return st.booleans()


OPERATOR_OBJECTS = st.lists(
    st.sampled_from(SUPPORTED_OPERATORS).flatmap(lambda op: operand(op).map(lambda arg: (op, arg))),
    min_size=1,
    max_size=3,
    unique_by=lambda pair: pair[0],
).map(dict)

FIELD_FILTERS = st.dictionaries(
    st.sampled_from(FIELDS), st.one_of(SCALARS, OPERATOR_OBJECTS), min_size=1, max_size=2
)


def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    logical = st.one_of(
        st.fixed_dictionaries({"$and": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"$or": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries(
            {
                "$and": st.lists(children, min_size=1, max_size=2),
                "$or": st.lists(children, min_size=1, max_size=2),
            }
        ),
    )
    return st.one_of(logical, st.tuples(logical, FIELD_FILTERS).map(lambda pair: {**pair[0], **pair[1]}))


FILTERS = st.recursive(FIELD_FILTERS, extend, max_leaves=8)


def kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def same(left: object, right: object) -> bool:
    return kind(left) is not None and kind(left) == kind(right) and left == right


REFERENCE_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def reference_condition(value: object, op: str, arg: Any) -> bool:
    if value is None:
        return op in ("$ne", "$nin") or (op == "$exists" and arg is False)
    if op == "$exists":
        return arg is True
    elements = value if isinstance(value, list) else [value]
    if op == "$eq":
        return any(same(e, arg) for e in elements)
    if op == "$ne":
        return not any(same(e, arg) for e in elements)
    if op == "$in":
        return any(same(e, a) for e in elements for a in arg)
    if op == "$nin":
        return not any(same(e, a) for e in elements for a in arg)
    return any(kind(e) == "number" and REFERENCE_ORDER[op](e, arg) for e in elements)


def reference(raw: dict[str, Any], metadata: dict[str, Any]) -> bool:
    for key, spec in raw.items():
        if key == "$and":
            ok = all(reference(child, metadata) for child in spec)
        elif key == "$or":
            ok = any(reference(child, metadata) for child in spec)
        elif isinstance(spec, dict):
            ok = all(reference_condition(metadata.get(key), op, arg) for op, arg in spec.items())
        else:
            ok = reference_condition(metadata.get(key), "$eq", spec)
        if not ok:
            return False
    return True


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=FILTERS, records=st.lists(METADATA, min_size=1, max_size=8))
def test_matches_agrees_with_reference(raw: dict[str, Any], records: list[dict[str, Any]]) -> None:
    flt = compile_filter(raw)
    expected = [reference(raw, record) for record in records]
    assert [flt.matches(record) for record in records] == expected
    assert filter_mask(flt, records).tolist() == expected
    assert flt.fields <= set(FIELDS)


KEYS = st.one_of(
    st.sampled_from([*SUPPORTED_OPERATORS, "$and", "$or", "$not", "$regex", "", "a", "b", "$"]),
    st.text(max_size=5),
    st.integers(),
    st.none(),
    st.booleans(),
)
JUNK_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.binary(max_size=3),
    st.sampled_from([*SUPPORTED_OPERATORS, "$and", "$or"]),
)
JUNK = st.recursive(
    JUNK_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(KEYS, children, max_size=4),
        st.frozensets(st.integers(), max_size=2),
    ),
    max_leaves=20,
)
JUNK_METADATA = st.dictionaries(
    st.sampled_from(["a", "b", "", "$and"]),
    st.one_of(JUNK, METADATA_VALUES),
    max_size=4,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=JUNK, records=st.lists(JUNK_METADATA, max_size=3))
def test_junk_only_raises_invalid_argument(raw: object, records: list[dict[str, Any]]) -> None:
    try:
        flt = parse_filter(raw)
    except InvalidArgumentError as error:
        message = error.message
    else:
        if flt is not None:
            for record in records:
                assert isinstance(flt.matches(record), bool)
        return
    assert message.startswith("Invalid filter")
    message.encode()


@settings(max_examples=120, deadline=None)
@given(
    raw=st.dictionaries(
        st.sampled_from(FIELDS),
        st.dictionaries(st.sampled_from([*SUPPORTED_OPERATORS, "$bad"]), JUNK, min_size=1, max_size=2),
        min_size=1,
        max_size=2,
    )
)
def test_junk_operands_only_raise_invalid_argument(raw: dict[str, Any]) -> None:
    with contextlib.suppress(InvalidArgumentError):
        parse_filter(raw)

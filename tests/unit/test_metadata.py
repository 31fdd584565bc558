"""Unit tests of record metadata validation (pinecone_rag.server.metadata)."""

from __future__ import annotations

import copy
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.server.metadata import (
    MAX_METADATA_BYTES,
    check_metadata_size,
    merge_metadata,
    validate_metadata,
    validate_metadata_batch,
)


def test_limit_constant() -> None:
    assert MAX_METADATA_BYTES == 40960


def test_empty_metadata_is_none() -> None:
    assert validate_metadata(None, record_id="r") is None
    assert validate_metadata({}, record_id="r") is None


def test_values_are_normalised() -> None:
    raw = {
        "genre": "drama",
        "year": 2005,
        "rating": 7.5,
        "ok": True,
        "no": False,
        "tags": ["a", "b"],
        "none": [],
    }
    metadata = validate_metadata(raw, record_id="r")
    assert metadata == {
        "genre": "drama",
        "year": 2005.0,
        "rating": 7.5,
        "ok": True,
        "no": False,
        "tags": ["a", "b"],
        "none": [],
    }
    assert type(metadata["year"]) is float
    assert metadata["ok"] is True
    assert metadata["no"] is False
    assert metadata is not raw
    assert metadata["tags"] is not raw["tags"]


def test_input_is_not_modified() -> None:
    raw: dict[str, Any] = {"year": 2005, "tags": ["a"]}
    before = copy.deepcopy(raw)
    metadata = validate_metadata(raw, record_id="r")
    assert metadata is not None
    metadata["tags"].append("b")  # type: ignore[union-attr]
    assert raw == before
    assert type(raw["year"]) is int


def test_tuples_become_lists_and_subclasses_are_accepted() -> None:
    class Label(str):
        __slots__ = ()

    metadata = validate_metadata({"tags": ("a", "b"), "name": Label("x"), "n": math.pi}, record_id="r")
    assert metadata == {"tags": ["a", "b"], "name": "x", "n": math.pi}


def test_large_finite_numbers() -> None:
    metadata = validate_metadata({"big": 10**300, "small": -1e308, "zero": -0.0}, record_id="r")
    assert metadata == {"big": 1e300, "small": -1e308, "zero": 0.0}


PREFIX = "Invalid metadata for record 'doc-3': "


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # Messages are spelled out in full: they are part of the error contract.
        (
            {"year": None},
            PREFIX
            + "field 'year' is null; metadata values must be strings, numbers, booleans or lists of strings.",
        ),
        (
            {"a": {"b": 1}},
            PREFIX + "field 'a' is an object; nested objects are not supported; "
            "metadata values must be strings, numbers, booleans or lists of strings.",
        ),
        (
            {"tags": ["a", 1]},
            PREFIX + "field 'tags' is a list containing a number at index 1; lists may only contain strings.",
        ),
        (["a"], PREFIX + "expected an object mapping field names to values, got a list."),
        ("a", PREFIX + "expected an object mapping field names to values, got a string."),
        ({"": 1}, PREFIX + "field names must not be empty."),
        ({1: 1}, PREFIX + "field names must be strings, got a number."),
        ({"$eq": 1}, PREFIX + "field '$eq' starts with '$', which is reserved for filter operators."),
    ],
)
def test_invalid_metadata_messages(raw: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_metadata(raw, record_id="doc-3")
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ({"a": math.nan}, ["field 'a'", "nan", "finite"]),
        ({"a": math.inf}, ["inf", "finite"]),
        ({"a": -math.inf}, ["-inf"]),
        ({"a": 10**400}, ["too large"]),
        ({"a": [None]}, ["null at index 0"]),
        ({"a": ["x", ["y"]]}, ["a list at index 1"]),
        ({"a": [{"b": "c"}]}, ["an object at index 0"]),
        ({"a": [True]}, ["a boolean at index 0"]),
        ({"a": b"x"}, ["bytes"]),
        ({"a": {"x", "y"}}, ["set"]),
        ({"a": 1 + 2j}, ["complex"]),
        (42, ["got a number"]),
        (True, ["got a boolean"]),
    ],
)
def test_invalid_metadata(raw: object, fragments: list[str]) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_metadata(raw, record_id="doc-3")
    message = caught.value.message
    assert message.startswith("Invalid metadata for record 'doc-3': ")
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_field_label() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"\) Invalid setMetadata for record 'x': field 'y' is null"
    ):
        validate_metadata({"y": None}, record_id="x", field="setMetadata")


def test_long_field_names_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_metadata({"k" * 5000: None}, record_id="r")
    assert len(caught.value.message) < 300


def test_size_limit() -> None:
    # {"k":"..."} is 8 bytes of JSON around the string.
    at_limit = {"k": "x" * (MAX_METADATA_BYTES - 8)}
    assert len(orjson.dumps(at_limit)) == MAX_METADATA_BYTES
    assert validate_metadata(at_limit, record_id="doc-3") == at_limit
    with pytest.raises(InvalidArgumentError) as caught:
        validate_metadata({"k": "x" * (MAX_METADATA_BYTES - 7)}, record_id="doc-3")
    assert caught.value.message == (
        "Metadata size is 40961 bytes, which exceeds the limit of 40960 bytes per vector (record 'doc-3')."
    )


def test_size_counts_utf8_bytes() -> None:
    # "é" is two bytes in UTF-8.
    raw = {"k": "é" * ((MAX_METADATA_BYTES - 8) // 2 + 1)}
    with pytest.raises(InvalidArgumentError, match="Metadata size is 40962 bytes"):
        validate_metadata(raw, record_id="r")


def test_size_counts_many_fields() -> None:
    raw = {f"field-{i}": ["tag"] * 10 for i in range(1000)}
    with pytest.raises(
        InvalidArgumentError, match=r"exceeds the limit of 40960 bytes per vector \(record 'r'\)"
    ):
        validate_metadata(raw, record_id="r")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"k": "\ud800"}, "the value of field 'k'"),
        ({"\udfff": "v"}, "a field name"),
        ({"k": ["ok", "\ud800x"]}, "a string in the list of field 'k'"),
    ],
)
def test_unpaired_surrogates(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_metadata(raw, record_id="r")
    assert fragment in caught.value.message
    assert "not valid UTF-8" in caught.value.message
    caught.value.message.encode()


def test_merge_adds_and_overwrites() -> None:
    old: dict[str, Any] = {"genre": "drama", "year": 2005.0, "tags": ["a"]}
    patch: dict[str, Any] = {"year": 2006.0, "new": True}
    merged = merge_metadata(old, patch)
    assert merged == {"genre": "drama", "year": 2006.0, "tags": ["a"], "new": True}
    assert old == {"genre": "drama", "year": 2005.0, "tags": ["a"]}
    assert patch == {"year": 2006.0, "new": True}
    assert merged is not None
    assert merged["tags"] is not old["tags"]


def test_merge_edge_cases() -> None:
    assert merge_metadata(None, {"a": "x"}) == {"a": "x"}
    assert merge_metadata(None, {}) is None
    assert merge_metadata({}, {}) is None
    assert merge_metadata({"a": "x"}, {}) == {"a": "x"}
    patch: dict[str, Any] = {"tags": ["x"]}
    merged = merge_metadata(None, patch)
    assert merged is not None
    assert merged["tags"] is not patch["tags"]


def test_merge_then_check_size() -> None:
    half = "x" * (MAX_METADATA_BYTES // 2)
    old = validate_metadata({"a": half}, record_id="r")
    patch = validate_metadata({"b": half}, record_id="r")
    assert patch is not None
    merged = merge_metadata(old, patch)
    assert merged is not None
    with pytest.raises(InvalidArgumentError, match="exceeds the limit"):
        check_metadata_size(merged, record_id="r")
    check_metadata_size({"a": half}, record_id="r")


def _has_surrogates(raw: dict[str, Any]) -> bool:
    texts = [*raw, *(v for v in raw.values() if isinstance(v, str))]
    texts += [item for v in raw.values() if isinstance(v, list) for item in v]
    return any("\ud800" <= ch <= "\udfff" for text in texts for ch in text)


VALID_VALUES = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.text(max_size=8), max_size=5),
)
VALID_KEYS = st.text(min_size=1, max_size=10).filter(lambda key: not key.startswith("$"))


@settings(max_examples=200, deadline=None)
@given(raw=st.dictionaries(VALID_KEYS, VALID_VALUES, max_size=8))
def test_valid_metadata_round_trips(raw: dict[str, Any]) -> None:
    if _has_surrogates(raw):
        # Hypothesis text may hold unpaired surrogates, which are not valid UTF-8.
        with pytest.raises(InvalidArgumentError, match="not valid UTF-8"):
            validate_metadata(raw, record_id="r")
        return
    metadata = validate_metadata(raw, record_id="r")
    if not raw:
        assert metadata is None
        return
    assert metadata is not None
    assert metadata.keys() == raw.keys()
    for key, value in metadata.items():
        original = raw[key]
        if isinstance(original, bool):
            assert value is original
        elif isinstance(original, int | float):
            assert type(value) is float
            assert value == float(original)
        else:
            assert value == original
            assert type(value) is type(original)


JUNK = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**300, max_value=10**400),
        st.floats(),
        st.text(max_size=5),
        st.binary(max_size=3),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers(), st.none()), children, max_size=3),
    ),
    max_leaves=10,
)


@settings(max_examples=250, deadline=None)
@given(raw=JUNK)
def test_junk_only_raises_invalid_argument(raw: object) -> None:
    try:
        validate_metadata(raw, record_id="r")
    except InvalidArgumentError as error:
        error.message.encode()


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        return "ok", run()
    except InvalidArgumentError as error:
        return "error", error.message


BATCH_RAWS = st.lists(
    st.one_of(
        st.none(),
        JUNK,
        st.dictionaries(VALID_KEYS, VALID_VALUES, max_size=6),
        st.dictionaries(st.text(max_size=4), st.floats() | st.text(max_size=4), max_size=3),
        st.dictionaries(st.sampled_from(["big"]), st.just("x" * (MAX_METADATA_BYTES - 8)), max_size=1),
    ),
    min_size=1,
    max_size=5,
)


@st.composite
def same_key_raws(draw: st.DrawFn) -> list[object]:
    """Records sharing their keys (the column-by-column path), now and then with a bad key or value."""
    keys = draw(st.lists(VALID_KEYS | st.sampled_from(["", "$in", "k"]), min_size=1, max_size=3, unique=True))
    values = VALID_VALUES | st.sampled_from([math.inf, -math.nan, 1e308, None, ["a", 1], ("a",), 2]) | JUNK
    count = draw(st.integers(1, 4))
    return [{key: draw(values) for key in keys} for _ in range(count)]


@settings(max_examples=250, deadline=None)
@given(raws=BATCH_RAWS | same_key_raws())
def test_batch_validation_is_validate_metadata_per_record(raws: list[object]) -> None:
    """Same results, same first error message, whether a record takes the fast path or not."""
    ids = [f"r{i}" for i in range(len(raws))]
    expected = _outcome(
        lambda: [validate_metadata(raw, record_id=i) for i, raw in zip(ids, raws, strict=True)]
    )
    assert _outcome(lambda: validate_metadata_batch(copy.deepcopy(raws), ids)) == expected
    if expected[0] == "ok":
        for got, want in zip(validate_metadata_batch(copy.deepcopy(raws), ids), expected[1], strict=True):
            if want is not None:
                assert got is not None
                assert [type(value) for value in got.values()] == [type(value) for value in want.values()]


def test_batch_validation_keeps_normal_metadata_and_normalises_the_rest() -> None:
    normal = {"source": "doc.md", "chunk": 3.0, "ok": False, "tags": ["a"]}
    other = {"chunk": 3, "tags": ("a",)}
    checked = validate_metadata_batch([normal, other, {}, None], ["a", "b", "c", "d"], field="setMetadata")
    assert checked[0] is normal  # decoded objects are handed over, not copied
    assert checked[1] == {"chunk": 3.0, "tags": ["a"]}
    assert type(checked[1]["chunk"]) is float
    assert checked[2:] == [None, None]


@pytest.mark.parametrize(
    "raw",
    [
        {"n": math.inf},
        {"n": math.nan},
        {"$x": "a"},
        {"": "a"},
        {"tags": ["a", 1.0]},
        {"big": "x" * MAX_METADATA_BYTES},
        {"bad": "\ud800"},
    ],
)
def test_batch_validation_reports_the_first_invalid_record(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError) as expected:
        validate_metadata(raw, record_id="second", field="setMetadata")
    with pytest.raises(InvalidArgumentError) as caught:
        validate_metadata_batch(
            [{"ok": "yes"}, raw, {"": 1}], ["first", "second", "third"], field="setMetadata"
        )
    assert caught.value.message == expected.value.message


def test_batch_validation_of_records_sharing_keys() -> None:
    """The column-by-column path: sums of large finite numbers overflow, yet each number is valid."""
    records: list[object] = [{"n": 1e308, "tags": ["a"], "s": "x"}, {"n": 1e308, "tags": [], "s": "y"}]
    assert validate_metadata_batch(records, ["a", "b"]) == records
    assert validate_metadata_batch(records, ["a", "b"])[0] is records[0]
    bad: list[object] = [{"n": 1e308, "s": "x"}, {"n": -math.inf, "s": "y"}]
    with pytest.raises(InvalidArgumentError, match="record 'b': field 'n' is -inf"):
        validate_metadata_batch(bad, ["a", "b"])
    with pytest.raises(InvalidArgumentError, match="list containing a boolean at index 0"):
        validate_metadata_batch([{"t": ["a"]}, {"t": [True]}], ["a", "b"])

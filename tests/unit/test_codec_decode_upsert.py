"""The vectorised path of the UpsertRequest decoder, and the metadata it vouches for (``NormalMetadata``).

Requests laid out as encoders write them are decoded for all records at once
(``decode_upsert._decode_regular``); these tests pin that this path is taken for such requests, that it
reads exactly what the generated classes read, and that its ``NormalMetadata`` certificate never lets the
server's validation accept or change what it would otherwise reject or rewrite.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.server.metadata import validate_metadata_batch
from pinecone_rag.wire import decode_upsert
from pinecone_rag.wire import messages as pb
from pinecone_rag.wire.codec import decode_upsert_columns, encode_upsert_request
from pinecone_rag.wire.decode import _parse_entry
from pinecone_rag.wire.decode_upsert import NormalMetadata
from pinecone_rag.wire.structs import struct_to_dict

from .codec_support import FEW, SETTINGS, assert_floats, assert_same_python, f32, f_len

short_text = st.text(max_size=10)
field_names = st.text(min_size=1, max_size=10).filter(lambda name: name[0] != "$")
normal_values = st.one_of(
    short_text,
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**53), 2**53),
    st.booleans(),
    st.lists(short_text, max_size=3),
)
# What a client may send that the server must reject (or, for None values, check field by field).
odd_values = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.none(),
    st.dictionaries(short_text, short_text, max_size=2),
    st.lists(st.floats(allow_nan=False) | st.booleans(), min_size=1, max_size=2),
)
odd_keys = st.sampled_from(["", "$in", "$x"])


@st.composite
def regular_requests(draw: st.DrawFn, *, odd: bool) -> tuple[Any, bytes]:
    """An UpsertRequest with dense values of one dimension and short metadata entries, and its bytes."""
    count = draw(st.integers(1, 8))
    dim = draw(st.integers(1, 12))
    request = pb.UpsertRequest(namespace=draw(st.text(max_size=8)))
    keys = field_names | odd_keys if odd else field_names
    values = normal_values | odd_values if odd else normal_values
    for _ in range(count):
        vector = request.vectors.add(id=draw(st.text(min_size=1, max_size=20)))
        vector.values.extend(float(x) for x in draw(hnp.arrays(np.float32, dim, elements=f32)))
        if draw(st.booleans()):
            vector.metadata.SetInParent()
            vector.metadata.update(draw(st.dictionaries(keys, values, max_size=4)))
    return request, request.SerializeToString()


def assert_same_columns(message: Any, wire: bytes) -> Any:
    columns = decode_upsert_columns(wire)
    assert columns.namespace == message.namespace
    assert columns.ids == [vector.id for vector in message.vectors]
    assert columns.matrix is not None
    for row, vector in zip(columns.matrix, message.vectors, strict=True):
        assert_floats(row, vector.values)
    assert columns.sparse == [None] * len(message.vectors)
    for fields, vector in zip(columns.metadata, message.vectors, strict=True):
        if vector.HasField("metadata"):
            assert_same_python(fields, struct_to_dict(vector.metadata))
        else:
            assert fields is None
    return columns


def validation_outcome(metadata: list[Any], ids: list[str]) -> Any:
    try:
        return validate_metadata_batch(metadata, ids)
    except InvalidArgumentError as error:
        return error.message


@SETTINGS
@given(regular_requests(odd=False))
def test_regular_requests_take_the_vectorised_path(request_and_wire: tuple[Any, bytes]) -> None:
    message, wire = request_and_wire
    assert decode_upsert._decode_regular(wire) is not None
    columns = assert_same_columns(message, wire)
    assert type(columns.metadata) is NormalMetadata
    assert columns.matrix.flags.writeable


@SETTINGS
@given(regular_requests(odd=True))
def test_vouched_metadata_validates_as_it_would_unvouched(request_and_wire: tuple[Any, bytes]) -> None:
    message, wire = request_and_wire
    columns = assert_same_columns(message, wire)
    if type(columns.metadata) is NormalMetadata:  # never vouches for what validation would reject
        for fields in columns.metadata:
            for name, value in (fields or {}).items():
                assert name
                assert name[0] != "$"
                assert type(value) in (str, bool, float, list)
                assert type(value) is not float or math.isfinite(value)
                assert type(value) is not list or all(type(item) is str for item in value)
    vouched = validation_outcome(columns.metadata, columns.ids)
    assert vouched == validation_outcome(list(columns.metadata), columns.ids)


@FEW
@given(st.lists(st.dictionaries(field_names, normal_values, max_size=4) | st.none(), min_size=1, max_size=6))
def test_what_we_encode_takes_the_vectorised_path(metadata: list[Any]) -> None:
    ids = [f"id-{i}" for i in range(len(metadata))]
    matrix = np.arange(3 * len(ids), dtype=np.float32).reshape(len(ids), 3)
    wire = encode_upsert_request(ids, matrix, None, metadata, "ns")
    assert decode_upsert._decode_regular(wire) is not None
    assert_same_columns(pb.UpsertRequest.FromString(wire), wire)


def test_lists_are_not_shared_between_records() -> None:
    metadata = [{"tags": ["a", "b"], "source": "doc"}] * 3
    wire = encode_upsert_request(["x", "y", "z"], np.ones((3, 2), dtype=np.float32), None, metadata)
    assert decode_upsert._decode_regular(wire) is not None
    first, second, third = decode_upsert_columns(wire).metadata
    assert first == second == third == metadata[0]
    assert first is not None
    assert second is not None
    first["tags"].append("c")
    assert second["tags"] == ["a", "b"]


def test_new_entries_repeated_in_one_request_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A document's chunks share entries no earlier request had: each is parsed once, lists still owned."""
    metadata = [{"source": "never-seen.md", "tags": ["never", "seen"], "chunk": float(i)} for i in range(6)]
    read: list[int] = []
    real = decode_upsert._read_entry

    def counting(data: bytes, pos: int, end: int) -> tuple[str, Any]:
        read.append(pos)
        return real(data, pos, end)

    monkeypatch.setattr(decode_upsert, "_read_entry", counting)
    monkeypatch.setattr(decode_upsert, "_NORMAL_ENTRIES", {})
    wire = encode_upsert_request(
        [f"r{i}" for i in range(6)], np.ones((6, 2), dtype=np.float32), None, metadata
    )
    decoded = decode_upsert_columns(wire).metadata
    assert decoded == metadata
    assert len(read) == 2 + 6  # source and tags once each, every distinct chunk number once
    first, second = decoded[0], decoded[1]
    assert first is not None
    assert second is not None
    first["tags"].append("c")
    assert second["tags"] == ["never", "seen"]


def test_records_with_different_keys_and_some_without_metadata() -> None:
    metadata: list[Any] = [{"a": "x"}, None, {"b": 1.0, "a": "y"}, {}, {"c": ["p"]}]
    ids = [str(i) for i in range(len(metadata))]
    wire = encode_upsert_request(ids, np.zeros((5, 2), dtype=np.float32), None, metadata)
    assert decode_upsert._decode_regular(wire) is not None
    columns = assert_same_columns(pb.UpsertRequest.FromString(wire), wire)
    assert columns.metadata == metadata
    assert validate_metadata_batch(columns.metadata, ids) == [
        {"a": "x"},
        None,
        {"b": 1.0, "a": "y"},
        None,
        {"c": ["p"]},
    ]


@pytest.mark.parametrize("record_id", ["a\x00b", "\x00", "é-ü-😀", "x" * 200])
def test_unusual_ids(record_id: str) -> None:
    ids = [record_id, "plain", record_id + "2"]
    wire = encode_upsert_request(ids, np.ones((3, 4), dtype=np.float32), None, None)
    assert decode_upsert._decode_regular(wire) is not None
    assert decode_upsert_columns(wire).ids == ids


def test_an_id_that_is_not_utf8_is_reported_by_the_general_parser() -> None:
    values = f_len(2, np.ones(2, dtype="<f4").tobytes())
    wire = f_len(1, f_len(1, b"ok") + values) + f_len(1, f_len(1, b"\xff") + values)
    assert decode_upsert._decode_regular(wire) is None
    with pytest.raises(ValueError, match="not valid UTF-8"):
        decode_upsert_columns(wire)


def test_large_metadata_is_not_vouched_for() -> None:
    big = {f"k{i}": "v" * 100 for i in range(70)}  # short entries, but a Struct above 6,800 bytes
    wire = encode_upsert_request(["a"], np.ones((1, 2), dtype=np.float32), None, [big])
    columns = decode_upsert_columns(wire)
    assert decode_upsert._decode_regular(wire) is not None
    assert type(columns.metadata) is not NormalMetadata
    assert validate_metadata_batch(columns.metadata, columns.ids) == [big]


def test_other_layouts_take_the_general_parser() -> None:
    values = f_len(2, np.ones(2, dtype="<f4").tobytes())
    one_value = f_len(2, struct.pack("<f", 1.0))
    sparse = f_len(4, f_len(1, b"\x01") + one_value)
    layouts = [
        f_len(2, b"ns") + f_len(1, f_len(1, b"a") + values),  # the namespace first
        f_len(1, values + f_len(1, b"a")),  # values before the id
        f_len(1, f_len(1, b"a") + values + sparse),  # sparse values
        f_len(1, f_len(1, b"a") + values) + f_len(1, f_len(1, b"b") + one_value),  # two dimensions
        f_len(1, f_len(1, b"a") + values + f_len(3, f_len(1, f_len(1, b"k" * 130)))),  # a long entry
    ]
    for wire in layouts:
        assert decode_upsert._decode_regular(wire) is None
        message = pb.UpsertRequest.FromString(wire)
        columns = decode_upsert_columns(wire)
        assert columns.ids == [vector.id for vector in message.vectors]


@SETTINGS
@given(
    st.text(max_size=10),
    st.one_of(
        normal_values,
        st.just(math.nan),
        st.none(),
        st.dictionaries(short_text, short_text, max_size=2),
        st.lists(st.floats() | short_text, max_size=3),
    ),
)
def test_entries_read_directly_match_the_general_parser(name: str, value: Any) -> None:
    message = pb.Vector()
    message.metadata.update({name: value})
    body = message.metadata.SerializeToString()  # exactly one map entry
    read = dict([decode_upsert._read_entry(body, 0, len(body))])
    name, parsed = _parse_entry(body, 0, len(body), 3)  # memoized lists come back as tuples
    assert_same_python(read, {name: list(parsed) if type(parsed) is tuple else parsed})
    assert_same_python(read, struct_to_dict(message.metadata))


@pytest.mark.parametrize(
    "entry",
    [
        f_len(1, f_len(1, b"k") + f_len(2, b"\x20\x02")),  # a boolean written as 2
        f_len(1, f_len(2, b"\x20\x01") + f_len(1, b"k")),  # the value before the key
        f_len(1, f_len(1, b"k") + f_len(2, b"\x11" + bytes(8) + b"\x1a\x01x")),  # two kinds: last wins
        f_len(1, f_len(1, b"k") + f_len(2, f_len(6, f_len(1, f_len(3, b"x")) + f_len(1, b"\x20\x01")))),
    ],
)
def test_unusual_entries_are_read_like_the_general_parser(entry: bytes) -> None:
    assert decode_upsert._read_entry(entry, 0, len(entry)) == _parse_entry(entry, 0, len(entry), 3)

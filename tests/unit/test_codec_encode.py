"""Property tests of the hand-written protobuf codec (pinecone_rag.wire.codec) against the generated classes.

The generated message classes (upb) are the oracle: encoders must produce bytes that parse to the message
built with them from the same data (byte-identical when no Struct map is involved), and decoders must read
whatever they serialize, field by field and bit for bit. Malformed input must raise ValueError, never
another exception.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pinecone_rag.wire import encode
from pinecone_rag.wire import messages as pb
from pinecone_rag.wire.codec import (
    encode_fetch_request,
    encode_query_request,
    encode_upsert_request,
)
from pinecone_rag.wire.structs import struct_to_dict

from .codec_support import (
    FEW,
    SETTINGS,
    dims,
    f32,
    f_len,
    has_struct,
    namespaces,
    oracle_upsert,
    sparse_pairs,
    struct_dicts,
    uint32,
    upsert_batches,
)

# --- encoders --------------------------------------------------------------------------------------------


@SETTINGS
@given(upsert_batches())
def test_upsert_matches_generated(batch: dict[str, Any]) -> None:
    data = encode_upsert_request(**batch)
    assert isinstance(data, bytes)
    expected = oracle_upsert(batch)
    parsed = pb.UpsertRequest.FromString(data)
    assert parsed == expected
    if not has_struct(batch):
        assert data == expected.SerializeToString()
    for i, vector in enumerate(parsed.vectors):
        if batch["dense"] is not None:
            want = batch["dense"][i]
            got = np.array(list(vector.values), dtype=np.float32)
            assert got.tobytes() == want.tobytes()
        if batch["metadata"] is not None and batch["metadata"][i] is not None:
            # Numbers go out as doubles (number_value), booleans stay booleans.
            for name, value in batch["metadata"][i].items():
                kind = vector.metadata.fields[name].WhichOneof("kind")
                if isinstance(value, bool):
                    assert kind == "bool_value"
                elif isinstance(value, (int, float)):
                    assert kind == "number_value"


@FEW
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(0, 5), dims), elements=f32),
    st.sampled_from(("C", "F", "T", "be")),
)
def test_upsert_accepts_any_float_dtype_and_layout(matrix: np.ndarray, layout: str) -> None:
    reference = encode_upsert_request(
        [f"id{i}" for i in range(len(matrix))], matrix.astype(np.float32), None, None
    )
    if layout == "F":
        dense: np.ndarray = np.asfortranarray(matrix)
    elif layout == "T":
        dense = np.ascontiguousarray(matrix.T).T  # a transposed view: neither C nor F order of the data
    elif layout == "be":
        dense = matrix.astype(">f4")
    else:
        dense = matrix
    assert encode_upsert_request([f"id{i}" for i in range(len(matrix))], dense, None, None) == reference


def test_upsert_slices_of_a_larger_matrix() -> None:
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((10, 16), dtype=np.float32)
    view = matrix[2:7, ::2]  # non-contiguous rows and columns
    data = encode_upsert_request([str(i) for i in range(5)], view, None, None, namespace="n")
    parsed = pb.UpsertRequest.FromString(data)
    for i, vector in enumerate(parsed.vectors):
        assert np.array(list(vector.values), dtype=np.float32).tobytes() == view[i].tobytes()


def test_upsert_preserves_float_bits() -> None:
    """NaN payloads, signalling NaNs, infinities, -0.0 and subnormals go out as their exact bits."""
    bits = np.array(
        [0x7FC00001, 0x7F800001, 0xFFBFFFFF, 0x7F800000, 0xFF800000, 0x80000000, 0x00000001, 0x3F800000],
        dtype=np.uint32,
    )
    dense = bits.view(np.float32).reshape(1, -1)
    data = encode_upsert_request(["x"], dense, None, None)
    assert data == f_len(1, f_len(1, b"x") + f_len(2, bits.astype("<u4").tobytes()))


@SETTINGS
@given(
    vector=st.none() | hnp.arrays(np.float32, dims, elements=f32),
    top_k=uint32,
    namespace=namespaces,
    query_filter=st.none() | struct_dicts,
    include_values=st.booleans(),
    include_metadata=st.booleans(),
    sparse=st.none() | sparse_pairs(),
    record_id=st.none() | st.text(max_size=20),
)
def test_query_request_matches_generated(
    vector: np.ndarray | None,
    top_k: int,
    namespace: str,
    query_filter: dict[str, Any] | None,
    include_values: bool,
    include_metadata: bool,
    sparse: tuple[np.ndarray, np.ndarray] | None,
    record_id: str | None,
) -> None:
    data = encode_query_request(
        vector,
        top_k,
        namespace,
        filter=query_filter,
        include_values=include_values,
        include_metadata=include_metadata,
        sparse=sparse,
        record_id=record_id,
    )
    expected = pb.QueryRequest(
        namespace=namespace,
        top_k=top_k,
        include_values=include_values,
        include_metadata=include_metadata,
        id=record_id or "",
    )
    if vector is not None:
        expected.vector.extend(vector.tolist())
    if query_filter is not None:
        expected.filter.SetInParent()
        expected.filter.update(query_filter)
    if sparse is not None:
        expected.sparse_vector.SetInParent()
        expected.sparse_vector.indices.extend(sparse[0].tolist())
        expected.sparse_vector.values.extend(sparse[1].tolist())
    assert pb.QueryRequest.FromString(data) == expected
    if not query_filter:
        assert data == expected.SerializeToString()


@SETTINGS
@given(st.lists(st.text(max_size=20), max_size=8), namespaces)
def test_fetch_request_is_byte_identical(record_ids: list[str], namespace: str) -> None:
    expected = pb.FetchRequest(ids=record_ids, namespace=namespace).SerializeToString()
    assert encode_fetch_request(record_ids, namespace) == expected


def test_encoder_errors() -> None:
    dense = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        encode_upsert_request(["a"], dense, None, None)
    with pytest.raises(ValueError, match="shape"):
        encode_upsert_request(["a", "b"], np.zeros(3, dtype=np.float32), None, None)
    with pytest.raises(ValueError, match="entries"):
        encode_upsert_request(["a", "b"], dense, [None], None)
    with pytest.raises(ValueError, match="entries"):
        encode_upsert_request(["a", "b"], dense, None, [None])
    with pytest.raises(ValueError, match="length"):
        encode_upsert_request(["a"], None, [(np.array([1, 2]), np.array([1.0]))], None)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        encode_upsert_request(["a"], None, [(np.array([-1]), np.array([1.0]))], None)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        encode_upsert_request(["a"], None, [(np.array([2**32]), np.array([1.0]))], None)
    with pytest.raises(TypeError):
        encode_upsert_request(["a"], None, [(np.array([0.5]), np.array([1.0]))], None)
    with pytest.raises(TypeError):
        encode_upsert_request([1], None, None, None)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        encode_upsert_request(["a"], None, None, [{"k": object()}])
    with pytest.raises(TypeError):
        encode_upsert_request(["a"], None, None, [{1: "v"}])  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="double"):
        encode_upsert_request(["a"], None, None, [{"k": 10**400}])
    with pytest.raises(ValueError, match="top_k"):
        encode_query_request(None, -1)
    with pytest.raises(ValueError, match="top_k"):
        encode_query_request(None, 2**32)
    nested: dict[str, Any] = {}
    deep = nested
    for _ in range(200):
        deep["k"] = {}
        deep = deep["k"]
    with pytest.raises(ValueError, match="deeper"):
        encode_query_request(None, 1, filter=nested)


def test_metadata_numpy_scalars_and_sequences() -> None:
    metadata = {"f": np.float32(0.5), "i": np.int64(3), "b": np.bool_(True), "t": ("x", "y"), "n": None}
    parsed = pb.UpsertRequest.FromString(encode_upsert_request(["a"], None, None, [metadata]))
    assert struct_to_dict(parsed.vectors[0].metadata) == {
        "f": 0.5,
        "i": 3.0,
        "b": True,
        "t": ["x", "y"],
        "n": None,
    }


def test_upsert_of_more_than_2_mb() -> None:
    rng = np.random.default_rng(1)
    dense = rng.standard_normal((1000, 768), dtype=np.float32)
    record_ids = [f"доку-{i}-ß" for i in range(1000)]  # non-ASCII: lengths are UTF-8 bytes
    data = encode_upsert_request(record_ids, dense, None, None, namespace="ns")
    assert len(data) > 3_000_000
    expected = pb.UpsertRequest(
        vectors=[pb.Vector(id=i, values=row) for i, row in zip(record_ids, dense.tolist(), strict=True)],
        namespace="ns",
    )
    assert data == expected.SerializeToString()


def test_memoized_metadata_entries_match_generated() -> None:
    """Entries repeat across records and are memoized; values that are equal but differ in type must not
    share an entry (True == 1 == 1.0), nor may a list of strings stand in for an equal-looking list."""
    metadata: list[dict[str, Any] | None] = [
        {"k": ["a", "b"], "s": "x", "n": 1},
        {"k": ["a", "b"], "s": "x", "n": 1.0},
        {"k": ["a", True], "s": True, "n": True},
        {"k": ["a", 1], "s": 1.0, "n": -0.0},
        {"k": ["a", ["b"]], "s": "x" * 300, "n": 0.0},
        {"k": ["a", {"b": None}], "s": "é" * 70, "n": 2**60},
        {"k": ("a", "b"), "s": "", "n": None},
        {"k": [], "s": "x", "n": {"deep": ["a"]}},
    ]
    batch = {"ids": [f"r{i}" for i in range(len(metadata))], "dense": None, "sparse": None}
    for _ in range(2):  # the second pass hits the memo
        data = encode_upsert_request(**batch, metadata=metadata)
        assert pb.UpsertRequest.FromString(data) == oracle_upsert(
            {**batch, "metadata": metadata, "namespace": ""}
        )
        for vector, fields in zip(pb.UpsertRequest.FromString(data).vectors, metadata, strict=True):
            assert fields is not None
            assert struct_to_dict(vector.metadata) == {
                name: list(value) if isinstance(value, tuple) else value for name, value in fields.items()
            }
    negative_zero = pb.UpsertRequest.FromString(encode_upsert_request(["a"], None, None, [{"n": -0.0}]))
    assert str(negative_zero.vectors[0].metadata.fields["n"].number_value) == "-0.0"


@st.composite
def same_key_metadata(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Metadata with the same keys in every record (the column-by-column path), values of one kind per key."""
    kinds = {
        "str": st.text(max_size=8) | st.sampled_from(["doc-1.md", "doc-2.md"]) | st.just("x" * 200),
        "number": st.floats(allow_nan=False) | st.integers(-(2**53), 2**53) | st.just(-0.0),
        "bool": st.booleans(),
        "list": st.lists(st.sampled_from(["a", "b", "é"]) | st.text(max_size=4), max_size=3),
        "mixed": json_values_or_lists(),
    }
    names = draw(st.lists(st.text(max_size=6), min_size=0, max_size=4, unique=True))
    chosen = {name: draw(st.sampled_from(sorted(kinds))) for name in names}
    records = []
    for _ in range(draw(st.integers(1, 6))):
        fields = {name: draw(kinds[kind]) for name, kind in chosen.items()}
        if draw(st.booleans()):  # the same keys in another order
            fields = dict(reversed(list(fields.items())))
        records.append(fields)
    return records


def json_values_or_lists() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(), st.booleans(), st.text(max_size=3), st.lists(st.booleans() | st.text(max_size=2))
    )


@SETTINGS
@given(same_key_metadata(), st.booleans())
def test_upsert_with_the_same_keys_in_every_record_matches_generated(
    metadata: list[dict[str, Any]], dense: bool
) -> None:
    count = len(metadata)
    batch = {
        "ids": [f"id-{i}" for i in range(count)],
        "dense": np.arange(count * 3, dtype=np.float32).reshape(count, 3) if dense else None,
        "sparse": None,
        "metadata": metadata,
        "namespace": "ns",
    }
    for _ in range(2):  # the second pass hits the memoized entries
        assert pb.UpsertRequest.FromString(encode_upsert_request(**batch)) == oracle_upsert(batch)


def test_column_path_reports_bad_values_like_the_record_path() -> None:
    with pytest.raises(ValueError, match="does not fit in a double"):
        encode_upsert_request(["a", "b"], None, None, [{"n": 1}, {"n": 10**400}])
    with pytest.raises(TypeError, match="ids must be a str, not int"):
        encode_upsert_request(["a", 7], None, None, [{"n": 1}, {"n": 2}])  # type: ignore[list-item]


def test_new_values_repeated_in_one_batch_are_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A document's chunks share values no earlier batch had: each is encoded once, the bytes unchanged."""
    metadata = [{"source": f"new-{i // 3}.md", "tags": ["new", str(i // 3)]} for i in range(6)]
    ids = [f"r{i}" for i in range(6)]
    dense = np.ones((6, 2), dtype=np.float32)
    expected = pb.UpsertRequest(
        vectors=[pb.Vector(id=i, values=[1.0, 1.0], metadata=m) for i, m in zip(ids, metadata, strict=True)]
    ).SerializeToString()
    strings: list[str] = []
    lists: list[tuple[str, ...]] = []
    real_string, real_list = encode._KeyCode.string, encode._KeyCode.string_list

    def count_string(code: encode._KeyCode, value: str) -> bytes:
        strings.append(value)
        return real_string(code, value)

    def count_list(code: encode._KeyCode, items: tuple[str, ...]) -> bytes | None:
        lists.append(items)
        return real_list(code, items)

    monkeypatch.setattr(encode._KeyCode, "string", count_string)
    monkeypatch.setattr(encode._KeyCode, "string_list", count_list)
    monkeypatch.setattr(encode, "_KEY_CODES", {})
    wire = encode_upsert_request(ids, dense, None, metadata)
    assert pb.UpsertRequest.FromString(wire) == pb.UpsertRequest.FromString(expected)
    assert strings == ["new-0.md", "new-1.md"]
    assert lists == [("new", "0"), ("new", "1")]

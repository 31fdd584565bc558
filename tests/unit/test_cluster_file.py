"""Unit tests of cluster files and their metadata statistics (cluster_file, cluster_stats)."""

from __future__ import annotations

import hashlib
import itertools
import math
import mmap
import struct
import threading
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pinecone_rag.errors import DataLossError
from pinecone_rag.server.blobstore import BlobExistsError, LocalBlobStore
from pinecone_rag.server.cluster_file import (
    ALIGNMENT,
    CLUSTER_MAGIC,
    SECTION_NAMES,
    ClusterFile,
    compute_norms,
    write_cluster,
)
from pinecone_rag.server.cluster_stats import (
    MAX_EXACT_VALUES,
    Bloom,
    ClusterStats,
    FieldStats,
    metadata_columns,
)
from pinecone_rag.server.records import SparseVector

if TYPE_CHECKING:
    from pathlib import Path

    from pinecone_rag.server.records import Metadata

_KEYS = itertools.count()


def fresh_key() -> str:
    return f"ns/clusters/c{next(_KEYS):06d}.clu"


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Reference computations, written independently of the module under test


def reference_stats(metadata: list[Metadata | None]) -> dict[str, dict[str, Any]]:
    fields: dict[str, dict[str, Any]] = {}
    for record in metadata:
        for name, value in (record or {}).items():
            f = fields.setdefault(
                name, {"count": 0, "numbers": [], "strings": set(), "string_count": 0, "true": 0, "false": 0}
            )
            f["count"] += 1
            if isinstance(value, bool):
                f["true" if value else "false"] += 1
            elif isinstance(value, float | int):
                f["numbers"].append(float(value))
            elif isinstance(value, str):
                f["string_count"] += 1
                f["strings"].add(value)
            else:
                f["string_count"] += 1
                f["strings"].update(value)
    return fields


def check_stats(stats: ClusterStats, metadata: list[Metadata | None]) -> None:
    expected = reference_stats(metadata)
    assert stats.count == len(metadata)
    assert set(stats.fields) == set(expected)
    for name, ref in expected.items():
        got = stats.fields[name]
        assert got.count == ref["count"]
        assert got.number_count == len(ref["numbers"])
        assert got.min == (min(ref["numbers"]) if ref["numbers"] else None)
        assert got.max == (max(ref["numbers"]) if ref["numbers"] else None)
        assert got.string_count == ref["string_count"]
        assert got.true_count == ref["true"]
        assert got.false_count == ref["false"]
        if len(ref["strings"]) <= MAX_EXACT_VALUES:
            assert got.values == frozenset(ref["strings"])
            assert got.bloom is None
        else:
            assert got.values is None
            assert got.bloom is not None
        for value in ref["strings"]:
            assert got.might_contain(value)  # never a false negative


def check_columns(columns: Any, metadata: list[Metadata | None]) -> None:
    n = len(metadata)
    names = {name for record in metadata for name in (record or {})}
    assert set(columns) == names
    for name in names:
        column = columns[name]
        values = [(record or {}).get(name) for record in metadata]
        assert column.present.tolist() == [v is not None for v in values]
        numbers = [
            float(v) if isinstance(v, float | int) and not isinstance(v, bool) else None for v in values
        ]
        if all(v is None for v in numbers):
            assert column.numbers is None
        else:
            assert column.numbers.dtype == np.float64
            assert [None if math.isnan(x) else x for x in column.numbers.tolist()] == numbers
        bools = [int(v) if isinstance(v, bool) else -1 for v in values]
        if all(b == -1 for b in bools):
            assert column.bools is None
        else:
            assert column.bools.tolist() == bools
        expected_rows: dict[str, list[int]] = {}
        for row, v in enumerate(values):
            elements = [v] if isinstance(v, str) else v if isinstance(v, list) else []
            for element in sorted(set(elements)):
                expected_rows.setdefault(element, []).append(row)
        assert {k: r.tolist() for k, r in column.strings.items()} == expected_rows
        for rows in column.strings.values():
            assert rows.dtype == np.int64
            assert np.all(rows < n)


# ---------------------------------------------------------------------------------------------------------
# Strategies

FIELD_NAMES = st.sampled_from(["genre", "year", "tags", "flag", "ü-field", "x"])
METADATA_VALUE = st.one_of(
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**6), 10**6).map(float),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=4),
)
METADATA = st.one_of(st.none(), st.dictionaries(FIELD_NAMES, METADATA_VALUE, max_size=5))


@st.composite
def clusters(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(st.text(max_size=12), max_size=24, unique=True))
    n = len(ids)
    dimension = draw(st.one_of(st.none(), st.integers(0, 64)))
    dense = None
    if dimension is not None:
        # Arbitrary bit patterns (NaNs with payloads, infinities, subnormals) must come back bit-exact.
        bits = draw(hnp.arrays(np.uint32, (n, dimension)))
        dense = bits.view(np.float32)
    sparse = None
    if draw(st.booleans()):
        sparse = []
        for _ in range(n):
            nnz = draw(st.one_of(st.none(), st.integers(0, 6)))
            if nnz is None:
                sparse.append(None)
            else:
                indices = np.array(
                    draw(st.lists(st.integers(0, 2**32 - 1), min_size=nnz, max_size=nnz)), np.uint32
                )
                values = draw(hnp.arrays(np.float32, nnz, elements=st.floats(width=32, allow_nan=False)))
                sparse.append(SparseVector(indices, values))
    metadata = draw(st.lists(METADATA, min_size=n, max_size=n))
    metric = draw(st.sampled_from(["cosine", "euclidean", "dotproduct"]))
    return {"ids": ids, "dense": dense, "sparse": sparse, "metadata": metadata, "metric": metric}


def mapping_of(array: np.ndarray) -> object:
    """The object at the bottom of an array's buffer chain (an mmap for zero-copy views)."""
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    while isinstance(base, memoryview):
        base = base.obj
    return base


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cluster=clusters())
def test_round_trip(store: LocalBlobStore, cluster: dict[str, Any]) -> None:
    key = fresh_key()
    info = write_cluster(store, key, **cluster)
    ids, dense, sparse, metadata = cluster["ids"], cluster["dense"], cluster["sparse"], cluster["metadata"]
    n = len(ids)
    assert info.key == key
    assert info.count == n
    assert info.nbytes == store.size(key)
    assert info.dimension == (None if dense is None else dense.shape[1])

    with ClusterFile.open(store, key) as cluster_file:
        assert cluster_file.count == len(cluster_file) == n
        assert cluster_file.metric == cluster["metric"]
        assert cluster_file.nbytes == info.nbytes
        assert cluster_file.ids == ids
        assert [cluster_file.id_at(i) for i in range(n)] == ids
        assert all(cluster_file.row_of(record_id) == row for row, record_id in enumerate(ids))
        assert cluster_file.row_of("\x00not-an-id-" * 3) is None
        if dense is None:
            assert cluster_file.dense is None
            assert cluster_file.norms is None
            assert cluster_file.dimension is None
        else:
            got = cluster_file.dense
            assert got is not None
            assert got.shape == dense.shape
            assert got.dtype == np.float32
            assert np.array_equal(got.view(np.uint32), dense.view(np.uint32))
            assert got.flags.c_contiguous
            assert not got.flags.writeable
            assert got.ctypes.data % ALIGNMENT == 0
            assert isinstance(mapping_of(got), mmap.mmap)
            assert cluster_file.dimension == dense.shape[1]
            norms = cluster_file.norms
            assert norms is not None
            assert norms.shape == (n,)
            assert np.array_equal(norms, compute_norms(dense, cluster["metric"]), equal_nan=True)
        if sparse is None or all(vector is None for vector in sparse):
            assert cluster_file.sparse is None
            assert all(cluster_file.sparse_row(i) is None for i in range(n))
        else:
            for row, vector in enumerate(sparse):
                got_vector = cluster_file.sparse_row(row)
                if vector is None:
                    assert got_vector is None
                else:
                    assert got_vector is not None
                    assert got_vector.indices.dtype == np.uint32
                    assert got_vector.values.dtype == np.float32
                    assert np.array_equal(got_vector.indices, vector.indices)
                    assert np.array_equal(got_vector.values.view(np.uint32), vector.values.view(np.uint32))
        assert cluster_file.metadata == metadata
        check_stats(cluster_file.stats, metadata)
        assert cluster_file.stats == info.stats
        check_columns(cluster_file.metadata_columns(), metadata)
        for row in range(n):
            record = cluster_file.record(row)
            assert record.id == ids[row]
            assert record.metadata == metadata[row]


def test_norms_per_metric() -> None:
    dense = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]], dtype=np.float32)
    assert compute_norms(dense, "cosine").tolist() == [5.0, 0.0, pytest.approx(math.sqrt(2))]
    assert compute_norms(dense, "euclidean").tolist() == [25.0, 0.0, 2.0]
    assert compute_norms(dense, "dotproduct").tolist() == [0.0, 0.0, 0.0]
    assert compute_norms(dense, "cosine").dtype == np.float32


def test_float64_input_is_stored_as_float32(store: LocalBlobStore) -> None:
    dense = np.random.default_rng(0).standard_normal((7, 5))
    write_cluster(
        store, "f64", ids=list("abcdefg"), dense=dense, sparse=None, metadata=[None] * 7, metric="cosine"
    )
    with ClusterFile.open(store, "f64") as cluster_file:
        assert cluster_file.dense is not None
        assert np.array_equal(cluster_file.dense, dense.astype(np.float32))


def test_large_cluster_is_a_zero_copy_view(store: LocalBlobStore) -> None:
    rng = np.random.default_rng(1)
    dense = rng.standard_normal((3000, 96)).astype(np.float32)
    ids = [f"id-{i}" for i in range(3000)]
    write_cluster(
        store, "big", ids=ids, dense=dense, sparse=None, metadata=[None] * 3000, metric="dotproduct"
    )
    cluster_file = ClusterFile.open(store, "big")
    view = cluster_file.dense
    assert view is not None
    assert isinstance(mapping_of(view), mmap.mmap)
    assert not view.flags.owndata
    scores = view @ dense[0]
    assert int(np.argmax(scores)) == 0
    cluster_file.close()
    assert float(view[2999, 95]) == float(dense[2999, 95])  # the mapping outlives close() while referenced


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"ids": ["a", "a"]}, "unique"),
        ({"metric": "hamming"}, "metric"),
        ({"metadata": [None]}, "different number"),
        ({"sparse": [None]}, "different number"),
        ({"dense": np.zeros((3, 2), np.float32)}, "shape"),
        ({"dense": np.zeros(2, np.float32)}, "shape"),
    ],
)
def test_write_rejects_inconsistent_input(
    store: LocalBlobStore, kwargs: dict[str, Any], problem: str
) -> None:
    args: dict[str, Any] = {
        "ids": ["a", "b"],
        "dense": np.zeros((2, 2), np.float32),
        "sparse": None,
        "metadata": [None, None],
        "metric": "cosine",
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=problem):
        write_cluster(store, "bad", **args)
    assert not store.exists("bad")


def test_write_refuses_an_existing_key(store: LocalBlobStore) -> None:
    args: dict[str, Any] = {
        "ids": ["a"],
        "dense": None,
        "sparse": None,
        "metadata": [None],
        "metric": "cosine",
    }
    write_cluster(store, "k", **args)
    with pytest.raises(BlobExistsError):
        write_cluster(store, "k", **args)


# ---------------------------------------------------------------------------------------------------------
# Corruption


def full_cluster(store: LocalBlobStore, key: str) -> None:
    rng = np.random.default_rng(7)
    n = 40
    write_cluster(
        store,
        key,
        ids=[f"rec-{i}-ü" for i in range(n)],
        dense=rng.standard_normal((n, 16)).astype(np.float32),
        sparse=[
            None
            if i % 3 == 0
            else SparseVector(np.arange(i % 5, dtype=np.uint32), np.ones(i % 5, np.float32))
            for i in range(n)
        ],
        metadata=[{"genre": f"g{i % 4}", "year": float(1990 + i), "flag": i % 2 == 0} for i in range(n)],
        metric="cosine",
    )


def section_table(data: bytes) -> dict[str, tuple[int, int]]:
    """Parse the header by the layout documented in FORMAT.md."""
    magic, version, _flags, _metric, _count, _dim, sections, length = struct.unpack_from("<8sHHB3xQIIQ", data)
    assert magic == CLUSTER_MAGIC
    assert version == 1
    assert length == len(data)
    table: dict[str, tuple[int, int]] = {}
    for i in range(sections):
        kind, _, crc, offset, size = struct.unpack_from("<HHIQQ", data, 40 + 24 * i)
        assert offset % ALIGNMENT == 0
        assert zlib.crc32(data[offset : offset + size]) == crc
        table[SECTION_NAMES[kind]] = (offset, size)
    (header_crc,) = struct.unpack_from("<I", data, 40 + 24 * sections)
    assert zlib.crc32(data[: 40 + 24 * sections]) == header_crc
    return table


def rewrite(store: LocalBlobStore, key: str, data: bytes) -> None:
    store.delete(key)
    store.put(key, data)


def test_layout_matches_the_documented_format(store: LocalBlobStore) -> None:
    full_cluster(store, "c")
    table = section_table(store.get("c"))
    assert set(table) == {"ids", "dense", "norms", "sparse", "metadata", "stats"}
    assert table["dense"][1] == 40 * 16 * 4
    assert table["norms"][1] == 40 * 4


@pytest.mark.parametrize("section", ["ids", "dense", "norms", "sparse", "metadata", "stats"])
@pytest.mark.parametrize("where", [0.0, 0.5, 1.0])
def test_a_flipped_byte_in_any_section_is_detected(store: LocalBlobStore, section: str, where: float) -> None:
    full_cluster(store, "c")
    data = bytearray(store.get("c"))
    offset, size = section_table(bytes(data))[section]
    data[offset + min(size - 1, int(size * where))] ^= 0x40
    rewrite(store, "c", bytes(data))
    with pytest.raises(DataLossError, match=f"'c'.*section {section} failed its CRC"):
        ClusterFile.open(store, "c")


def test_verify_false_skips_section_crcs(store: LocalBlobStore) -> None:
    full_cluster(store, "c")
    data = bytearray(store.get("c"))
    offset, _ = section_table(bytes(data))["dense"]
    data[offset] ^= 0x01
    rewrite(store, "c", bytes(data))
    with ClusterFile.open(store, "c", verify=False) as cluster_file:
        assert cluster_file.count == 40


@pytest.mark.parametrize("position", [0, 9, 13, 17, 30, 45, 70])
def test_a_flipped_header_byte_is_detected(store: LocalBlobStore, position: int) -> None:
    full_cluster(store, "c")
    data = bytearray(store.get("c"))
    data[position] ^= 0x04
    rewrite(store, "c", bytes(data))
    with pytest.raises(DataLossError, match="'c'"):
        ClusterFile.open(store, "c")


@pytest.mark.parametrize("cut", [0, 10, 100, -1])
def test_truncation_is_detected(store: LocalBlobStore, cut: int) -> None:
    full_cluster(store, "c")
    data = store.get("c")
    rewrite(store, "c", data[:cut])
    with pytest.raises(DataLossError):
        ClusterFile.open(store, "c", verify=False)


def test_extension_is_detected(store: LocalBlobStore) -> None:
    full_cluster(store, "c")
    rewrite(store, "c", store.get("c") + b"\x00")
    with pytest.raises(DataLossError, match="bytes"):
        ClusterFile.open(store, "c")


def test_an_unknown_format_version_is_refused(store: LocalBlobStore) -> None:
    full_cluster(store, "c")
    data = bytearray(store.get("c"))
    sections = struct.unpack_from("<I", data, 28)[0]
    struct.pack_into("<H", data, 8, 99)
    struct.pack_into("<I", data, 40 + 24 * sections, zlib.crc32(bytes(data[: 40 + 24 * sections])))
    rewrite(store, "c", bytes(data))
    with pytest.raises(DataLossError, match="format version 99"):
        ClusterFile.open(store, "c")


def test_a_missing_file_is_data_loss(store: LocalBlobStore) -> None:
    with pytest.raises(DataLossError, match="missing"):
        ClusterFile.open(store, "not/there")


def test_lazy_decoding_is_thread_safe(store: LocalBlobStore) -> None:
    full_cluster(store, "c")
    cluster_file = ClusterFile.open(store, "c")
    results: list[tuple[int, int, int, int]] = []
    barrier = threading.Barrier(4)

    def read() -> None:
        barrier.wait()
        results.append(
            (
                id(cluster_file.ids),
                id(cluster_file.metadata),
                id(cluster_file.stats),
                id(cluster_file.metadata_columns()),
            )
        )

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1


# ---------------------------------------------------------------------------------------------------------
# Statistics and columns


def test_many_distinct_strings_use_a_bloom_filter() -> None:
    metadata: list[Metadata | None] = [
        {"doc": f"document-{i}", "tags": [f"t{i}", f"t{i + 1}"], "small": f"s{i % 3}"} for i in range(500)
    ]
    stats = ClusterStats.compute(metadata)
    doc = stats.fields["doc"]
    assert doc.values is None
    assert doc.bloom is not None
    assert doc.bloom.bits >= 10 * 500
    assert all(doc.might_contain(f"document-{i}") for i in range(500))
    false_positives = sum(doc.might_contain(f"other-{i}") for i in range(2000))
    assert false_positives < 100  # about 1% expected
    assert stats.fields["tags"].values is None
    assert all(stats.fields["tags"].might_contain(f"t{i}") for i in range(501))
    assert stats.fields["small"].values == {"s0", "s1", "s2"}
    assert not stats.fields["small"].might_contain("s3")
    check_stats(stats, metadata)


def test_exactly_64_values_stay_exact() -> None:
    metadata: list[Metadata | None] = [{"f": f"v{i}"} for i in range(MAX_EXACT_VALUES)]
    assert ClusterStats.compute(metadata).fields["f"].values == {f"v{i}" for i in range(MAX_EXACT_VALUES)}
    metadata.append({"f": "one-more"})
    assert ClusterStats.compute(metadata).fields["f"].values is None


def test_bloom_hashing_follows_the_documented_definition() -> None:
    bloom = Bloom.build(["alpha"])
    assert bloom.bits == 1024
    assert bloom.hashes == 7
    words = struct.unpack("<8I", hashlib.blake2b(b"alpha", digest_size=32).digest())
    expected = bytearray(128)
    for word in words[:7]:
        position = word % 1024
        expected[position // 8] |= 1 << (position % 8)
    assert bloom.data == bytes(expected)
    assert bloom.might_contain("alpha")


def test_bloom_validation() -> None:
    with pytest.raises(ValueError, match="bits"):
        Bloom(1000, 4, bytes(125))
    with pytest.raises(ValueError, match="hash"):
        Bloom(1024, 9, bytes(128))
    with pytest.raises(ValueError, match="malformed"):
        Bloom.from_json({"bits": 1024})


def test_stats_json_round_trip() -> None:
    metadata: list[Metadata | None] = [
        {"n": 1.5, "s": "x", "b": True, "l": ["p", "q"]},
        {"n": -2.25, "s": "y", "b": False},
        None,
        {"n": "mixed", "b": True, "big": 1e300},
        *({"id": f"i{i}"} for i in range(100)),
    ]
    stats = ClusterStats.compute(metadata)
    assert ClusterStats.from_json(stats.to_json()) == stats
    n = stats.fields["n"]
    assert (n.count, n.number_count, n.min, n.max, n.string_count) == (3, 2, -2.25, 1.5, 1)
    assert (stats.fields["b"].true_count, stats.fields["b"].false_count) == (2, 1)
    assert stats.fields["big"].max == 1e300
    with pytest.raises(ValueError, match="malformed"):
        ClusterStats.from_json({"count": 1})
    with pytest.raises(ValueError, match="malformed"):
        FieldStats.from_json({"count": 1})


def test_metadata_columns_filter_without_python_loops() -> None:
    metadata: list[Metadata | None] = [
        {"year": 2001.0, "genre": "drama", "flag": True},
        {"year": 1999.0, "genre": ["drama", "comedy"]},
        None,
        {"year": "unknown", "flag": False},
        {"genre": "comedy", "flag": True},
    ]
    columns = metadata_columns(metadata)
    year = columns["year"]
    assert year.numbers is not None
    assert np.flatnonzero(year.numbers >= 2000).tolist() == [0]  # NaN compares false
    assert year.strings["unknown"].tolist() == [3]
    assert year.present.tolist() == [True, True, False, True, False]
    genre = columns["genre"]
    assert genre.numbers is None
    assert genre.bools is None
    assert genre.strings["drama"].tolist() == [0, 1]
    assert genre.strings["comedy"].tolist() == [1, 4]
    assert genre.strings.rows("comedy").tolist() == [1, 4]
    assert genre.strings.rows("thriller").tolist() == []
    assert "thriller" not in genre.strings
    assert sorted(genre.strings) == ["comedy", "drama"]
    flag = columns["flag"]
    assert flag.bools is not None
    assert np.flatnonzero(flag.bools == 1).tolist() == [0, 4]
    assert np.flatnonzero(flag.bools == 0).tolist() == [3]
    check_columns(columns, metadata)

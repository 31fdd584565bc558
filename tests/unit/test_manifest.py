"""Unit tests of manifests, the CURRENT pointer, centroid blobs and garbage collection (server.manifest)."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pytest

from pinecone_rag.errors import DataLossError
from pinecone_rag.server import manifest as mf
from pinecone_rag.server.blobstore import BlobExistsError, LocalBlobStore
from pinecone_rag.server.cluster_file import ClusterFile, write_cluster
from pinecone_rag.server.manifest import (
    ClusterRef,
    Manifest,
    centroids_key,
    cluster_key,
    current_key,
    garbage_collect,
    load_current,
    manifest_key,
    publish_manifest,
    read_centroids,
    write_centroids,
)

if TYPE_CHECKING:
    from pathlib import Path

PREFIX = "idx/ns-a"


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path)


def write_clusters(
    store: LocalBlobStore, version: int, cluster_ids: list[int], prefix: str = PREFIX
) -> list[ClusterRef]:
    refs = []
    for row, cluster_id in enumerate(cluster_ids):
        key = cluster_key(prefix, cluster_id, version)
        ids = [f"v{version}-c{cluster_id}-{i}" for i in range(3)]
        dense = np.full((3, 4), cluster_id, dtype=np.float32)
        write_cluster(store, key, ids=ids, dense=dense, sparse=None, metadata=[None] * 3, metric="cosine")
        refs.append(ClusterRef(cluster_id, key, 3, row))
    return refs


def build(
    store: LocalBlobStore,
    version: int,
    lsn: int,
    refs: list[ClusterRef],
    prefix: str = PREFIX,
) -> Manifest:
    key = centroids_key(prefix, version)
    write_centroids(store, key, np.arange(len(refs) * 4, dtype=np.float32).reshape(len(refs), 4))
    return Manifest(
        version=version,
        indexed_lsn=lsn,
        dimension=4,
        metric="cosine",
        record_count=sum(ref.count for ref in refs),
        centroids_key=key,
        clusters=tuple(refs),
    )


# ---------------------------------------------------------------------------------------------------------
# Manifest values and encoding


def sample_manifest(**changes: Any) -> Manifest:
    fields: dict[str, Any] = {
        "version": 3,
        "indexed_lsn": 1234,
        "dimension": 8,
        "metric": "euclidean",
        "record_count": 7,
        "centroids_key": "p/centroids-00000000000000000003.f32",
        "clusters": (ClusterRef(0, "p/clusters/a", 3, 0), ClusterRef(5, "p/clusters/b", 4, 1)),
    }
    fields.update(changes)
    return Manifest(**fields)


def test_manifest_json_round_trip() -> None:
    for manifest in (
        sample_manifest(),
        sample_manifest(
            dimension=None, metric="dotproduct", centroids_key=None, clusters=(ClusterRef(0, "p/x", 7, None),)
        ),
        sample_manifest(clusters=(), record_count=0, centroids_key=None),
    ):
        assert Manifest.from_json(manifest.to_json()) == manifest
        assert mf.decode_manifest(mf.encode_manifest(manifest)) == manifest


def test_manifest_file_is_two_json_lines() -> None:
    data = mf.encode_manifest(sample_manifest())
    header_line, body, tail = data.split(b"\n")
    assert tail == b""
    header = orjson.loads(header_line)
    assert header == {"magic": "PRAGMAN", "version": 1, "length": len(body), "crc32": zlib.crc32(body)}
    assert orjson.loads(body)["indexed_lsn"] == 1234


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"version": 0}, "version"),
        ({"indexed_lsn": -1}, "indexed_lsn"),
        ({"metric": "manhattan"}, "metric"),
        ({"dimension": -1}, "dimension"),
        ({"clusters": (ClusterRef(1, "p/a", 1, 0), ClusterRef(1, "p/b", 1, 1))}, "ids must be unique"),
        ({"clusters": (ClusterRef(1, "p/a", 1, 0), ClusterRef(2, "p/a", 1, 1))}, "keys must be unique"),
        ({"clusters": (ClusterRef(1, "p/a", -1, 0),)}, "negative"),
        ({"centroids_key": None}, "no centroid blob"),
        ({"clusters": (ClusterRef(1, "../escape", 1, 0),)}, "blob key"),
    ],
)
def test_manifest_validation(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        sample_manifest(**changes)


def test_every_damaged_manifest_byte_is_detected() -> None:
    data = mf.encode_manifest(sample_manifest())
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        try:
            decoded = mf.decode_manifest(bytes(damaged))
        except DataLossError:
            continue
        # A flip that leaves the JSON meaning unchanged (e.g. key order is irrelevant) would be harmless,
        # but the CRC covers every body byte and the header is checked field by field.
        pytest.fail(f"flip at byte {position} went unnoticed: {decoded}")
    for cut in (0, 10, len(data) - 1, len(data) - 5):
        with pytest.raises(DataLossError):
            mf.decode_manifest(data[:cut])
    with pytest.raises(DataLossError):
        mf.decode_manifest(data + b"x")


def test_key_helpers() -> None:
    manifest = sample_manifest()
    assert manifest_key("p", manifest) == "p/manifest-00000000000000001234-00000000000000000003.json"
    assert current_key("p") == "p/CURRENT"
    assert centroids_key("p", 9) == "p/centroids-00000000000000000009.f32"
    assert cluster_key("p", 12, 9) == "p/clusters/0000000012-00000000000000000009.clu"
    with pytest.raises(ValueError, match="blob key"):
        current_key("../up")


# ---------------------------------------------------------------------------------------------------------
# Centroids


@pytest.mark.parametrize("shape", [(5, 8), (0, 8), (3, 0), (1, 1)])
def test_centroids_round_trip(store: LocalBlobStore, shape: tuple[int, int]) -> None:
    bits = np.random.default_rng(3).integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32)
    centroids = bits.view(np.float32)
    write_centroids(store, "c", centroids)
    back = read_centroids(store, "c")
    assert back.shape == shape
    assert back.dtype == np.float32
    assert np.array_equal(back.view(np.uint32), bits)
    assert back.flags.c_contiguous
    assert not back.flags.writeable
    assert len(store.get("c")) == 64 + 4 * shape[0] * shape[1]
    with pytest.raises(BlobExistsError):
        write_centroids(store, "c", centroids)


def test_centroids_must_be_a_matrix(store: LocalBlobStore) -> None:
    with pytest.raises(ValueError, match="matrix"):
        write_centroids(store, "c", np.zeros(4, np.float32))


def test_damaged_centroids_are_detected(store: LocalBlobStore) -> None:
    write_centroids(store, "c", np.ones((4, 6), np.float32))
    data = store.get("c")
    for position in [*range(36), 64, 70, len(data) - 1]:
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        store.delete("c")
        store.put("c", bytes(damaged))
        with pytest.raises(DataLossError, match="'c'"):
            read_centroids(store, "c")
    store.delete("c")
    store.put("c", data[:-4])
    with pytest.raises(DataLossError, match="length"):
        read_centroids(store, "c")
    with pytest.raises(DataLossError, match="missing"):
        read_centroids(store, "nothing")


# ---------------------------------------------------------------------------------------------------------
# Publishing and the CURRENT pointer


def test_publish_and_load(store: LocalBlobStore) -> None:
    assert load_current(store, PREFIX) is None
    first = build(store, 1, 10, write_clusters(store, 1, [0, 1]))
    key = publish_manifest(store, PREFIX, first)
    assert key == manifest_key(PREFIX, first)
    assert load_current(store, PREFIX) == first
    pointer = orjson.loads(store.read_pointer(current_key(PREFIX)) or b"")
    assert pointer == {"magic": "PRAGCUR", "version": 1, "manifest": key, "crc32": zlib.crc32(store.get(key))}
    second = build(store, 2, 20, [*first.clusters[:1], *write_clusters(store, 2, [1])])
    publish_manifest(store, PREFIX, second)
    assert load_current(store, PREFIX) == second
    centroids = read_centroids(store, second.centroids_key or "")
    assert centroids.shape == (2, 4)
    for ref in second.clusters:
        with ClusterFile.open(store, ref.key) as cluster_file:
            assert cluster_file.count == ref.count


def test_publish_requires_progress_and_existing_objects(store: LocalBlobStore) -> None:
    first = build(store, 2, 10, write_clusters(store, 2, [0]))
    publish_manifest(store, PREFIX, first)
    with pytest.raises(ValueError, match="does not exceed"):
        publish_manifest(store, PREFIX, first)
    with pytest.raises(ValueError, match="below current"):
        publish_manifest(store, PREFIX, Manifest(3, 9, 4, "cosine", 3, first.centroids_key, first.clusters))
    ghost = (*first.clusters, ClusterRef(9, cluster_key(PREFIX, 9, 3), 1, None))
    with pytest.raises(ValueError, match="do not exist"):
        publish_manifest(store, PREFIX, Manifest(3, 11, 4, "cosine", 4, first.centroids_key, ghost))
    assert load_current(store, PREFIX) == first


def test_a_crash_before_the_pointer_flips_keeps_the_old_manifest(store: LocalBlobStore) -> None:
    first = build(store, 1, 10, write_clusters(store, 1, [0]))
    publish_manifest(store, PREFIX, first)
    # Crash 1: the new cluster files and the new manifest are written, CURRENT is not flipped.
    second = build(store, 2, 20, write_clusters(store, 2, [0, 1]))
    store.put(manifest_key(PREFIX, second), mf.encode_manifest(second))
    # Crash 2: a half-written object is left in the store's temporary directory.
    (store.root / ".tmp" / "0123.tmp").write_bytes(mf.encode_manifest(second)[:20])
    reopened = LocalBlobStore(store.root)
    assert load_current(reopened, PREFIX) == first
    assert not (store.root / ".tmp" / "0123.tmp").exists()
    # The retried publish of the same version replaces the orphaned manifest.
    retried = Manifest(2, 21, 4, "cosine", 6, second.centroids_key, second.clusters)
    publish_manifest(reopened, PREFIX, retried)
    assert load_current(reopened, PREFIX) == retried


def test_a_failed_pointer_flip_keeps_the_old_manifest(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(store, 1, 10, write_clusters(store, 1, [0]))
    publish_manifest(store, PREFIX, first)
    second = build(store, 2, 20, write_clusters(store, 2, [0]))

    def crash(pointer_key: str, value: bytes) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(store, "publish", crash)
    with pytest.raises(OSError, match="power lost"):
        publish_manifest(store, PREFIX, second)
    assert load_current(store, PREFIX) == first


def test_damaged_pointer_or_manifest_is_data_loss(store: LocalBlobStore) -> None:
    first = build(store, 1, 10, write_clusters(store, 1, [0]))
    key = publish_manifest(store, PREFIX, first)
    data = store.get(key)

    store.delete(key)
    with pytest.raises(DataLossError, match="missing"):
        load_current(store, PREFIX)

    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0x01
    store.put(key, bytes(damaged))
    with pytest.raises(DataLossError):
        load_current(store, PREFIX)

    # A valid manifest that is not the one CURRENT recorded (CRC of the whole file differs).
    store.delete(key)
    store.put(key, mf.encode_manifest(Manifest(1, 10, 4, "cosine", 99, first.centroids_key, first.clusters)))
    with pytest.raises(DataLossError, match="CRC that CURRENT recorded"):
        load_current(store, PREFIX)

    store.delete(key)
    store.put(key, data)
    assert load_current(store, PREFIX) == first
    for garbage in (b"", b"{", b'{"magic":"PRAGCUR","version":2}', b'{"magic":"X"}', b"[1]"):
        store.publish(current_key(PREFIX), garbage)
        with pytest.raises(DataLossError, match="CURRENT"):
            load_current(store, PREFIX)
    store.publish(
        current_key(PREFIX), orjson.dumps({"magic": "PRAGCUR", "version": 1, "manifest": "../x", "crc32": 0})
    )
    with pytest.raises(DataLossError, match="CURRENT"):
        load_current(store, PREFIX)


# ---------------------------------------------------------------------------------------------------------
# Garbage collection


def test_garbage_collection_keeps_what_the_current_manifest_references(store: LocalBlobStore) -> None:
    v1 = build(store, 1, 10, write_clusters(store, 1, [0, 1, 2]))
    publish_manifest(store, PREFIX, v1)
    # Version 2 rewrites cluster 1 and drops cluster 2; cluster 0 carries over unchanged.
    v2_refs = [v1.clusters[0], *write_clusters(store, 2, [1])]
    v2 = build(store, 2, 20, v2_refs)
    publish_manifest(store, PREFIX, v2)
    # A build of version 3 is in progress, a foreign object and a sibling namespace share the store.
    in_progress = write_clusters(store, 3, [1])
    store.put(f"{PREFIX}/notes.txt", b"not ours")
    sibling = build(store, 1, 5, write_clusters(store, 1, [0], prefix="idx/ns-ab"), prefix="idx/ns-ab")
    publish_manifest(store, "idx/ns-ab", sibling)
    before = set(store.list())

    with pytest.raises(ValueError, match="current manifest"):
        garbage_collect(store, PREFIX, v1)
    deleted = garbage_collect(store, PREFIX, v2)
    assert deleted == sorted(
        [
            manifest_key(PREFIX, v1),
            v1.centroids_key or "",
            v1.clusters[1].key,
            v1.clusters[2].key,
        ]
    )
    assert set(store.list()) == before - set(deleted)
    assert load_current(store, PREFIX) == v2
    for key in v2.referenced_keys():
        assert store.exists(key)
    assert store.exists(in_progress[0].key)
    assert store.exists(f"{PREFIX}/notes.txt")
    assert load_current(store, "idx/ns-ab") == sibling
    assert garbage_collect(store, PREFIX, v2) == []

    # At open, with no builder running, leftovers of a crashed build go too.
    assert garbage_collect(store, PREFIX, v2, include_newer=True) == [in_progress[0].key]
    assert load_current(store, PREFIX) == v2


def test_garbage_collection_without_a_published_manifest(store: LocalBlobStore) -> None:
    with pytest.raises(ValueError, match="current manifest"):
        garbage_collect(store, PREFIX, sample_manifest())

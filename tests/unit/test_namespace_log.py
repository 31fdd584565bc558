"""Unit tests of a namespace on top of its write-ahead log: replay, torn tails, bad records, group commit."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from pinecone_rag.errors import DataLossError
from pinecone_rag.server import wal
from pinecone_rag.server.blobstore import LocalBlobStore
from pinecone_rag.server.cluster_cache import ClusterCache
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.namespace import Namespace, NamespaceInfo
from pinecone_rag.server.ops import DeleteIdsOp, UpsertOp, encode_op
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    from pathlib import Path

SPEC = IndexSpec(3, "dotproduct", "dense")


def storage(directory: Path) -> dict[str, Any]:
    """The blob store, file cache and config a namespace in ``directory`` needs."""
    store = LocalBlobStore(directory.parent / "blobs")
    return {"store": store, "cache": ClusterCache(store, 1 << 30), "config": EngineConfig()}


def open_namespace(tmp_path: Path, name: str = "", *, create: bool = False) -> Namespace:
    """The test's namespace in ``tmp_path / "ns"``, created or reopened."""
    directory = tmp_path / "ns"
    if create:
        return Namespace.create(directory, NamespaceInfo(name), SPEC, **storage(directory))
    return Namespace(directory, NamespaceInfo(name), SPEC, **storage(directory))


def five_records_logged(tmp_path: Path) -> Path:
    """A closed namespace holding ``r0``..``r4`` (LSNs 1-5) in one WAL segment; that segment."""
    namespace = open_namespace(tmp_path, create=True)
    for i in range(5):
        namespace.write(upsert([f"r{i}"], i))
    namespace.close()
    (segment,) = wal.iter_segment_paths(tmp_path / "ns" / "wal")
    return segment


def upsert(ids: list[str], start: float) -> UpsertOp:
    dense = (np.arange(len(ids) * 3, dtype=np.float32).reshape(len(ids), 3) + start).astype(np.float32)
    return UpsertOp(UpsertBatch(ids, dense, [None] * len(ids), [{"n": float(i)} for i in range(len(ids))]))


def test_namespace_replays_its_log(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path, "docs", create=True)
    results = [namespace.write(upsert([f"a{i}", f"b{i}"], i)) for i in range(20)]
    results.append(namespace.write(DeleteIdsOp(["a3", "b4", "missing"])))
    assert [r.lsn for r in results] == list(range(1, 22))
    assert results[-1].count == 2
    before = {rid: namespace.state.get(rid) for rid in namespace.state.sorted_ids()}
    namespace.close()

    reopened = open_namespace(tmp_path, "docs")
    try:
        assert reopened.applied_lsn == 21
        assert reopened.state.sorted_ids() == sorted(before)
        for rid, record in before.items():
            got = reopened.state.get(rid)
            assert got is not None
            assert record is not None
            assert got.values is not None
            assert record.values is not None
            assert got.values.tobytes() == record.values.tobytes()
            assert got.metadata == record.metadata
        assert reopened.write(DeleteIdsOp(["a0"])).lsn == 22
    finally:
        reopened.close()


def test_namespace_resumes_after_a_torn_tail(tmp_path: Path) -> None:
    segment = five_records_logged(tmp_path)
    with segment.open("r+b") as handle:
        handle.truncate(segment.stat().st_size - 3)

    reopened = open_namespace(tmp_path)
    try:
        assert reopened.applied_lsn == 4
        assert reopened.state.sorted_ids() == ["r0", "r1", "r2", "r3"]
        assert reopened.write(upsert(["again"], 9)).lsn == 5
    finally:
        reopened.close()
    third = open_namespace(tmp_path)
    try:
        assert third.state.sorted_ids() == ["again", "r0", "r1", "r2", "r3"]
    finally:
        third.close()


def test_namespace_refuses_to_open_an_undecodable_record(tmp_path: Path) -> None:
    """A record whose checksum holds but whose payload does not decode is corruption, never skipped."""
    namespace = open_namespace(tmp_path, create=True)
    namespace.write(upsert(["a"], 0))
    namespace.close()
    (segment,) = wal.iter_segment_paths(tmp_path / "ns" / "wal")
    bogus = bytearray(encode_op(DeleteIdsOp(["a"])))
    bogus[0] = 200  # an operation code this build does not know
    with segment.open("ab") as handle:
        handle.write(wal.encode_record(2, bytes(bogus)))
    with pytest.raises(DataLossError):
        open_namespace(tmp_path)


def test_namespace_concurrent_writers_share_commits(tmp_path: Path) -> None:
    namespace = open_namespace(tmp_path, create=True)
    lsns: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(25):
                result = namespace.write(upsert([f"w{worker}-{i}"], i))
                # Read-your-writes: once acknowledged, the record is visible.
                with namespace.reading() as state:
                    assert state.get(f"w{worker}-{i}") is not None
                with lock:
                    lsns.append(result.lsn)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors
        assert sorted(lsns) == list(range(1, 201))
        assert len(namespace.state) == 200
        assert namespace.applied_lsn == 200
    finally:
        namespace.close()
    assert [r.lsn for r in wal.recover(tmp_path / "ns" / "wal")] == list(range(1, 201))


def test_namespace_from_a_version_1_log_reopens_and_goes_on(tmp_path: Path) -> None:
    """A namespace written by a build before WAL format version 2 (CRC-32 records) upgrades in place."""
    segment = five_records_logged(tmp_path)
    records = wal.recover(tmp_path / "ns" / "wal")
    old = wal.encode_segment_header(int(segment.stem), 1)
    segment.write_bytes(old + b"".join(wal.encode_record(r.lsn, r.payload, 1) for r in records))

    reopened = open_namespace(tmp_path)
    try:
        assert reopened.state.sorted_ids() == ["r0", "r1", "r2", "r3", "r4"]
        assert reopened.write(upsert(["new"], 9)).lsn == 6
    finally:
        reopened.close()
    third = open_namespace(tmp_path)
    try:
        assert third.state.sorted_ids() == ["new", "r0", "r1", "r2", "r3", "r4"]
        assert third.applied_lsn == 6
    finally:
        third.close()

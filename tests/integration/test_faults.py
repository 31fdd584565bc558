"""Faults of the local engine's storage: damaged WAL records, damaged namespaces, a full disk.

Every test runs a real server on loopback (port 0) and talks to it over REST and raw gRPC. Damage is
done to the files on disk between runs; a full disk is either a real 4 MiB tmpfs or an ``OSError``
injected at the WAL's ``write``/``fsync`` (and the blob store's ``fsync``) of an in-process server.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import numpy as np
import pytest

from pinecone_rag.server import LocalServer, wal
from pinecone_rag.server.control_db import DEFAULT_PROJECT
from pinecone_rag.server.engine import namespace_directory_name
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.ops import DeleteIdsOp, encode_op
from pinecone_rag.wire import messages as pb

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pinecone_rag.server.engine import IndexEngine

HEADERS = {"Api-Key": "faults-key", "X-Pinecone-Api-Version": "2025-10"}
SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
DIM = 8
DATA_LOSS, UNAVAILABLE = 15, 14


# --- helpers ------------------------------------------------------------------------------------------------


def http(base_url: str) -> httpx.Client:
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    return httpx.Client(base_url=base_url, headers=HEADERS, transport=transport, timeout=30)


def create_index(control: httpx.Client, name: str) -> str:
    """Create a dotproduct index; returns its data-plane URL."""
    body = {"name": name, "dimension": DIM, "metric": "dotproduct", "spec": SERVERLESS}
    response = control.post("/indexes", json=body)
    assert response.status_code == 201, response.text
    host: str = response.json()["host"]
    return host if host.startswith("http") else f"http://{host}"


def index_url(control: httpx.Client, name: str) -> str:
    response = control.get(f"/indexes/{name}")
    assert response.status_code == 200, response.text
    host: str = response.json()["host"]
    return host if host.startswith("http") else f"http://{host}"


def grpc_target(url: str) -> str:
    return url.removeprefix("http://")


def vector(record_id: str) -> list[float]:
    """Deterministic values for an id, so any copy can be checked bit for bit."""
    seed = zlib.crc32(record_id.encode())
    values: list[float] = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32).tolist()
    return values


def upsert(data: httpx.Client, namespace: str, ids: list[str]) -> httpx.Response:
    vectors = [{"id": rid, "values": vector(rid), "metadata": {"id": rid}} for rid in ids]
    return data.post("/vectors/upsert", json={"vectors": vectors, "namespace": namespace})


def upsert_ok(data: httpx.Client, namespace: str, ids: list[str]) -> int:
    """Upsert and return the write's LSN."""
    response = upsert(data, namespace, ids)
    assert response.status_code == 200, response.text
    return int(response.headers["x-pinecone-request-lsn"])


def fetch(data: httpx.Client, namespace: str, ids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for start in range(0, len(ids), 200):
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("ids", rid) for rid in ids[start : start + 200]
        ]
        params.append(("namespace", namespace))
        response = data.get("/vectors/fetch", params=params)
        assert response.status_code == 200, response.text
        found.update(response.json()["vectors"])
    return found


def assert_exactly(data: httpx.Client, namespace: str, present: set[str], absent: set[str]) -> None:
    """``present`` is stored with its exact values and nothing of ``absent`` is."""
    found = fetch(data, namespace, sorted(present | absent))
    assert set(found) == present
    for rid, got in found.items():
        assert (
            np.asarray(got["values"], dtype=np.float32).tobytes()
            == np.asarray(vector(rid), dtype=np.float32).tobytes()
        ), rid


def grpc_call(target: str, method: str, request: Any) -> Any:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            f"/VectorService/{method}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=pb.METHODS[method][1].FromString,
        )
        return call(request, metadata=(("api-key", HEADERS["Api-Key"]),), timeout=30)


def grpc_error(target: str, method: str, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        grpc_call(target, method, request)
    return caught.value


def engine_of(server: LocalServer, index: str) -> IndexEngine:
    assert server.manager is not None
    return server.manager.get(DEFAULT_PROJECT, index).engine


def namespace_dir(data_dir: Path, namespace: str) -> Path:
    (found,) = (data_dir / "indexes").glob(f"*/namespaces/{namespace_directory_name(namespace)}")
    return found


def blob_dir(data_dir: Path, namespace: str) -> Path:
    return namespace_dir(data_dir, namespace).parent.parent / "blobs" / namespace_directory_name(namespace)


def frames(segment: Path) -> dict[int, tuple[int, int]]:
    """LSN -> (start, end) of each record of an undamaged segment."""
    data = segment.read_bytes()
    offset, out = wal.SEGMENT_HEADER_SIZE, {}
    while offset < len(data):
        length, _crc, lsn = struct.unpack_from("<IIQ", data, offset)
        out[lsn] = (offset, offset + 8 + length)
        offset += 8 + length
    return out


def flip(path: Path, offset: int) -> None:
    """Damage one byte in place (no truncation: a mapped file must stay mapped)."""
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x5A]))


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- 1. a damaged WAL record in the middle of a segment -----------------------------------------------------


def test_damaged_wal_record_is_skipped_reported_and_everything_else_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = EngineConfig(builder=False)  # every write stays in the WAL
    batches = {lsn: [f"b{lsn}-{i}" for i in range(5)] for lsn in range(1, 11)}
    with LocalServer(tmp_path, port=0, engine=config) as server, http(server.url) as control:
        url = create_index(control, "walrot")
        with http(url) as data:
            for lsn, ids in batches.items():
                assert upsert_ok(data, "docs", ids) == lsn
            upsert_ok(data, "other", ["o1", "o2"])
    (segment,) = wal.iter_segment_paths(namespace_dir(tmp_path, "docs") / "wal")
    start, end = frames(segment)[5]
    flip(segment, (start + end) // 2)

    caplog.set_level(logging.ERROR, logger="pinecone_rag")
    lost = set(batches[5])
    kept = {rid for lsn, ids in batches.items() if lsn != 5 for rid in ids}
    for restart in range(2):  # the second restart replays a log the first one appended to
        caplog.clear()
        with LocalServer(tmp_path, port=0, engine=config) as server, http(server.url) as control:
            url = index_url(control, "walrot")
            with http(url) as data:
                assert_exactly(data, "docs", kept, lost)
                assert_exactly(data, "other", {"o1", "o2"}, set())
                stats = data.post("/describe_index_stats", json={}).json()
                assert stats["namespaces"]["docs"]["vectorCount"] == len(kept)
                if restart == 0:
                    # The writer resumes after the last intact record (LSN 10), behind the damage.
                    assert upsert_ok(data, "docs", ["after"]) == 11
                    kept.add("after")
            fetched = grpc_call(
                grpc_target(url), "Fetch", pb.FetchRequest(ids=sorted(lost), namespace="docs")
            )
            assert not fetched.vectors
            matches = grpc_call(
                grpc_target(url), "Query", pb.QueryRequest(vector=vector("b5-0"), top_k=100, namespace="docs")
            ).matches
            assert {m.id for m in matches} == kept
            report = engine_of(server, "walrot").recovery_report()
            assert [(name, damage.segment, damage.lost_lsns) for name, damage in report] == [
                ("docs", segment.name, range(5, 6))
            ]
            (damage,) = (damage for _, damage in report)
            assert damage.start == start
            assert damage.end == end
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(segment.name in message and "LSN 5 is lost" in message for message in errors), errors


# --- 2. a damaged namespace is quarantined ------------------------------------------------------------------

DAMAGE = {
    "manifest": "Manifest",
    "current": "Pointer",
    "cluster": "Cluster file",
    "undecodable-record": "WAL record",
    "lsn-disorder": "LSN",
    "namespace-json": "NAMESPACE.json",
}


def _damage(data_dir: Path, kind: str) -> None:
    """Damage namespace ``bad`` of the stopped server in ``data_dir``."""
    blobs = blob_dir(data_dir, "bad")
    directory = namespace_dir(data_dir, "bad")
    segment = list(wal.iter_segment_paths(directory / "wal"))[-1]
    if kind == "manifest":
        (manifest,) = blobs.glob("manifest-*.json")
        flip(manifest, manifest.stat().st_size - 10)
    elif kind == "current":
        (blobs / "CURRENT").write_bytes(b'{"magic": "PRAGCUR", "vers')
    elif kind == "cluster":
        cluster = min((blobs / "clusters").iterdir())
        flip(cluster, cluster.stat().st_size - 5)
    elif kind == "undecodable-record":
        bogus = bytearray(encode_op(DeleteIdsOp(["x"])))
        bogus[0] = 200  # an operation this build does not know, behind a valid CRC
        with segment.open("ab") as handle:
            handle.write(wal.encode_record(max(frames(segment)) + 1, bytes(bogus)))
    elif kind == "lsn-disorder":
        with segment.open("ab") as handle:
            handle.write(wal.encode_record(1, encode_op(DeleteIdsOp(["x"]))))
    else:
        (directory / "NAMESPACE.json").write_bytes(b'{"name": "ba')


def _setup_two_namespaces(data_dir: Path) -> None:
    config = EngineConfig(build_min_records=20, build_idle_s=0.05, target_cluster_size=16, flat_records=0)
    with LocalServer(data_dir, port=0, engine=config) as server, http(server.url) as control:
        url = create_index(control, "idx")
        other = create_index(control, "other-index")
        with http(url) as data:
            for start in range(0, 60, 20):
                upsert_ok(data, "bad", [f"bad-{i}" for i in range(start, start + 20)])
                upsert_ok(data, "good", [f"good-{i}" for i in range(start, start + 20)])
        assert engine_of(server, "idx").wait_until_indexed(60)
        with http(url) as data:  # one more write above the published LSN, replayed from the WAL
            upsert_ok(data, "bad", ["bad-wal"])
        with http(other) as data:
            upsert_ok(data, "", ["o1"])


def _rest_calls(data: httpx.Client) -> dict[str, httpx.Response]:
    ns = "bad"
    return {
        "query": data.post("/query", json={"vector": vector("q"), "topK": 3, "namespace": ns}),
        "fetch": data.get("/vectors/fetch", params={"ids": "bad-1", "namespace": ns}),
        "fetch_by_metadata": data.post(
            "/vectors/fetch_by_metadata", json={"filter": {"id": "bad-1"}, "namespace": ns}
        ),
        "upsert": upsert(data, ns, ["bad-new"]),
        "update": data.post("/vectors/update", json={"id": "bad-1", "values": vector("u"), "namespace": ns}),
        "delete": data.post("/vectors/delete", json={"ids": ["bad-1"], "namespace": ns}),
        "delete_all": data.post("/vectors/delete", json={"deleteAll": True, "namespace": ns}),
        "list": data.get("/vectors/list", params={"namespace": ns}),
        "describe_namespace": data.get(f"/namespaces/{ns}"),
        "create_namespace": data.post("/namespaces", json={"name": ns}),
    }


def _grpc_calls(target: str) -> dict[str, grpc.RpcError]:
    ns = "bad"
    requests = {
        "Query": pb.QueryRequest(vector=vector("q"), top_k=3, namespace=ns),
        "Fetch": pb.FetchRequest(ids=["bad-1"], namespace=ns),
        "Upsert": pb.UpsertRequest(vectors=[pb.Vector(id="bad-new", values=vector("n"))], namespace=ns),
        "Update": pb.UpdateRequest(id="bad-1", values=vector("u"), namespace=ns),
        "Delete": pb.DeleteRequest(ids=["bad-1"], namespace=ns),
        "List": pb.ListRequest(namespace=ns),
        "DescribeNamespace": pb.DescribeNamespaceRequest(namespace=ns),
    }
    return {method: grpc_error(target, method, request) for method, request in requests.items()}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_namespace_is_quarantined_and_the_rest_serves(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    _setup_two_namespaces(tmp_path)
    _damage(tmp_path, kind)
    bad_dir, bad_blobs = namespace_dir(tmp_path, "bad"), blob_dir(tmp_path, "bad")
    good = {f"good-{i}" for i in range(60)}
    caplog.set_level(logging.ERROR, logger="pinecone_rag")

    with LocalServer(tmp_path, port=0) as server, http(server.url) as control:
        url = index_url(control, "idx")
        # The index, its other namespace and the other index serve normally.
        with http(url) as data:
            assert_exactly(data, "good", good, set())
            response = data.post("/query", json={"vector": vector("q"), "topK": 5, "namespace": "good"})
            assert response.status_code == 200
            assert len(response.json()["matches"]) == 5
            # The quarantined namespace is left out of the stats and the listing (its count is unknown).
            stats = data.post("/describe_index_stats", json={})
            assert stats.status_code == 200, stats.text
            assert stats.json()["namespaces"] == {"good": {"vectorCount": 60}}
            assert stats.json()["totalVectorCount"] == 60
            listed = data.get("/namespaces").json()["namespaces"]
            assert [entry["name"] for entry in listed] == ["good"]
            # Every call on it is DATA_LOSS in Pinecone's error shape, naming what is damaged.
            for call, response in _rest_calls(data).items():
                assert response.status_code == 500, (call, response.text)
                body = response.json()
                assert set(body) == {"code", "message", "details"}, call
                assert body["code"] == DATA_LOSS, (call, body)
                assert "quarantined" in body["message"], (call, body)
                assert DAMAGE[kind] in body["message"], (call, body)
        for method, error in _grpc_calls(grpc_target(url)).items():
            assert error.code() == grpc.StatusCode.DATA_LOSS, (method, error)
            assert DAMAGE[kind] in (error.details() or ""), (method, error.details())
        stats_grpc = grpc_call(grpc_target(url), "DescribeIndexStats", pb.DescribeIndexStatsRequest())
        assert set(stats_grpc.namespaces) == {"good"}
        with http(index_url(control, "other-index")) as data:
            assert_exactly(data, "", {"o1"}, set())
        (quarantined,) = engine_of(server, "idx").quarantined
        assert quarantined.name == (None if kind == "namespace-json" else "bad")
        assert DAMAGE[kind] in quarantined.reason
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("quarantined" in message for message in errors), errors

        # Deleting the namespace is the way out: its files go, and the name is usable again.
        if kind in ("cluster", "lsn-disorder"):
            grpc_call(grpc_target(url), "DeleteNamespace", pb.DeleteNamespaceRequest(namespace="bad"))
        else:
            with http(url) as data:
                assert data.delete("/namespaces/bad").status_code == 200
        assert not bad_dir.exists()
        assert not files_under(bad_blobs)
        assert not engine_of(server, "idx").quarantined
        with http(url) as data:
            upsert_ok(data, "bad", ["fresh"])
            assert_exactly(data, "bad", {"fresh"}, {"bad-1", "bad-wal"})

    with (
        LocalServer(tmp_path, port=0) as server,
        http(server.url) as control,
        http(index_url(control, "idx")) as data,
    ):
        assert not engine_of(server, "idx").quarantined
        assert_exactly(data, "bad", {"fresh"}, {"bad-1"})
        assert_exactly(data, "good", good, set())


def test_index_with_a_quarantined_namespace_can_be_deleted(tmp_path: Path) -> None:
    _setup_two_namespaces(tmp_path)
    _damage(tmp_path, "manifest")
    index_dir = namespace_dir(tmp_path, "bad").parent.parent
    with LocalServer(tmp_path, port=0) as server, http(server.url) as control:
        assert engine_of(server, "idx").quarantined
        response = control.delete("/indexes/idx")
        assert response.status_code in (200, 202), response.text
        assert control.get("/indexes/idx").status_code == 404
        assert not index_dir.exists()
        url = create_index(control, "idx")
        with http(url) as data:
            upsert_ok(data, "bad", ["again"])
            assert_exactly(data, "bad", {"again"}, {"bad-1"})


def test_cluster_file_damaged_while_running_fails_the_query(tmp_path: Path) -> None:
    """Damage under a running server: the read that loads the file fails, it never serves wrong vectors."""
    # A cache of (almost) no bytes keeps at most one file mapped, so queries load the others again, and
    # a large probe count makes every query read every cluster.
    config = EngineConfig(
        build_min_records=20,
        build_idle_s=0.05,
        target_cluster_size=16,
        flat_records=0,
        min_probe=1000,
        cache_bytes=1,
    )
    ids = [f"r{i}" for i in range(200)]
    with LocalServer(tmp_path, port=0, engine=config) as server, http(server.url) as control:
        url = create_index(control, "rot")
        engine = engine_of(server, "rot")
        with http(url) as data:
            upsert_ok(data, "", ids)
            assert engine.wait_until_indexed(60)
            assert engine.cluster_count("") >= 2  # one may stay mapped; the others are loaded again
            # Every match is read back from its file, so the query touches every cluster file.
            query = {"vector": vector("q"), "topK": len(ids), "includeValues": True, "includeMetadata": True}
            response = data.post("/query", json=query)
            assert response.status_code == 200
            assert len(response.json()["matches"]) == len(ids)
            for cluster in sorted((blob_dir(tmp_path, "") / "clusters").iterdir()):
                flip(cluster, cluster.stat().st_size - 5)  # a section near the end of the file
            for _ in range(2):
                response = data.post("/query", json=query)
                assert response.status_code == 500, response.text[:300]
                assert response.json()["code"] == DATA_LOSS
                assert "Cluster file" in response.json()["message"]
        request = pb.QueryRequest(vector=vector("q"), top_k=len(ids), include_metadata=True, namespace="")
        error = grpc_error(grpc_target(url), "Query", request)
        assert error.code() == grpc.StatusCode.DATA_LOSS
        assert "damaged" in (error.details() or "")


# --- 3. a full disk -----------------------------------------------------------------------------------------


class DiskFaults:
    """A fake disk: ``os.write``/``os.fsync`` on WAL segments (and ``os.fsync`` of blob-store writes)
    fail with ENOSPC while the counters say so. Only the disk is faked; transports are real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.wal_writes = 0  # the next N writes to a WAL segment fail (after putting half their bytes down)
        self.wal_fsyncs = 0  # the next N fsyncs of a WAL segment fail
        self.blob_fsyncs = 0  # the next N fsyncs of blob-store temporary files fail...
        self.blob_fsyncs_first_ok = 0  # ...after this many more have succeeded
        self.injected = 0
        self._lock = threading.Lock()
        real_write, real_writev, real_fsync = os.write, os.writev, os.fsync

        def path_of(fd: int) -> str:
            try:
                return str(Path(f"/proc/self/fd/{fd}").readlink())
            except OSError:
                return ""

        def take(counter: str) -> bool:
            with self._lock:
                if getattr(self, counter) <= 0:
                    return False
                if counter == "blob_fsyncs" and self.blob_fsyncs_first_ok > 0:
                    self.blob_fsyncs_first_ok -= 1
                    return False
                setattr(self, counter, getattr(self, counter) - 1)
                self.injected += 1
                return True

        def write(fd: int, data: Any) -> int:
            if path_of(fd).endswith(".wal") and take("wal_writes"):
                real_write(fd, bytes(data[: len(data) // 2]))  # a short write, then the error
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        def writev(fd: int, pieces: Any) -> int:
            if path_of(fd).endswith(".wal") and take("wal_writes"):
                data = b"".join(map(bytes, pieces))
                real_write(fd, data[: len(data) // 2])  # a short write, then the error
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_writev(fd, pieces)

        def fsync(fd: int) -> None:
            path = path_of(fd)
            if (path.endswith(".wal") and take("wal_fsyncs")) or (
                "/blobs/.tmp/" in path and take("blob_fsyncs")
            ):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "writev", writev)
        monkeypatch.setattr(os, "fsync", fsync)


def assert_disk_full(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == UNAVAILABLE
    assert "disk is full" in body["message"]
    assert "nothing of it was written" in body["message"]


def test_full_disk_at_wal_write_and_fsync_fails_cleanly_and_writes_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = DiskFaults(monkeypatch)
    config = EngineConfig(builder=False)
    acked: set[str] = set()
    refused: set[str] = set()
    with LocalServer(tmp_path, port=0, engine=config) as server, http(server.url) as control:
        url = create_index(control, "full")
        target = grpc_target(url)
        with http(url) as data:
            assert upsert_ok(data, "", ["a"]) == 1
            acked.add("a")

            faults.wal_writes = 1  # the append fails half-way
            assert_disk_full(upsert(data, "", ["b"]))
            refused.add("b")
            faults.wal_writes = 1
            error = grpc_error(
                target, "Upsert", pb.UpsertRequest(vectors=[pb.Vector(id="c", values=vector("c"))])
            )
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert "disk is full" in (error.details() or "")
            refused.add("c")
            assert upsert_ok(data, "", ["d"]) == 2  # no LSN was spent on the failed writes
            acked.add("d")

            faults.wal_fsyncs = 1  # the append succeeds, its fsync does not: the record is cut again
            assert_disk_full(upsert(data, "", ["e"]))
            refused.add("e")
            # The fault is used up: this update goes through.
            assert data.post("/vectors/update", json={"id": "a", "values": vector("x")}).status_code == 200
            faults.wal_fsyncs = 1
            response = data.post("/vectors/update", json={"id": "d", "values": vector("zzz")})
            assert_disk_full(response)
            faults.wal_fsyncs = 1
            assert_disk_full(data.post("/vectors/delete", json={"ids": ["d"]}))
            assert upsert_ok(data, "", ["f"]) == 4
            acked.add("f")
            assert faults.injected == 5

            # Many writers share a commit whose fsync fails: all of them fail, none is applied.
            faults.wal_fsyncs = 1
            results: dict[str, int] = {}
            lock = threading.Lock()

            def writer(rid: str) -> None:
                with http(url) as own:
                    response = upsert(own, "", [rid])
                with lock:
                    results[rid] = response.status_code

            threads = [threading.Thread(target=writer, args=(f"g{i}",)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert set(results.values()) <= {200, 503}
            assert 503 in results.values()
            acked |= {rid for rid, status in results.items() if status == 200}
            refused |= {rid for rid, status in results.items() if status == 503}
            lsn = upsert_ok(data, "", ["h"])
            acked.add("h")
            # The acknowledged writes hold consecutive LSNs: the failed ones gave theirs back.
            assert lsn == 4 + len(acked & {f"g{i}" for i in range(8)}) + 1

            assert_exactly(data, "", acked - {"a"}, refused)  # "a" was updated: checked below
            # The update that failed did not change "d"; the one that went through changed "a".
            got = fetch(data, "", ["a", "d"])
            assert got["a"]["values"] == pytest.approx(vector("x"))
            assert got["d"]["values"] == pytest.approx(vector("d"))

    # A restart recovers exactly the acknowledged writes.
    with LocalServer(tmp_path, port=0, engine=config) as server, http(server.url) as control:
        with http(index_url(control, "full")) as data:
            found = fetch(data, "", sorted(acked | refused))
            assert set(found) == acked
            assert found["a"]["values"] == pytest.approx(vector("x"))
            assert upsert_ok(data, "", ["after"]) == lsn + 1


def test_log_that_cannot_be_cut_back_stops_writes_until_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = DiskFaults(monkeypatch)
    config = EngineConfig(builder=False)
    with LocalServer(tmp_path, port=0, engine=config) as server, http(server.url) as control:
        url = create_index(control, "stuck")
        with http(url) as data:
            upsert_ok(data, "", ["a"])
            faults.wal_fsyncs = 2  # the commit's fsync fails, and so does the fsync of the cut
            response = upsert(data, "", ["b"])
            assert response.status_code == 503, response.text
            assert "restart" in response.json()["message"]
            # The namespace refuses writes even once the disk is fine (its log's end is unknown)...
            response = upsert(data, "", ["c"])
            assert response.status_code == 503
            assert "stopped" in response.json()["message"]
            # ...while reads and the other namespaces go on.
            assert_exactly(data, "", {"a"}, {"b", "c"})
            upsert_ok(data, "elsewhere", ["x"])
    with LocalServer(tmp_path, port=0, engine=config) as server, http(server.url) as control:
        with http(index_url(control, "stuck")) as data:
            assert_exactly(data, "", {"a"}, {"b", "c"})
            assert upsert_ok(data, "", ["d"]) == 2


def test_failed_builder_publish_keeps_the_published_index_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = DiskFaults(monkeypatch)
    config = EngineConfig(
        build_min_records=20, build_idle_s=0.05, target_cluster_size=16, flat_records=0, min_probe=1000
    )
    first = [f"r{i}" for i in range(100)]
    second = [f"s{i}" for i in range(100)]
    with LocalServer(tmp_path, port=0, engine=config) as server, http(server.url) as control:
        url = create_index(control, "build")
        engine = engine_of(server, "build")
        with http(url) as data:
            upsert_ok(data, "", first)
            assert engine.wait_until_indexed(60)
            blobs = blob_dir(tmp_path, "")
            current = (blobs / "CURRENT").read_bytes()
            objects = files_under(blobs)
            # The next build writes some cluster files, then the disk is full.
            faults.blob_fsyncs_first_ok, faults.blob_fsyncs = 2, 1_000_000
            upsert_ok(data, "", second)
            wait_for(lambda: faults.injected > 0)
            assert not engine.wait_until_indexed(0.5)
            # What the failed build wrote is gone again, and the published index is the old one.
            wait_for(lambda: files_under(blobs) == objects)
            assert (blobs / "CURRENT").read_bytes() == current
            assert_exactly(data, "", set(first) | set(second), set())
            query = {"vector": vector("q"), "topK": 300}
            assert len(data.post("/query", json=query).json()["matches"]) == 200
            # Space is back: the builder's retry (a few seconds later) publishes.
            faults.blob_fsyncs = 0
            assert engine.wait_until_indexed(60)
            assert (blobs / "CURRENT").read_bytes() != current
            assert_exactly(data, "", set(first) | set(second), set())
    with LocalServer(tmp_path, port=0, engine=config) as server, http(server.url) as control:
        assert not engine_of(server, "build").quarantined
        with http(index_url(control, "build")) as data:
            assert_exactly(data, "", set(first) | set(second), set())


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs (skipped where the container may not mount one)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"this container refuses to mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        # Lazily: cluster files the stopped server mapped stay mapped until garbage-collected.
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; returns it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        for size in (65536, 512, 1):  # down to the last byte
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * size)
    assert shutil.disk_usage(disk).free < 4096
    return filler


def test_real_full_disk_refuses_writes_cleanly_and_recovers(tiny_disk: Path) -> None:
    data_dir = tiny_disk / "data"
    config = EngineConfig(build_min_records=50, build_idle_s=0.05)
    acked: set[str] = set()
    refused: set[str] = set()
    with LocalServer(data_dir, port=0, engine=config) as server, http(server.url) as control:
        url = create_index(control, "tiny")
        engine = engine_of(server, "tiny")
        with http(url) as data:
            for batch in range(3):
                ids = [f"a{batch}-{i}" for i in range(20)]
                upsert_ok(data, "", ids)
                acked |= set(ids)
            assert engine.wait_until_indexed(60)
            filler = fill(tiny_disk)
            # Writes of more than a page (a small one could still fit in the WAL file's last page).
            for batch in range(3):
                ids = [f"x{batch}-{i}" for i in range(200)]
                assert_disk_full(upsert(data, "", ids))
                refused |= set(ids)
            grpc_ids = [f"xg-{i}" for i in range(200)]
            request = pb.UpsertRequest(vectors=[pb.Vector(id=rid, values=vector(rid)) for rid in grpc_ids])
            error = grpc_error(grpc_target(url), "Upsert", request)
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert "disk is full" in (error.details() or "")
            refused |= set(grpc_ids)
            assert_exactly(data, "", acked, refused)
            filler.unlink()  # space is back
            for batch in range(3):
                ids = [f"b{batch}-{i}" for i in range(20)]
                upsert_ok(data, "", ids)
                acked |= set(ids)
            assert engine.wait_until_indexed(60)
            assert_exactly(data, "", acked, refused)
    with LocalServer(data_dir, port=0, engine=config) as server, http(server.url) as control:
        assert not engine_of(server, "tiny").quarantined
        assert not engine_of(server, "tiny").recovery_report()
        with http(index_url(control, "tiny")) as data:
            assert_exactly(data, "", acked, refused)

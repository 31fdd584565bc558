"""Durability of the local engine: restarts, ``kill -9`` mid-stream, and group commit under concurrency.

Every test runs a real server on loopback (port 0) and talks to it over REST and raw gRPC.
"""

from __future__ import annotations

import os
import random
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import numpy as np
import pytest

from pinecone_rag.server import LocalServer
from pinecone_rag.wire import messages as pb

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HEADERS = {"Api-Key": "durability-key", "X-Pinecone-Api-Version": "2025-10"}
SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
DIM = 8


def client(base_url: str, timeout: float = 30) -> httpx.Client:
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    return httpx.Client(base_url=base_url, headers=HEADERS, transport=transport, timeout=timeout)


def create_index(control: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    payload = {"name": name, "dimension": DIM, "metric": "dotproduct", "spec": SERVERLESS, **body}
    response = control.post("/indexes", json=payload)
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()
    return model


def data_port(host: str) -> int:
    return int(host.rsplit(":", 1)[1])


def data_url(host: str) -> str:
    return host if host.startswith("http") else f"http://{host}"


def f32(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def fetch_all(data: httpx.Client, ids: list[str], namespace: str = "") -> dict[str, Any]:
    """Every stored record among ``ids`` (fetched 500 at a time)."""
    found: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        params = [("ids", rid) for rid in ids[start : start + 500]] + [("namespace", namespace)]
        response = data.get("/vectors/fetch", params=params)
        assert response.status_code == 200, response.text
        found.update(response.json()["vectors"])
    return found


def stats(data: httpx.Client) -> dict[str, Any]:
    response = data.post("/describe_index_stats", json={})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_record(got: dict[str, Any], values: np.ndarray, metadata: dict[str, Any] | None) -> None:
    """Values bit-exact in float32, metadata equal."""
    assert f32(got["values"]).tobytes() == f32(values).tobytes(), got["id"]
    assert got.get("metadata") == metadata, got["id"]


# --- (a) a clean restart keeps everything -------------------------------------------------------------------


@dataclass
class Expected:
    """What a namespace must hold: id -> (values, sparse or None, metadata or None)."""

    records: dict[str, tuple[np.ndarray, dict[str, list[Any]] | None, dict[str, Any] | None]] = field(
        default_factory=dict
    )
    deleted: set[str] = field(default_factory=set)


def _upsert(
    data: httpx.Client, namespace: str, expected: Expected, ids: list[str], rng: np.random.Generator
) -> int:
    vectors = []
    for i, rid in enumerate(ids):
        values = rng.standard_normal(DIM).astype(np.float32)
        metadata = {"genre": ["drama", "news", "sport"][i % 3], "rank": float(i), "tags": [f"t{i % 4}"]}
        sparse = None
        if i % 2:
            indices = sorted(rng.choice(1000, size=3, replace=False).tolist())
            sparse = {"indices": indices, "values": rng.standard_normal(3).astype(np.float32).tolist()}
        vector: dict[str, Any] = {"id": rid, "values": values.tolist(), "metadata": metadata}
        if sparse is not None:
            vector["sparseValues"] = sparse
        vectors.append(vector)
        expected.records[rid] = (values, sparse, metadata)
        expected.deleted.discard(rid)
    response = data.post("/vectors/upsert", json={"vectors": vectors, "namespace": namespace})
    assert response.status_code == 200, response.text
    assert response.json() == {"upsertedCount": len(ids)}
    return int(response.headers["x-pinecone-request-lsn"])


def _check_namespace(data: httpx.Client, namespace: str, expected: Expected) -> None:
    found = fetch_all(data, sorted(expected.records) + sorted(expected.deleted), namespace)
    assert set(found) == set(expected.records)
    for rid, (values, sparse, metadata) in expected.records.items():
        got = found[rid]
        assert_record(got, values, metadata)
        if sparse is None:
            assert "sparseValues" not in got
        else:
            assert got["sparseValues"]["indices"] == sparse["indices"]
            assert f32(got["sparseValues"]["values"]).tobytes() == f32(sparse["values"]).tobytes()
    listed: list[str] = []
    token = None
    while True:
        params: dict[str, Any] = {"namespace": namespace, "limit": 100}
        if token:
            params["paginationToken"] = token
        body = data.get("/vectors/list", params=params).json()
        listed += [v["id"] for v in body["vectors"]]
        token = body.get("pagination", {}).get("next")
        if not token:
            break
    assert listed == sorted(expected.records)


def _same_results(got: list[Any], want: list[Any]) -> None:
    assert len(got) == len(want)
    for got_matches, want_matches in zip(got, want, strict=True):
        assert [(m[0], m[2]) for m in got_matches] == [(m[0], m[2]) for m in want_matches]
        assert [m[1] for m in got_matches] == pytest.approx([m[1] for m in want_matches], rel=1e-5, abs=1e-6)


def _queries(data: httpx.Client, namespace: str) -> list[Any]:
    out = []
    for seed in range(3):
        vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32).tolist()
        body = {"vector": vector, "topK": 10, "namespace": namespace, "includeMetadata": True}
        if seed == 2:
            body["filter"] = {"genre": {"$in": ["news", "sport"]}}
        response = data.post("/query", json=body)
        assert response.status_code == 200, response.text
        out.append([(m["id"], m["score"], m.get("metadata")) for m in response.json()["matches"]])
    return out


def test_restart_keeps_records_namespaces_deletes_and_ports(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    namespaces = {"": Expected(), "ns-one": Expected(), "ns-two": Expected()}
    with LocalServer(tmp_path, port=0) as first, client(first.url) as control:
        dense = create_index(control, "durable")
        sparse_index = create_index(control, "durable-sparse", dimension=None, vector_type="sparse")
        ports = {"durable": data_port(dense["host"]), "durable-sparse": data_port(sparse_index["host"])}
        with client(data_url(dense["host"])) as data:
            last_lsn = {}
            for namespace, expected in namespaces.items():
                for start in range(0, 150, 50):
                    ids = [f"{namespace or 'default'}-{i}" for i in range(start, start + 50)]
                    last_lsn[namespace] = _upsert(data, namespace, expected, ids, rng)
            # Overwrite some records, delete by id, delete by filter, update one.
            last_lsn[""] = _upsert(data, "", namespaces[""], [f"default-{i}" for i in range(10)], rng)
            doomed = [f"ns-one-{i}" for i in range(0, 150, 4)]
            assert (
                data.post("/vectors/delete", json={"ids": doomed, "namespace": "ns-one"}).status_code == 200
            )
            for rid in doomed:
                del namespaces["ns-one"].records[rid]
                namespaces["ns-one"].deleted.add(rid)
            response = data.post(
                "/vectors/delete", json={"filter": {"genre": "drama"}, "namespace": "ns-two"}
            )
            assert response.status_code == 200, response.text
            for rid, (_, _, metadata) in list(namespaces["ns-two"].records.items()):
                if metadata and metadata["genre"] == "drama":
                    del namespaces["ns-two"].records[rid]
                    namespaces["ns-two"].deleted.add(rid)
            new_values = np.full(DIM, 0.25, dtype=np.float32)
            response = data.post(
                "/vectors/update",
                json={"id": "default-20", "values": new_values.tolist(), "setMetadata": {"rank": 99}},
            )
            assert response.status_code == 200, response.text
            _, sparse, metadata = namespaces[""].records["default-20"]
            namespaces[""].records["default-20"] = (new_values, sparse, {**(metadata or {}), "rank": 99.0})
            # An explicitly created empty namespace, and one created and deleted again.
            for name in ("empty-ns", "gone-ns"):
                assert data.post("/namespaces", json={"name": name}).status_code == 200
            assert data.delete("/namespaces/gone-ns").status_code == 200
            # Delete everything in a namespace that then stays gone.
            _upsert(data, "wiped", Expected(), ["w1", "w2"], rng)
            assert (
                data.post("/vectors/delete", json={"deleteAll": True, "namespace": "wiped"}).status_code
                == 200
            )
            before_queries = {ns: _queries(data, ns) for ns in namespaces}
            before_stats = stats(data)
        with client(data_url(sparse_index["host"])) as data:
            sparse_vectors = [
                {"id": f"s{i}", "sparseValues": {"indices": [i, i + 1], "values": [1.0, 0.5]}}
                for i in range(30)
            ]
            assert data.post("/vectors/upsert", json={"vectors": sparse_vectors}).status_code == 200

    # Two restarts: the second one replays a log that the first restart appended to.
    for round_number in range(2):
        with LocalServer(tmp_path, port=0) as again, client(again.url) as control:
            described = {name: control.get(f"/indexes/{name}").json() for name in ports}
            for name, port in ports.items():
                assert data_port(described[name]["host"]) == port, "the data port moved across a restart"
            with client(data_url(described["durable"]["host"])) as data:
                for namespace, expected in namespaces.items():
                    _check_namespace(data, namespace, expected)
                for namespace in namespaces:
                    _same_results(_queries(data, namespace), before_queries[namespace])
                after_stats = stats(data)
                assert after_stats["namespaces"] == before_stats["namespaces"]
                assert after_stats["totalVectorCount"] == sum(len(e.records) for e in namespaces.values())
                listed = data.get("/namespaces").json()
                names = sorted(ns["name"] for ns in listed["namespaces"])
                assert names == sorted(["__default__", "ns-one", "ns-two", "empty-ns"])
                if round_number == 0:
                    # LSNs continue where they stopped.
                    lsn = _upsert(data, "", namespaces[""], ["after-restart"], rng)
                    assert lsn == last_lsn[""] + 2  # + the update of default-20
                    before_queries[""] = _queries(data, "")
                    before_stats = stats(data)
            with client(data_url(described["durable-sparse"]["host"])) as data:
                found = fetch_all(data, [f"s{i}" for i in range(30)])
                assert len(found) == 30
                assert found["s7"]["sparseValues"] == {"indices": [7, 8], "values": [1.0, 0.5]}


# --- (b) kill -9 in the middle of a write stream ------------------------------------------------------------

URL_LINE = re.compile(r"serving .* on (http://\S+)")
BATCH = 20
CYCLES = int(os.environ.get("PINECONE_RAG_STRESS_CYCLES", "3"))


@dataclass
class Batch:
    key: str
    namespace: str
    ids: list[str]
    values: np.ndarray
    metadata: list[dict[str, Any]]


@dataclass
class Ledger:
    """What the writers sent, and what the server acknowledged."""

    batches: dict[str, Batch] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    killed: threading.Event = field(default_factory=threading.Event)

    def fail(self, message: str) -> None:
        """Record an error, unless the server was being killed (then the batch is merely in doubt)."""
        if not self.killed.is_set():
            with self.lock:
                self.errors.append(message)


class ServerProcess:
    """``pinecone-rag serve --port 0`` in a subprocess, killed or stopped by the test."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PINECONE_RAG_API_KEYS"}
        # Build constantly and cluster small, so kills land during builds, publishes and WAL truncation.
        env["PINECONE_RAG_ENGINE"] = (
            '{"build_min_records": 50, "build_idle_s": 0.05, "target_cluster_size": 64, '
            '"build_growth": 0.05, "min_probe": 1000}'
        )
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "pinecone_rag.cli", "serve"),
                *("--data-dir", str(data_dir), "--port", "0", "--log-level", "warning"),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self.url = self._read_url(deadline=time.monotonic() + 60)

    def _read_url(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        buffered = b""
        try:
            while time.monotonic() < deadline:
                if not selector.select(timeout=0.2):
                    if self.proc.poll() is not None:
                        break
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buffered += chunk
                match = URL_LINE.search(buffered.decode(errors="replace"))
                if match:
                    return match.group(1)
        finally:
            selector.close()
        self.kill()
        raise AssertionError(f"the server did not print its URL; stdout so far: {buffered!r}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._close()

    def _close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def _make_batch(key: str, namespace: str, rng: random.Random) -> Batch:
    ids = [f"{key}-r{i}" for i in range(BATCH)]
    values = np.array([[rng.uniform(-1, 1) for _ in range(DIM)] for _ in ids], dtype=np.float32)
    metadata = [{"batch": key, "position": float(i)} for i in range(BATCH)]
    return Batch(key, namespace, ids, values, metadata)


def _rest_writer(url: str, namespace: str, prefix: str, ledger: Ledger, seed: int) -> None:
    rng = random.Random(seed)
    with client(url, timeout=20) as data:
        for number in range(100_000):
            batch = _make_batch(f"{prefix}-b{number}", namespace, rng)
            with ledger.lock:
                ledger.batches[batch.key] = batch
            body = {
                "namespace": namespace,
                "vectors": [
                    {"id": rid, "values": batch.values[i].tolist(), "metadata": batch.metadata[i]}
                    for i, rid in enumerate(batch.ids)
                ],
            }
            try:
                response = data.post("/vectors/upsert", json=body)
            except httpx.TransportError as exc:
                ledger.fail(f"{batch.key}: {exc!r}")
                return  # the server died: this batch is in doubt
            if response.status_code != 200:
                ledger.fail(f"{batch.key}: HTTP {response.status_code} {response.text}")
                return
            with ledger.lock:
                ledger.acked.add(batch.key)


def _grpc_writer(target: str, namespace: str, prefix: str, ledger: Ledger, seed: int) -> None:
    rng = random.Random(seed)
    with grpc.insecure_channel(target) as channel:
        upsert = channel.unary_unary(
            "/VectorService/Upsert",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=pb.UpsertResponse.FromString,
        )
        for number in range(100_000):
            batch = _make_batch(f"{prefix}-b{number}", namespace, rng)
            with ledger.lock:
                ledger.batches[batch.key] = batch
            request = pb.UpsertRequest(namespace=namespace)
            for i, rid in enumerate(batch.ids):
                vector = request.vectors.add(id=rid, values=batch.values[i].tolist())
                vector.metadata.update(batch.metadata[i])
            try:
                response = upsert(request, metadata=(("api-key", HEADERS["Api-Key"]),), timeout=20)
            except grpc.RpcError as exc:
                ledger.fail(f"{batch.key}: {exc}")
                return
            if response.upserted_count != BATCH:
                ledger.fail(f"{batch.key}: upserted_count {response.upserted_count}")
                return
            with ledger.lock:
                ledger.acked.add(batch.key)


def _verify(host: str, ledger: Ledger) -> int:
    """Every acknowledged batch is whole and exact; every other batch is whole or absent."""
    by_namespace: dict[str, list[Batch]] = {}
    for batch in ledger.batches.values():
        by_namespace.setdefault(batch.namespace, []).append(batch)
    present_total = 0
    with client(data_url(host)) as data:
        counts = {}
        for namespace, batches in by_namespace.items():
            found = fetch_all(data, [rid for b in batches for rid in b.ids], namespace)
            present = 0
            for batch in batches:
                got = [rid for rid in batch.ids if rid in found]
                if batch.key in ledger.acked:
                    assert len(got) == BATCH, (
                        f"acknowledged batch {batch.key} lost {BATCH - len(got)} records"
                    )
                else:
                    assert len(got) in (0, BATCH), f"batch {batch.key} is half applied ({len(got)}/{BATCH})"
                for position, rid in enumerate(batch.ids):
                    if rid in found:
                        assert_record(found[rid], batch.values[position], batch.metadata[position])
                present += len(got)
            assert len(found) == present
            _check_queries_exact(data, namespace, found)
            counts[namespace or "__default__"] = present
            present_total += present
        body = stats(data)
        assert body["totalVectorCount"] == present_total
        assert {ns: v["vectorCount"] for ns, v in body["namespaces"].items()} == {
            ns: n for ns, n in counts.items() if n
        }
    return present_total


def _check_queries_exact(data: httpx.Client, namespace: str, found: dict[str, Any]) -> None:
    """Queries see every present record (the server scans every cluster: ``min_probe`` is huge)."""
    if not found:
        return
    ids = sorted(found)
    matrix = np.asarray([found[rid]["values"] for rid in ids], dtype=np.float32)
    for rid in ids[:: max(1, len(ids) // 10)]:
        vector = matrix[ids.index(rid)]
        response = data.post("/query", json={"vector": vector.tolist(), "topK": 3, "namespace": namespace})
        assert response.status_code == 200, response.text
        scores = [match["score"] for match in response.json()["matches"]]
        expected = np.sort(matrix @ vector)[::-1][:3]
        assert np.allclose(scores, expected, rtol=1e-4, atol=1e-4), (scores, expected)


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_write(tmp_path: Path) -> None:
    seed = int(os.environ.get("PINECONE_RAG_STRESS_SEED", str(random.randrange(1 << 30))))
    print(f"kill -9 stress: seed {seed}, {CYCLES} cycles")
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    ledger = Ledger()
    server = ServerProcess(data_dir, log)
    try:
        with client(server.url) as control:
            host = create_index(control, "crashy")["host"]
        port = data_port(host)
        for cycle in range(CYCLES):
            acked_before = len(ledger.acked)
            writers = [
                threading.Thread(
                    target=_rest_writer, args=(data_url(host), "", f"c{cycle}-rest0", ledger, rng.random())
                ),
                threading.Thread(
                    target=_rest_writer, args=(data_url(host), "", f"c{cycle}-rest1", ledger, rng.random())
                ),
                threading.Thread(
                    target=_rest_writer,
                    args=(data_url(host), "side", f"c{cycle}-rest2", ledger, rng.random()),
                ),
                threading.Thread(
                    target=_grpc_writer,
                    args=(f"127.0.0.1:{port}", "", f"c{cycle}-grpc", ledger, rng.random()),
                ),
            ]
            for writer in writers:
                writer.start()
            deadline = time.monotonic() + 30
            while len(ledger.acked) < acked_before + 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(ledger.acked) >= acked_before + 4, f"writers made no progress: {ledger.errors}"
            time.sleep(rng.uniform(0.0, 0.4))  # kill at a random moment of the stream
            assert not ledger.errors, ledger.errors
            ledger.killed.set()
            server.kill()
            for writer in writers:
                writer.join(timeout=60)
                assert not writer.is_alive()
            assert not ledger.errors, ledger.errors
            in_doubt = len(ledger.batches) - len(ledger.acked)
            print(f"cycle {cycle}: {len(ledger.acked)} batches acknowledged, {in_doubt} in doubt")

            server = ServerProcess(data_dir, log)
            with client(server.url) as control:
                response = control.get("/indexes/crashy")
                assert response.status_code == 200, response.text
                assert data_port(response.json()["host"]) == port, "the data port moved across kill -9"
            present = _verify(host, ledger)
            assert present >= len(ledger.acked) * BATCH
            ledger.killed.clear()
    finally:
        server.stop()
    assert server.proc.returncode == 0, log.read_text()
    published = list((data_dir / "indexes").rglob("CURRENT"))
    assert published, "the index builder never published a manifest during the run"


# --- (c) group commit: many concurrent writers, one namespace -----------------------------------------------


@pytest.fixture
def fresh_index(control: httpx.Client) -> Iterator[dict[str, Any]]:
    name = f"gc-{uuid.uuid4().hex[:10]}"
    yield create_index(control, name)
    control.delete(f"/indexes/{name}")


def test_group_commit_concurrent_writers(fresh_index: dict[str, Any]) -> None:
    host = fresh_index["host"]
    port = data_port(host)
    rest_threads, grpc_threads, requests_each, per_request = 8, 4, 15, 5
    lsns: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(rest_threads + grpc_threads, timeout=60)

    def rest(worker: int) -> None:
        with client(data_url(host)) as data:
            start.wait()
            for n in range(requests_each):
                ids = [f"rest{worker}-{n}-{i}" for i in range(per_request)]
                vectors = [
                    {"id": rid, "values": [float(worker), float(n), float(i)] + [1.0] * (DIM - 3)}
                    for i, rid in enumerate(ids)
                ]
                response = data.post("/vectors/upsert", json={"vectors": vectors, "namespace": "shared"})
                if response.status_code != 200:
                    with lock:
                        failures.append(response.text)
                    return
                # Read-your-writes: the acknowledged records are visible at once.
                fetched = data.get("/vectors/fetch", params={"ids": ids[-1], "namespace": "shared"}).json()
                if ids[-1] not in fetched["vectors"]:
                    with lock:
                        failures.append(f"{ids[-1]} not visible after its ack")
                with lock:
                    lsns.append(int(response.headers["x-pinecone-request-lsn"]))

    def grpc_worker(worker: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            upsert = channel.unary_unary(
                "/VectorService/Upsert",
                request_serializer=lambda message: message.SerializeToString(),
                response_deserializer=pb.UpsertResponse.FromString,
            )
            start.wait()
            for n in range(requests_each):
                request = pb.UpsertRequest(namespace="shared")
                for i in range(per_request):
                    request.vectors.add(
                        id=f"grpc{worker}-{n}-{i}", values=[float(worker), float(n), 2.0] + [0.5] * (DIM - 3)
                    )
                try:
                    response, call = upsert.with_call(
                        request, metadata=(("api-key", HEADERS["Api-Key"]),), timeout=30
                    )
                except grpc.RpcError as exc:
                    with lock:
                        failures.append(str(exc))
                    return
                trailers = dict(call.trailing_metadata() or ())
                with lock:
                    if response.upserted_count != per_request:
                        failures.append(f"upserted_count {response.upserted_count}")
                    lsns.append(int(trailers["x-pinecone-request-lsn"]))

    threads = [threading.Thread(target=rest, args=(w,)) for w in range(rest_threads)]
    threads += [threading.Thread(target=grpc_worker, args=(w,)) for w in range(grpc_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    assert not failures, failures[:5]
    total_requests = (rest_threads + grpc_threads) * requests_each
    # One LSN per acknowledged write, no gaps, no duplicates.
    assert sorted(lsns) == list(range(1, total_requests + 1))
    with client(data_url(host)) as data:
        body = stats(data)
        assert body["namespaces"] == {"shared": {"vectorCount": total_requests * per_request}}
        assert body["totalVectorCount"] == total_requests * per_request


def test_concurrent_writers_to_many_namespaces_then_restart(tmp_path: Path) -> None:
    """Writers on several namespaces at once; after a clean stop every acknowledged record is back."""
    with LocalServer(tmp_path, port=0) as first, client(first.url) as control:
        host = create_index(control, "multi")["host"]
        errors: list[str] = []

        def worker(namespace: str) -> None:
            with client(data_url(host)) as data:
                for n in range(10):
                    vectors = [
                        {"id": f"{namespace}-{n}-{i}", "values": [float(n + i + 1)] * DIM} for i in range(10)
                    ]
                    response = data.post("/vectors/upsert", json={"vectors": vectors, "namespace": namespace})
                    if response.status_code != 200:
                        errors.append(response.text)

        threads = [threading.Thread(target=worker, args=(f"ns{k}",)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
    with LocalServer(tmp_path, port=0) as second, client(second.url) as control:
        assert data_port(control.get("/indexes/multi").json()["host"]) == data_port(host)
        with client(data_url(host)) as data:
            assert stats(data)["totalVectorCount"] == 600
            assert stats(data)["namespaces"] == {f"ns{k}": {"vectorCount": 100} for k in range(6)}
            found = fetch_all(data, [f"ns3-{n}-{i}" for n in range(10) for i in range(10)], "ns3")
            assert len(found) == 100
            assert found["ns3-4-5"]["values"] == [10.0] * DIM

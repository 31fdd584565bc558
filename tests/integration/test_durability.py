"""Durability of the local engine: restarts and group commit under concurrency (kill -9: test_kill_midstream).

Every test runs a real server on loopback (port 0) and talks to it over REST and raw gRPC.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import pytest

from pinecone_rag.server import LocalServer
from pinecone_rag.wire import messages as pb

from .engine_process import data_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import httpx

from .durability_support import (
    DIM,
    HEADERS,
    assert_record,
    client,
    create_index,
    data_url,
    f32,
    fetch_all,
    report,
    stats,
)

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
    started = time.monotonic()
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
    report(
        "test_restart_keeps_records_namespaces_deletes_and_ports",
        started,
        cycles=2,
        records_verified=2 * (sum(len(e.records) for e in namespaces.values()) + 30),
        records_lost=0,
    )


# --- (c) group commit: many concurrent writers, one namespace -----------------------------------------------


@pytest.fixture
def fresh_index(control: httpx.Client) -> Iterator[dict[str, Any]]:
    name = f"gc-{uuid.uuid4().hex[:10]}"
    yield create_index(control, name)
    control.delete(f"/indexes/{name}")


def test_group_commit_concurrent_writers(fresh_index: dict[str, Any]) -> None:
    started = time.monotonic()
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
    report(
        "test_group_commit_concurrent_writers",
        started,
        acknowledged_writes=total_requests,
        records_verified=total_requests * per_request,
        records_lost=0,
    )


def test_concurrent_writers_to_many_namespaces_then_restart(tmp_path: Path) -> None:
    """Writers on several namespaces at once; after a clean stop every acknowledged record is back."""
    started = time.monotonic()
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
    report(
        "test_concurrent_writers_to_many_namespaces_then_restart",
        started,
        cycles=1,
        acknowledged_writes=60,
        records_verified=600,
        records_lost=0,
    )

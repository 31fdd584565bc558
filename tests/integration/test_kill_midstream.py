"""``kill -9`` of the local engine in the middle of a write stream: no acknowledged write is lost.

Every test runs a real server on loopback (port 0) and talks to it over REST and raw gRPC.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import numpy as np
import pytest

from pinecone_rag.wire import messages as pb

from .engine_process import ServerProcess, data_port

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

from .durability_support import (
    DIM,
    HEADERS,
    client,
    create_index,
    data_url,
    f32,
    fetch_all,
    report,
    stats,
)

# --- (b) kill -9 in the middle of a write stream ------------------------------------------------------------
#
# Each cycle starts writers and kills the server (SIGKILL) at a random moment, restarts it on the same data
# directory and checks every write. The kill points covered, all running at once:
#
# * group commit: three writers (REST and gRPC) append to the default namespace concurrently, so the WAL
#   fsyncs batches of requests together;
# * cluster-file publish: the builder runs after 50 records or 50 ms of idleness, so it is nearly always
#   writing cluster files or flipping a manifest (and truncating the WAL behind it);
# * namespace creation and deletion: a churn thread creates namespaces, writes a batch to each and deletes
#   the oldest, so kills land in both operations;
# * deletes: a thread deletes whole batches acknowledged in earlier cycles.
#
# Rules checked after each restart: an acknowledged write is there (exact values and metadata) or, for a
# delete, gone; a write that was in flight is all there or not at all (a batch of 20 is 0 or 20 records);
# a namespace whose creation or deletion was acknowledged is there or gone, and one whose operation was in
# flight is either there with all its acknowledged writes or gone with all its records; counts, listings
# and exhaustive queries agree with the records found; the builder does not fail after the restart.

BATCH = 20
CYCLES = int(os.environ.get("PINECONE_RAG_STRESS_CYCLES", "3"))
# Build constantly and cluster small (see above); min_probe makes every query scan every cluster.
CRASHY_ENGINE = json.dumps(
    {
        "build_min_records": 50,
        "build_idle_s": 0.05,
        "target_cluster_size": 64,
        "flat_records": 0,
        "build_growth": 0.05,
        "build_stream_bytes": 0,  # build while writes stream in, not only after
        "min_probe": 1000,
    }
)
CHURN_PREFIX = "churn-"
CHURN_ALIVE = 2  # namespaces the churn thread keeps; it deletes the oldest beyond that
DELETES_PER_CYCLE = 30


@dataclass
class Batch:
    """One upsert request of ``BATCH`` records and what must be found of it after a restart.

    ``expect`` is ``"whole"`` (acknowledged), ``"absent"`` (deleted with an acknowledgement, or known not
    to have survived) or ``"either"`` (in flight at the kill: all of it or none of it).
    """

    key: str
    namespace: str
    ids: list[str]
    values: np.ndarray
    metadata: list[dict[str, Any]]
    expect: str = "either"
    deleting: bool = False  # a delete of the whole batch was sent (it is in doubt while expect is "either")


@dataclass
class ChurnNamespace:
    """A namespace of the churn thread; ``state`` is its last acknowledged (or in-flight) operation."""

    name: str
    state: str = "creating"  # creating -> created -> deleting -> deleted
    batches: list[str] = field(default_factory=list)


@dataclass
class Figures:
    """What the kill test did, for the stress report (``tests/stress_report.py``)."""

    cycles: int = 0
    acknowledged_writes: int = 0
    records_verified: int = 0
    acknowledged_records: int = 0
    records_lost: int = 0
    half_applied: int = 0
    batches_in_doubt: int = 0
    deletes_acknowledged: int = 0
    deletes_in_doubt: int = 0
    namespaces_created: int = 0
    namespaces_deleted: int = 0
    namespace_ops_in_doubt: int = 0


@dataclass
class Ledger:
    """What the writers sent, and what the server acknowledged."""

    batches: dict[str, Batch] = field(default_factory=dict)
    churn: dict[str, ChurnNamespace] = field(default_factory=dict)
    figures: Figures = field(default_factory=Figures)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    killed: threading.Event = field(default_factory=threading.Event)

    def register(self, batch: Batch) -> None:
        with self.lock:
            self.batches[batch.key] = batch

    def acknowledged(self, batch: Batch | None = None, expect: str = "whole") -> None:
        """Count one acknowledged write; a batch's expectation changes only once it is acknowledged."""
        with self.lock:
            self.figures.acknowledged_writes += 1
            if batch is not None:
                batch.expect = expect

    def acked_batches(self) -> int:
        with self.lock:
            return sum(1 for batch in self.batches.values() if batch.expect == "whole")

    def fail(self, message: str) -> None:
        """Record an error, unless the server was being killed (then the write is merely in doubt)."""
        if not self.killed.is_set():
            with self.lock:
                self.errors.append(message)


def _make_batch(key: str, namespace: str, rng: random.Random) -> Batch:
    ids = [f"{key}-r{i}" for i in range(BATCH)]
    values = np.array([[rng.uniform(-1, 1) for _ in range(DIM)] for _ in ids], dtype=np.float32)
    metadata = [{"batch": key, "position": float(i)} for i in range(BATCH)]
    return Batch(key, namespace, ids, values, metadata)


def _upsert_body(batch: Batch) -> dict[str, Any]:
    return {
        "namespace": batch.namespace,
        "vectors": [
            {"id": rid, "values": batch.values[i].tolist(), "metadata": batch.metadata[i]}
            for i, rid in enumerate(batch.ids)
        ],
    }


def _sent(ledger: Ledger, what: str, data: httpx.Client, method: str, path: str, **kwargs: Any) -> bool:
    """Send one request; False (and an error, unless the server is being killed) if it failed."""
    try:
        response = data.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        ledger.fail(f"{what}: {exc!r}")
        return False
    if response.status_code != 200:
        ledger.fail(f"{what}: HTTP {response.status_code} {response.text}")
        return False
    return True


def _rest_writer(url: str, namespace: str, prefix: str, ledger: Ledger, seed: float) -> None:
    rng = random.Random(seed)
    with client(url, timeout=20) as data:
        for number in range(100_000):
            batch = _make_batch(f"{prefix}-b{number}", namespace, rng)
            ledger.register(batch)
            if not _sent(ledger, batch.key, data, "POST", "/vectors/upsert", json=_upsert_body(batch)):
                return  # the server died: this batch is in doubt
            ledger.acknowledged(batch)


def _grpc_writer(target: str, namespace: str, prefix: str, ledger: Ledger, seed: float) -> None:
    rng = random.Random(seed)
    with grpc.insecure_channel(target) as channel:
        upsert = channel.unary_unary(
            "/VectorService/Upsert",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=pb.UpsertResponse.FromString,
        )
        for number in range(100_000):
            batch = _make_batch(f"{prefix}-b{number}", namespace, rng)
            ledger.register(batch)
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
            ledger.acknowledged(batch)


def _churner(url: str, prefix: str, ledger: Ledger, seed: float) -> None:
    """Delete the oldest namespace beyond ``CHURN_ALIVE``, create one, write a batch to it; again and again.

    Deleting first means every cycle deletes a namespace from an earlier cycle, one the builder has had
    time to publish cluster files for.
    """
    rng = random.Random(seed)
    with client(url, timeout=20) as data:
        for number in range(100_000):
            with ledger.lock:
                alive = [ns for ns in ledger.churn.values() if ns.state == "created"]
            if len(alive) > CHURN_ALIVE:
                doomed = alive[0]
                doomed.state = "deleting"
                if not _sent(ledger, f"delete {doomed.name}", data, "DELETE", f"/namespaces/{doomed.name}"):
                    return
                doomed.state = "deleted"
                ledger.acknowledged()
                with ledger.lock:
                    ledger.figures.namespaces_deleted += 1
            life = ChurnNamespace(f"{CHURN_PREFIX}{prefix}-{number}")
            with ledger.lock:
                ledger.churn[life.name] = life
            if not _sent(
                ledger, f"create {life.name}", data, "POST", "/namespaces", json={"name": life.name}
            ):
                return
            life.state = "created"
            ledger.acknowledged()
            with ledger.lock:
                ledger.figures.namespaces_created += 1
            batch = _make_batch(f"{prefix}-n{number}", life.name, rng)
            life.batches.append(batch.key)
            ledger.register(batch)
            if not _sent(ledger, batch.key, data, "POST", "/vectors/upsert", json=_upsert_body(batch)):
                return
            ledger.acknowledged(batch)


def _deleter(url: str, doomed: list[Batch], ledger: Ledger) -> None:
    """Delete whole acknowledged batches by id, one request each, spread over the cycle."""
    with client(url, timeout=20) as data:
        for batch in doomed:
            with ledger.lock:
                batch.expect, batch.deleting = "either", True
            body = {"ids": batch.ids, "namespace": batch.namespace}
            if not _sent(ledger, f"delete {batch.key}", data, "POST", "/vectors/delete", json=body):
                return
            ledger.acknowledged(batch, expect="absent")
            with ledger.lock:
                ledger.figures.deletes_acknowledged += 1
            time.sleep(0.01)  # so the deletes last into the kill instead of finishing first


def _list_namespaces(data: httpx.Client) -> set[str]:
    names: set[str] = set()
    token = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if token:
            params["paginationToken"] = token
        response = data.get("/namespaces", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        names.update(ns["name"] for ns in body["namespaces"])
        token = body.get("pagination", {}).get("next")
        if not token:
            return names


def _check_batches(batches: list[Batch], found: dict[str, Any], ledger: Ledger, problems: list[str]) -> int:
    """Check each batch against its expectation, then settle in-doubt batches; returns records present."""
    figures = ledger.figures
    present = 0
    for batch in batches:
        got = [rid for rid in batch.ids if rid in found]
        if 0 < len(got) < BATCH:
            figures.half_applied += 1
            problems.append(f"batch {batch.key} is half there ({len(got)}/{BATCH}, expected {batch.expect})")
        if batch.expect == "whole":
            figures.records_verified += BATCH
            if len(got) < BATCH:
                figures.records_lost += BATCH - len(got)
                problems.append(f"acknowledged batch {batch.key} lost {BATCH - len(got)} records")
        elif batch.expect == "absent" and got:
            problems.append(f"batch {batch.key} was deleted (or never acknowledged) but came back")
        for position, rid in enumerate(batch.ids):
            if rid in found:
                same_values = f32(found[rid]["values"]).tobytes() == batch.values[position].tobytes()
                if not same_values or found[rid].get("metadata") != batch.metadata[position]:
                    problems.append(f"{rid} has other values or metadata than written")
        if batch.expect == "either":
            # Settled now: what survived this restart is durable, what did not must never come back.
            batch.expect = "whole" if len(got) == BATCH else "absent"
        batch.deleting = False
        present += len(got)
    return present


def _verify(host: str, ledger: Ledger) -> list[str]:
    """Every rule of the header above, after a restart; returns the problems found (none, hopefully)."""
    problems: list[str] = []
    by_namespace: dict[str, list[Batch]] = {}
    for batch in ledger.batches.values():
        if not batch.namespace.startswith(CHURN_PREFIX):
            by_namespace.setdefault(batch.namespace, []).append(batch)
    counts: dict[str, int] = {}
    with client(data_url(host)) as data:
        listed = _list_namespaces(data)
        for namespace, batches in by_namespace.items():
            found = fetch_all(data, [rid for b in batches for rid in b.ids], namespace)
            present = _check_batches(batches, found, ledger, problems)
            if len(found) != present:
                problems.append(f"namespace {namespace!r} holds records nobody wrote")
            _check_queries_exact(data, namespace, found)
            counts[namespace or "__default__"] = present
        for life in list(ledger.churn.values()):
            batches = [ledger.batches[key] for key in life.batches]
            found = fetch_all(data, [rid for b in batches for rid in b.ids], life.name) if batches else {}
            there = life.name in listed
            if life.state in ("creating", "deleting"):
                ledger.figures.namespace_ops_in_doubt += 1
            if life.state == "created" and not there:
                problems.append(f"namespace {life.name} (created, acknowledged) is gone")
            elif life.state == "deleted" and there:
                problems.append(f"namespace {life.name} (deleted, acknowledged) is back")
            if not there:
                if found:
                    problems.append(f"namespace {life.name} is gone but {len(found)} of its records are not")
                for batch in batches:  # gone for good: its records must never come back either
                    del ledger.batches[batch.key]
                del ledger.churn[life.name]
                continue
            counts[life.name] = _check_batches(batches, found, ledger, problems)
            life.state = "created"
        body = stats(data)
        expected_counts = {ns: n for ns, n in counts.items() if n}
        if {ns: v["vectorCount"] for ns, v in body["namespaces"].items()} != expected_counts:
            problems.append(f"stats count {body['namespaces']}, records found {expected_counts}")
        if body["totalVectorCount"] != sum(counts.values()):
            problems.append(f"stats total {body['totalVectorCount']}, records found {sum(counts.values())}")
    return problems


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


def _start_writers(
    host: str, port: int, cycle: int, ledger: Ledger, rng: random.Random
) -> list[threading.Thread]:
    url = data_url(host)
    # Deletes target whole batches of earlier cycles (default namespace), so their outcome is clear-cut.
    with ledger.lock:
        candidates = [b for b in ledger.batches.values() if b.namespace == "" and b.expect == "whole"]
    doomed = rng.sample(candidates, min(DELETES_PER_CYCLE, len(candidates)))
    targets: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (_rest_writer, (url, "", f"c{cycle}-rest0", ledger, rng.random())),
        (_rest_writer, (url, "", f"c{cycle}-rest1", ledger, rng.random())),
        (_grpc_writer, (f"127.0.0.1:{port}", "", f"c{cycle}-grpc", ledger, rng.random())),
        (_rest_writer, (url, "side", f"c{cycle}-rest2", ledger, rng.random())),
        (_churner, (url, f"c{cycle}", ledger, rng.random())),
        (_deleter, (url, doomed, ledger)),
    ]
    threads = [threading.Thread(target=target, args=args) for target, args in targets]
    for thread in threads:
        thread.start()
    return threads


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_write(tmp_path: Path) -> None:
    seed = int(os.environ.get("PINECONE_RAG_STRESS_SEED", str(random.randrange(1 << 30))))
    print(f"kill -9 stress: seed {seed}, {CYCLES} cycles")
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    ledger = Ledger()
    started = time.monotonic()
    server = ServerProcess(data_dir, log, engine=CRASHY_ENGINE)
    try:
        with client(server.url) as control:
            host = create_index(control, "crashy")["host"]
        port = data_port(host)
        for cycle in range(CYCLES):
            acked_before = ledger.acked_batches()
            writers = _start_writers(host, port, cycle, ledger, rng)
            deadline = time.monotonic() + 30
            while ledger.acked_batches() < acked_before + 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert ledger.acked_batches() >= acked_before + 4, f"writers made no progress: {ledger.errors}"
            time.sleep(rng.uniform(0.0, 0.4))  # kill at a random moment of the stream
            assert not ledger.errors, ledger.errors
            ledger.killed.set()
            server.kill()
            for writer in writers:
                writer.join(timeout=60)
                assert not writer.is_alive()
            assert not ledger.errors, ledger.errors
            in_doubt = [b for b in ledger.batches.values() if b.expect == "either"]
            ledger.figures.batches_in_doubt += sum(1 for b in in_doubt if not b.deleting)
            ledger.figures.deletes_in_doubt += sum(1 for b in in_doubt if b.deleting)
            print(f"cycle {cycle}: {ledger.acked_batches()} batches acknowledged, {len(in_doubt)} in doubt")

            server = ServerProcess(data_dir, log, engine=CRASHY_ENGINE)
            with client(server.url) as control:
                response = control.get("/indexes/crashy")
                assert response.status_code == 200, response.text
                assert data_port(response.json()["host"]) == port, "the data port moved across kill -9"
            problems = _verify(host, ledger)
            ledger.figures.cycles = cycle + 1
            assert not problems, problems[:10]
            assert not server.build_failures(), server.build_failures()[:3]
            ledger.killed.clear()
    finally:
        server.stop()
        ledger.figures.acknowledged_records = sum(
            BATCH for batch in ledger.batches.values() if batch.expect == "whole"
        )
        # Written even when a check failed: the figures say how far the run got and what was lost.
        figures = asdict(ledger.figures)
        report("test_kill_9_mid_stream_loses_no_acknowledged_write", started, seed=seed, **figures)
    assert server.proc.returncode == 0, log.read_text()
    published = list((data_dir / "indexes").rglob("CURRENT"))
    assert published, "the index builder never published a manifest during the run"

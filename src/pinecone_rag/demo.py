"""``pinecone-rag demo``: the engine end to end over its real HTTP API, with timings.

Starts the local engine, creates an index, upserts seeded random vectors in batches, queries them
(plain and filtered), checks the answers against an exact numpy search, restarts the engine on the same
data and checks that nothing was lost.
"""

from __future__ import annotations

import socket
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np

from pinecone_rag.server import LocalServer

# Without TCP_NODELAY, headers and body leave in separate segments and delayed ACKs add ~40 ms per request.
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
_HEADERS = {"Api-Key": "local-demo", "X-Pinecone-Api-Version": "2025-10"}


def _step(label: str, started: float) -> None:
    print(f"  {label:<52} {1000 * (time.perf_counter() - started):8.1f} ms", flush=True)


def _client(base_url: str) -> httpx.Client:
    transport = httpx.HTTPTransport(socket_options=_SOCKET_OPTIONS)
    return httpx.Client(base_url=base_url, headers=_HEADERS, timeout=60, transport=transport)


def run_demo(data_dir: str | None, *, count: int = 5000, dimension: int = 384, batch: int = 200) -> int:
    """Run the demo and return a process exit code (0 when every check passed)."""
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((count, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    genres = np.array(["docs", "blog", "paper", "code"])[rng.integers(0, 4, count)]
    with ExitStack() as stack:
        root = Path(data_dir) if data_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        print(f"pinecone-rag demo: {count} vectors of dimension {dimension}, data in {root}")
        started = time.perf_counter()
        server = stack.enter_context(LocalServer(root, port=0))
        _step(f"started the engine at {server.url}", started)
        control = stack.enter_context(_client(server.url))

        started = time.perf_counter()
        control.delete("/indexes/demo")
        created = control.post(
            "/indexes",
            json={
                "name": "demo",
                "dimension": dimension,
                "metric": "cosine",
                "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
            },
        )
        created.raise_for_status()
        host = created.json()["host"]
        _step(f"created index 'demo' (data plane at {host})", started)
        data = stack.enter_context(_client(host))

        started = time.perf_counter()
        for start in range(0, count, batch):
            rows = range(start, min(start + batch, count))
            body = {
                "vectors": [
                    {
                        "id": f"doc-{i}",
                        "values": vectors[i].tolist(),
                        "metadata": {"genre": str(genres[i]), "n": i},
                    }
                    for i in rows
                ]
            }
            data.post("/vectors/upsert", json=body).raise_for_status()
        elapsed = time.perf_counter() - started
        _step(f"upserted {count} vectors over REST ({count / elapsed:,.0f} vectors/s)", started)

        queries = vectors[rng.integers(0, count, 20)] + 0.05 * rng.standard_normal((20, dimension)).astype(
            np.float32
        )
        started = time.perf_counter()
        hits = 0
        for q in queries:
            answer = data.post("/query", json={"vector": q.tolist(), "topK": 10}).json()
            got = {m["id"] for m in answer["matches"]}
            exact = np.argsort(-(vectors @ q / np.linalg.norm(q)))[:10]
            hits += len(got & {f"doc-{i}" for i in exact})
        _step(f"20 queries, top 10: recall {hits / 200:.2f} against exact numpy", started)

        started = time.perf_counter()
        answer = data.post(
            "/query",
            json={
                "vector": queries[0].tolist(),
                "topK": 5,
                "filter": {"genre": "paper"},
                "includeMetadata": True,
            },
        ).json()
        genres_seen = {m["metadata"]["genre"] for m in answer["matches"]}
        _step(f"filtered query {{'genre': 'paper'}} -> genres {sorted(genres_seen)}", started)

        started = time.perf_counter()
        server.stop()
        server.start()
        stats = httpx.post(f"{host}/describe_index_stats", headers=_HEADERS, json={}, timeout=60).json()
        _step(f"restarted on the same data: {stats['totalVectorCount']} vectors back", started)
        ok = hits == 200 and genres_seen == {"paper"} and stats["totalVectorCount"] == count
        print("all checks passed" if ok else "SOME CHECKS FAILED")
        return 0 if ok else 1

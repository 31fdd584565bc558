"""The client rides out a restart of the engine: ``kill -9`` in the middle of a long upsert stream.

Each test runs once per client flavour (sync/async x gRPC/REST) against ``pinecone-rag serve`` in a
subprocess (port 0, a temporary data dir):

1. a lazy generator of 20,000 small records is upserted in batches of 200, four in flight; when the
   generator has handed out 4,000 records the server is killed (SIGKILL) and started again on the same data
   dir, and the generator goes on only once the kill is done, so most of the stream meets a dead or
   restarting server;
2. the index's data-plane port is the same after the restart (the client's cached host stays valid);
3. the upsert reports every record written and no failed batch, with nobody but the client retrying;
4. every record is there with its exact values and metadata, and the counts are exact;
5. a fetch and a query issued while the server is down again answer correctly once it is back.

The gRPC client first dials the engine's direct gRPC port, which moves at each start: it must move to the
(stable) data-plane port by itself. Each test takes a few seconds; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from pinecone_rag import AsyncPineconeClient, PineconeClient

from .engine_process import ServerProcess, data_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KEY = "restart-key"
HEADERS = {"Api-Key": KEY, "X-Pinecone-Api-Version": "2025-10"}
COMBOS = [("sync", "grpc"), ("sync", "rest"), ("async", "grpc"), ("async", "rest")]
DIM = 8
RECORDS = 20_000
KILL_AT = 4_000
BATCH = 200
IN_FLIGHT = 4
FETCH_PAGE = 1_000
WAIT = 60.0  # the deadline of any one wait; the tests finish far sooner


class Plane:
    """One client flavour behind one call shape: ``submit`` returns a ``concurrent.futures.Future``.

    The async flavour runs its client on an event loop of its own thread, so the test thread stays free to
    kill and restart the server while calls are in flight, exactly as with the sync flavour.
    """

    def __init__(self, mode: str, transport: str, control_url: str) -> None:
        self.mode = mode
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="restart-test")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.client: PineconeClient | AsyncPineconeClient
        if mode == "async":
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="restart-test-loop", daemon=True
            )
            self._thread.start()
            self.client = self._await(self._make_async(transport, control_url))
        else:
            self.client = PineconeClient(KEY, control_url, transport=transport)  # type: ignore[arg-type]
        self.index: Any = None

    @staticmethod
    async def _make_async(transport: str, control_url: str) -> AsyncPineconeClient:
        return AsyncPineconeClient(KEY, control_url, transport=transport)  # type: ignore[arg-type]

    def _await(self, awaitable: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(awaitable, self._loop).result(WAIT)

    def open_index(self, name: str) -> None:
        """Resolve the index (one describe_index on the control plane; the host is cached after that)."""
        self.index = (
            self._await(self.client.index(name)) if self._loop is not None else self.client.index(name)
        )

    def submit(self, method: str, *args: Any, **kwargs: Any) -> Future[Any]:
        """Start ``index.<method>(*args, **kwargs)`` in the background."""
        call = getattr(self.index, method)
        if self._loop is not None:
            return asyncio.run_coroutine_threadsafe(call(*args, **kwargs), self._loop)
        return self._pool.submit(call, *args, **kwargs)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``index.<method>(*args, **kwargs)``, waited for."""
        return self.submit(method, *args, **kwargs).result(WAIT)

    def close(self) -> None:
        if isinstance(self.client, AsyncPineconeClient):
            self._await(self.client.aclose())
        else:
            self.client.close()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(WAIT)
            self._loop.close()
        self._pool.shutdown(wait=True)


class Stream:
    """``RECORDS`` records made lazily; at ``KILL_AT`` it says so and waits until the server is killed."""

    def __init__(self) -> None:
        rng = np.random.default_rng(20251206)
        self.values = rng.standard_normal((RECORDS, DIM), dtype=np.float32)
        self.ids = [f"doc-{i // 10}#{i % 10}" for i in range(RECORDS)]
        self.reached = threading.Event()
        self.killed = threading.Event()

    @staticmethod
    def metadata(i: int) -> dict[str, Any]:
        return {"doc": f"doc-{i // 10}", "chunk": float(i % 10)}

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, dict[str, Any]]]:
        for i in range(RECORDS):
            if i == KILL_AT:
                self.reached.set()
                # Runs on the client's worker (or event-loop) thread: the sends in flight stay in flight.
                assert self.killed.wait(WAIT), "the test never killed the server"
            yield self.ids[i], self.values[i], self.metadata(i)


def _create_index(control_url: str, name: str) -> str:
    body = {
        "name": name,
        "dimension": DIM,
        "metric": "cosine",
        "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
    }
    response = httpx.post(f"{control_url}/indexes", json=body, headers=HEADERS, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["host"])


def _host_of(control_url: str, name: str) -> str:
    response = httpx.get(f"{control_url}/indexes/{name}", headers=HEADERS, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["host"])


def _check_every_record(plane: Plane, stream: Stream) -> None:
    for start in range(0, RECORDS, FETCH_PAGE):
        ids = stream.ids[start : start + FETCH_PAGE]
        fetched = plane.call("fetch", ids).vectors
        assert sorted(fetched) == sorted(ids), f"{len(set(ids) - set(fetched))} records missing"
        for offset, record_id in enumerate(ids):
            record = fetched[record_id]
            assert record.values is not None
            assert record.values.tobytes() == stream.values[start + offset].tobytes(), record_id
            assert record.metadata == stream.metadata(start + offset), record_id
    stats = plane.call("describe_index_stats")
    assert stats.total_vector_count == RECORDS
    assert {name: ns.vector_count for name, ns in stats.namespaces.items()} == {"__default__": RECORDS}


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("mode", "transport"), COMBOS, ids=["-".join(combo) for combo in COMBOS])
def test_client_survives_kill_9_and_restart_mid_stream(tmp_path: Path, mode: str, transport: str) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    server = ServerProcess(data_dir, log)
    plane: Plane | None = None
    try:
        host = _create_index(server.url, "restart")
        plane = Plane(mode, transport, server.url)
        plane.open_index("restart")

        # 1. Kill -9 in the middle of the stream, restart on the same data dir.
        stream = Stream()
        upsert = plane.submit(
            "upsert", stream, batch_size=BATCH, max_concurrency=IN_FLIGHT, show_progress=False
        )
        assert stream.reached.wait(WAIT), "the stream never reached the kill point"
        server.kill()
        stream.killed.set()
        server = ServerProcess(data_dir, log)
        # 2. The data-plane port is stable across the restart (the client's cached host is still right).
        assert data_port(_host_of(server.url, "restart")) == data_port(host)

        # 3. The client retried on its own: every record reported written, no failed batch.
        result = upsert.result(WAIT)
        assert result.failed == [], [(len(f.ids), repr(f.error)) for f in result.failed]
        assert result.upserted_count == RECORDS
        # 4. Every record is there, exact; the counts are exact.
        _check_every_record(plane, stream)

        # 5. Reads issued while the server is down answer once it is back.
        server.kill()
        probe = 12_345
        fetch = plane.submit("fetch", [stream.ids[probe]])
        query = plane.submit("query", stream.values[probe], top_k=3, include_metadata=True, scan_factor=4.0)
        time.sleep(0.2)  # the calls are now retrying against a dead port
        assert not fetch.done(), fetch.exception()
        assert not query.done(), query.exception()
        server = ServerProcess(data_dir, log)
        fetched = fetch.result(WAIT).vectors[stream.ids[probe]]
        assert fetched.values is not None
        assert fetched.values.tobytes() == stream.values[probe].tobytes()
        matches = query.result(WAIT).matches
        assert matches[0].id == stream.ids[probe]
        assert matches[0].metadata == stream.metadata(probe)
        assert matches[0].score == pytest.approx(1.0, abs=1e-5)
    finally:
        if plane is not None:
            plane.close()
        server.stop()
    assert not server.build_failures(), server.build_failures()[:3]

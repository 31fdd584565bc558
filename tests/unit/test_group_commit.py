"""Group commit with pipelined apply: concurrent writes are applied in LSN order, each acknowledged once."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from pinecone_rag.server.blobstore import LocalBlobStore
from pinecone_rag.server.cluster_cache import ClusterCache
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.namespace import Namespace, NamespaceInfo, WriteResult
from pinecone_rag.server.ops import DeleteIdsOp, UpsertOp
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    from pathlib import Path

SPEC = IndexSpec(4, "dotproduct", "dense")
WRITERS = 8
WRITES_EACH = 40


def open_namespace(path: Path) -> Namespace:
    store = LocalBlobStore(path.parent / "blobs")
    cache = ClusterCache(store, 1 << 20)
    return Namespace(path, NamespaceInfo("docs"), SPEC, store=store, cache=cache, config=EngineConfig())


def test_concurrent_writes_apply_in_lsn_order_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ns"
    store = LocalBlobStore(tmp_path / "blobs")
    namespace = Namespace.create(
        path,
        NamespaceInfo("docs"),
        SPEC,
        store=store,
        cache=ClusterCache(store, 1 << 20),
        config=EngineConfig(builder=False),
    )
    results: dict[int, list[tuple[WriteResult, float]]] = {}
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> None:
        mine = results[number] = []
        start.wait()
        for step in range(WRITES_EACH):
            value = float(number * 1000 + step)
            # Every writer overwrites the same id: the record left is the write with the highest LSN.
            batch = UpsertBatch(
                ["shared", f"own-{number}-{step}"],
                np.full((2, 4), value, dtype=np.float32),
                [None, None],
                [{"v": value}, None],
            )
            mine.append((namespace.write(UpsertOp(batch)), value))
            if step % 10 == 9:
                mine.append((namespace.write(DeleteIdsOp([f"own-{number}-{step - 1}"])), -1.0))

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    acknowledged = [item for mine in results.values() for item in mine]
    lsns = sorted(result.lsn for result, _ in acknowledged)
    assert lsns == list(range(1, len(acknowledged) + 1))  # every write acknowledged once, no gap
    assert namespace.applied_lsn == len(acknowledged)
    last_upsert = max((item for item in acknowledged if item[1] >= 0), key=lambda item: item[0].lsn)

    def check(state_of: Namespace) -> None:
        shared = state_of.state.get("shared")
        assert shared is not None
        assert shared.values is not None
        assert shared.values[0] == last_upsert[1]
        assert shared.metadata == {"v": last_upsert[1]}
        expected = WRITERS * WRITES_EACH - WRITERS * (WRITES_EACH // 10) + 1
        assert len(state_of.state.sorted_ids()) == expected

    check(namespace)
    namespace.close()
    reopened = open_namespace(path)
    check(reopened)
    reopened.close()

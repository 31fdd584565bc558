"""IndexEngine.wait_until_indexed: it waits for the builds it asks for, and asks for no more."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pinecone_rag.server.engine import IndexEngine
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    from pathlib import Path

DIMENSION = 32


def batch(start: int, count: int) -> UpsertBatch:
    dense = np.random.default_rng(start).standard_normal((count, DIMENSION)).astype(np.float32)
    return UpsertBatch([f"r{i}" for i in range(start, start + count)], dense, [None] * count, [None] * count)


def test_no_build_request_outlives_the_wait(tmp_path: Path) -> None:
    # Only requested builds run: no idle build, no threshold within reach.
    config = EngineConfig(build_idle_s=3600.0, build_min_records=1_000_000, freshness_max_records=2_000_000)
    engine = IndexEngine(tmp_path, IndexSpec(DIMENSION, "cosine", "dense"), config)
    try:
        # Enough records for a build that outlasts the wait's 5 ms polls (each used to ask again).
        engine.upsert("docs", batch(0, 30_000))
        assert engine.wait_until_indexed(120)
        namespace = engine._existing("docs")
        assert namespace is not None
        indexed = namespace.indexed_lsn
        engine.upsert("docs", batch(30_000, 1))
        # A request left over from the wait would make the builder fold this one record in at once.
        assert not namespace.build_requested
        assert not namespace.wants_build(namespace.last_write)
        assert namespace.indexed_lsn == indexed
    finally:
        engine.close()

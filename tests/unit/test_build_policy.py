"""When the builder folds a namespace's freshness layer into cluster files (Namespace.wants_build)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from pinecone_rag.server.blobstore import LocalBlobStore
from pinecone_rag.server.cluster_cache import ClusterCache
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.namespace import Namespace, NamespaceInfo
from pinecone_rag.server.ops import UpsertOp
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    from pathlib import Path

SPEC = IndexSpec(8, "cosine", "dense")
ROW_BYTES = 8 * 4


def namespace_with(tmp_path: Path, records: int, **config: float) -> Namespace:
    """A namespace holding ``records`` unindexed records, the last written just now."""
    store = LocalBlobStore(tmp_path / "blobs")
    engine = EngineConfig(builder=False, **config)  # type: ignore[arg-type]
    namespace = Namespace.create(
        tmp_path / "ns",
        NamespaceInfo("docs"),
        SPEC,
        store=store,
        cache=ClusterCache(store, 1 << 20),
        config=engine,
    )
    ids = [f"r{i}" for i in range(records)]
    dense = np.random.default_rng(0).standard_normal((records, 8)).astype(np.float32)
    namespace.write(UpsertOp(UpsertBatch(ids, dense, [None] * records, [None] * records)))
    return namespace


def test_a_stream_below_the_threshold_does_not_build(tmp_path: Path) -> None:
    namespace = namespace_with(tmp_path, 50, build_min_records=100, build_stream_bytes=0)
    assert not namespace.wants_build(namespace.last_write)
    namespace.close()


def test_without_a_stream_hold_off_the_threshold_builds_at_once(tmp_path: Path) -> None:
    namespace = namespace_with(tmp_path, 150, build_min_records=100, build_stream_bytes=0)
    assert namespace.wants_build(namespace.last_write)
    namespace.close()


def test_a_stream_holds_builds_off_until_the_layer_reaches_the_byte_bound(tmp_path: Path) -> None:
    config = {"build_min_records": 100, "build_stream_bytes": 200 * ROW_BYTES, "build_idle_s": 0.5}
    below = namespace_with(tmp_path / "below", 150, **config)
    # Streaming: the last write is recent, and 150 rows are under the 200-row bound.
    assert not below.wants_build(below.last_write + 0.1)
    # The stream paused: build now.
    assert below.wants_build(below.last_write + 0.5)
    below.close()
    reached = namespace_with(tmp_path / "reached", 200, **config)
    assert reached.wants_build(reached.last_write + 0.1)
    reached.close()


def test_a_stream_holds_builds_off_until_a_quarter_of_the_record_cap(tmp_path: Path) -> None:
    config = {"build_min_records": 100, "build_stream_bytes": 1 << 30, "freshness_max_records": 1000}
    below = namespace_with(tmp_path / "below", 249, **config)
    assert not below.wants_build(below.last_write)
    below.close()
    reached = namespace_with(tmp_path / "reached", 250, **config)
    assert reached.wants_build(reached.last_write)
    reached.close()


def test_a_requested_build_runs_during_a_stream(tmp_path: Path) -> None:
    namespace = namespace_with(tmp_path, 10, build_min_records=100)
    namespace.build_requested = True
    assert namespace.wants_build(namespace.last_write)
    namespace.close()


def test_build_stream_bytes_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="build_stream_bytes"):
        EngineConfig(build_stream_bytes=-1)

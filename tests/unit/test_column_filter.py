"""Filters over metadata columns give, row for row, what the per-record matcher gives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinecone_rag.server.blobstore import LocalBlobStore
from pinecone_rag.server.cluster_cache import ClusterCache
from pinecone_rag.server.cluster_file import write_cluster
from pinecone_rag.server.cluster_stats import metadata_columns
from pinecone_rag.server.column_filter import column_mask
from pinecone_rag.server.filters import filter_mask, parse_filter
from pinecone_rag.server.open_files import mapped_files_budget, raise_open_files_limit

from .test_planner import METADATA, filters_for

if TYPE_CHECKING:
    from pathlib import Path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(METADATA, min_size=1, max_size=30), data=st.data())
def test_column_mask_equals_filter_mask(records: list[dict[str, Any] | None], data: st.DataObject) -> None:
    raw = data.draw(filters_for(records))
    flt = parse_filter(raw)
    if flt is None:
        return
    expected = filter_mask(flt, records)
    got = column_mask(flt, metadata_columns(records), len(records))
    assert got.dtype == np.bool_
    assert got.tolist() == expected.tolist(), raw


def test_cache_evicts_least_recently_used_files_beyond_its_budget(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    for name in "abc":
        write_cluster(
            store,
            name,
            ids=[f"{name}{i}" for i in range(100)],
            dense=np.ones((100, 16), dtype=np.float32),
            sparse=None,
            metadata=[None] * 100,
            metric="cosine",
        )
    size = store.size("a")
    cache = ClusterCache(store, budget_bytes=2 * size)
    first = cache.get("a")
    cache.get("b")
    assert cache.get("a") is first  # a hit refreshes "a"
    cache.get("c")  # over budget: "b" is the least recently used
    assert cache.mapped_bytes == 2 * size
    assert cache.get("a") is first
    assert first.dense is not None
    assert float(first.dense.sum()) == 1600.0  # arrays stay readable whatever the cache does
    cache.forget({"a"})
    assert cache.get("a") is not first


def test_cache_also_bounds_the_number_of_mapped_files(tmp_path: Path) -> None:
    # Each mapping holds a file descriptor: many small clusters must not exhaust them.
    store = LocalBlobStore(tmp_path)
    for name in "abc":
        write_cluster(
            store,
            name,
            ids=[f"{name}{i}" for i in range(10)],
            dense=np.ones((10, 4), dtype=np.float32),
            sparse=None,
            metadata=[None] * 10,
            metric="cosine",
        )
    cache = ClusterCache(store, budget_bytes=1 << 30, max_files=2)
    first = cache.get("a")
    cache.get("b")
    cache.get("c")  # a third file: "a" is closed although the byte budget has room
    assert cache.mapped_bytes == store.size("b") + store.size("c")
    assert cache.get("a") is not first
    assert 64 <= mapped_files_budget() <= raise_open_files_limit()

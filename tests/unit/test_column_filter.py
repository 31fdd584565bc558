"""Filters over metadata columns give, row for row, what the per-record matcher gives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinecone_rag.server.blobstore import LocalBlobStore
from pinecone_rag.server.cluster_cache import ClusterCache
from pinecone_rag.server.cluster_file import write_cluster
from pinecone_rag.server.cluster_stats import _collect, _FieldAccumulator, metadata_columns
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


def _per_value(records: list[dict[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """What ``_collect`` gathers, by the per-value path alone."""
    fields: dict[str, _FieldAccumulator] = {}
    for row, record in enumerate(records):
        for name, value in (record or {}).items():
            if value is not None:
                fields.setdefault(name, _FieldAccumulator()).add(row, value)
    return {name: _slots(accumulator) for name, accumulator in fields.items()}


def _slots(accumulator: _FieldAccumulator) -> dict[str, Any]:
    return {slot: getattr(accumulator, slot) for slot in _FieldAccumulator.__slots__}


SAME_TYPE_COLUMNS = st.one_of(
    st.lists(st.fixed_dictionaries({"s": st.sampled_from(["a", "b", "c"])}), min_size=1, max_size=20),
    st.lists(st.fixed_dictionaries({"n": st.one_of(st.integers(-5, 5), st.floats(-9, 9))}), max_size=20),
    st.lists(st.fixed_dictionaries({"t": st.lists(st.sampled_from("aab"), max_size=3)}), max_size=20),
)


@settings(max_examples=150, deadline=None)
@given(records=st.one_of(st.lists(METADATA, max_size=30), SAME_TYPE_COLUMNS))
def test_collect_by_column_equals_value_by_value(records: list[dict[str, Any] | None]) -> None:
    got = {name: _slots(accumulator) for name, accumulator in _collect(records).items()}
    assert got == _per_value(records)
    assert list(got) == list(_per_value(records))  # fields in first-seen order too

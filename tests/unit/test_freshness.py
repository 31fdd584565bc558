"""Unit tests of the in-memory namespace state (pinecone_rag.server.freshness) against brute-force models."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from pinecone_rag.server.filters import parse_filter
from pinecone_rag.server.freshness import _COMPACT_MIN_DEAD, FreshnessState
from pinecone_rag.server.ops import (
    DeleteAllOp,
    DeleteFilterOp,
    DeleteIdsOp,
    Op,
    UpdateFilterOp,
    UpdateOp,
    UpsertOp,
)
from pinecone_rag.server.records import IndexSpec, Metric, ScoredRecord, SparseVector, UpsertBatch

# --- the reference model ------------------------------------------------------------------------------------


@dataclass
class Rec:
    values: np.ndarray | None
    sparse: SparseVector | None
    metadata: dict[str, Any] | None


def _norm_sparse(vec: SparseVector | None) -> SparseVector | None:
    return None if vec is None or len(vec.indices) == 0 else vec


def _merge(old: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any] | None:
    merged = {**(old or {}), **patch}
    return merged or None


class Model:
    """A dict of records with the semantics FreshnessState must have, and brute-force float64 search."""

    def __init__(self, spec: IndexSpec) -> None:
        self.spec = spec
        self.records: dict[str, Rec] = {}

    def _matching(self, raw_filter: dict[str, Any] | None) -> list[str]:
        flt = parse_filter(raw_filter)
        return [rid for rid, rec in self.records.items() if flt is None or flt.matches(rec.metadata)]

    def apply(self, op: Op) -> int:
        if isinstance(op, UpsertOp):
            batch = op.batch
            for i, rid in enumerate(batch.ids):
                values = None if batch.dense is None else batch.dense[i].copy()
                self.records.pop(rid, None)
                self.records[rid] = Rec(values, _norm_sparse(batch.sparse[i]), batch.metadata[i])
            return len(batch.ids)
        if isinstance(op, DeleteIdsOp):
            return sum(self.records.pop(rid, None) is not None for rid in op.ids)
        if isinstance(op, DeleteFilterOp):
            hit = self._matching(op.filter)
            for rid in hit:
                del self.records[rid]
            return len(hit)
        if isinstance(op, DeleteAllOp):
            count = len(self.records)
            self.records.clear()
            return count
        if isinstance(op, UpdateOp):
            rec = self.records.get(op.id)
            if rec is None:
                return 0
            values = rec.values if op.values is None else np.asarray(op.values, np.float32).copy()
            sparse = rec.sparse if op.sparse is None else _norm_sparse(op.sparse)
            metadata = rec.metadata if op.set_metadata is None else _merge(rec.metadata, op.set_metadata)
            self.records[op.id] = Rec(values, sparse, metadata)
            return 1
        assert isinstance(op, UpdateFilterOp)
        hit = self._matching(op.filter)
        for rid in hit:
            self.records[rid].metadata = _merge(self.records[rid].metadata, op.set_metadata)
        return len(hit)

    def scores(
        self, vector: np.ndarray | None, sparse: SparseVector | None, raw_filter: dict[str, Any] | None
    ) -> dict[str, float]:
        out: dict[str, float] = {}
        q_sparse = (
            {}
            if sparse is None
            else dict(zip(sparse.indices.tolist(), sparse.values.astype(np.float64).tolist(), strict=True))
        )
        for rid in self._matching(raw_filter):
            rec = self.records[rid]
            score = 0.0
            if vector is not None and rec.values is not None:
                x = rec.values.astype(np.float64)
                q = vector.astype(np.float64)
                if self.spec.metric == "cosine":
                    score = float(x @ q / (np.linalg.norm(x) * np.linalg.norm(q)))
                elif self.spec.metric == "euclidean":
                    score = float(((x - q) ** 2).sum())
                else:
                    score = float(x @ q)
            if sparse is not None:
                r_sparse = (
                    {}
                    if rec.sparse is None
                    else dict(zip(rec.sparse.indices.tolist(), rec.sparse.values.tolist(), strict=True))
                )
                overlap = set(r_sparse) & set(q_sparse)
                if self.spec.is_sparse and not overlap:
                    continue  # sparse indexes drop records that share no dimension with the query
                score += sum(r_sparse[i] * q_sparse[i] for i in overlap)
            out[rid] = score
        return out


def _tolerance(reference: float) -> float:
    return 2e-3 + 2e-4 * abs(reference)


def check_search(
    state: FreshnessState,
    model: Model,
    *,
    vector: np.ndarray | None = None,
    sparse: SparseVector | None = None,
    top_k: int = 10,
    raw_filter: dict[str, Any] | None = None,
    include_values: bool = True,
    include_metadata: bool = True,
) -> list[ScoredRecord]:
    """Run a search and check it against the model, tolerating float32 rounding and ties."""
    results = state.search(
        vector=vector,
        sparse=sparse,
        top_k=top_k,
        flt=parse_filter(raw_filter),
        include_values=include_values,
        include_metadata=include_metadata,
    )
    reference = model.scores(vector, sparse, raw_filter)
    ascending = model.spec.metric == "euclidean"
    assert len(results) == min(top_k, len(reference))
    ids = [r.record.id for r in results]
    assert len(set(ids)) == len(ids), "an id appears twice in the results"
    for result in results:
        want = reference[result.record.id]  # KeyError: a filtered-out, deleted or dropped record
        assert abs(result.score - want) <= _tolerance(want), (result.record.id, result.score, want)
        rec = model.records[result.record.id]
        if include_values:
            if rec.values is None:
                assert result.record.values is None
            else:
                assert result.record.values is not None
                assert result.record.values.tobytes() == rec.values.tobytes()
            assert_sparse_equal(result.record.sparse, rec.sparse)
        else:
            assert result.record.values is None
            assert result.record.sparse is None
        assert result.record.metadata == (rec.metadata if include_metadata else None)
    got = [r.score for r in results]
    # Sorted best first.
    for a, b in itertools.pairwise(got):
        assert (a <= b + _tolerance(b)) if ascending else (a + _tolerance(a) >= b)
    # Nothing better was left out: the scores are the best len(results) reference scores.
    best = sorted(reference.values(), reverse=not ascending)[: len(results)]
    ordered = sorted(got, reverse=not ascending)
    for have, want in zip(ordered, best, strict=True):
        assert abs(have - want) <= _tolerance(want), (ordered, best)
    return results


def assert_sparse_equal(actual: SparseVector | None, expected: SparseVector | None) -> None:
    if expected is None:
        assert actual is None
        return
    assert actual is not None
    assert actual.indices.dtype == np.uint32
    assert actual.values.dtype == np.float32
    assert actual.indices.tobytes() == np.asarray(expected.indices, np.uint32).tobytes()
    assert actual.values.tobytes() == np.asarray(expected.values, np.float32).tobytes()


def assert_same_contents(state: FreshnessState, model: Model) -> None:
    assert len(state) == len(model.records)
    assert state.sorted_ids() == sorted(model.records)
    for rid, rec in model.records.items():
        got = state.get(rid)
        assert got is not None, rid
        assert got.id == rid
        if rec.values is None:
            assert got.values is None
        else:
            assert got.values is not None
            assert got.values.tobytes() == rec.values.tobytes()
        assert_sparse_equal(got.sparse, rec.sparse)
        assert got.metadata == rec.metadata
        assert state.metadata_of(rid) == rec.metadata


def both(state: FreshnessState, model: Model, op: Op) -> int:
    count = state.apply(op)
    assert count == model.apply(op)
    return count


# --- data ---------------------------------------------------------------------------------------------------

GENRES = ("drama", "comedy", "news", "sport")
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"genre": "drama"},
    {"year": {"$gte": 2010}},
    {"$or": [{"genre": {"$in": ["comedy", "news"]}}, {"flag": True}]},
    {"tags": {"$in": ["t1"]}, "year": {"$lt": 2015}},
    {"genre": {"$nin": ["drama", "comedy"]}, "flag": {"$ne": True}},
    {"missing": {"$exists": True}},
]


def make_metadata(rng: np.random.Generator, i: int) -> dict[str, Any] | None:
    if i % 11 == 0:
        return None
    return {
        "genre": GENRES[int(rng.integers(len(GENRES)))],
        "year": float(rng.integers(2000, 2025)),
        "flag": bool(rng.integers(2)),
        "tags": [f"t{int(t)}" for t in rng.integers(0, 4, size=int(rng.integers(0, 3)))],
    }


def make_sparse(rng: np.random.Generator, vocab: int = 60, max_nnz: int = 6) -> SparseVector:
    nnz = int(rng.integers(1, max_nnz + 1))
    indices = rng.choice(vocab, size=nnz, replace=False).astype(np.uint32)
    return SparseVector(indices, rng.standard_normal(nnz).astype(np.float32))


def make_batch(
    rng: np.random.Generator,
    ids: list[str],
    dim: int | None,
    *,
    sparse_share: float = 0.0,
) -> UpsertBatch:
    dense = None if dim is None else rng.standard_normal((len(ids), dim)).astype(np.float32)
    sparse = [make_sparse(rng) if rng.random() < sparse_share else None for _ in ids]
    metadata = [make_metadata(rng, int(rng.integers(1000))) for _ in ids]
    return UpsertBatch(list(ids), dense, sparse, metadata)


def fresh(metric: Metric, dim: int | None = 16, vector_type: str = "dense") -> tuple[FreshnessState, Model]:
    spec = IndexSpec(dim, metric, vector_type)  # type: ignore[arg-type]
    return FreshnessState(spec), Model(spec)


def populated(metric: Metric, count: int = 400, dim: int = 16, seed: int = 0) -> tuple[FreshnessState, Model]:
    rng = np.random.default_rng(seed)
    state, model = fresh(metric, dim)
    ids = [f"doc-{i}" for i in range(count)]
    for start in range(0, count, 100):
        sparse_share = 0.5 if metric == "dotproduct" else 0.0
        both(
            state, model, UpsertOp(make_batch(rng, ids[start : start + 100], dim, sparse_share=sparse_share))
        )
    return state, model


METRICS: list[Metric] = ["cosine", "dotproduct", "euclidean"]

# --- search against brute force -----------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("filter_index", range(len(FILTERS)))
def test_search_matches_brute_force(metric: Metric, filter_index: int) -> None:
    state, model = populated(metric)
    rng = np.random.default_rng(100 + filter_index)
    raw_filter = FILTERS[filter_index]
    for top_k in (1, 7, 60, 1000):
        query = rng.standard_normal(16).astype(np.float32)
        check_search(state, model, vector=query, top_k=top_k, raw_filter=raw_filter)


@pytest.mark.parametrize("metric", METRICS)
def test_search_without_values_or_metadata(metric: Metric) -> None:
    state, model = populated(metric, count=100)
    query = np.random.default_rng(3).standard_normal(16).astype(np.float32)
    check_search(state, model, vector=query, top_k=5, include_values=False, include_metadata=False)
    check_search(state, model, vector=query, top_k=5, include_values=True, include_metadata=False)
    check_search(state, model, vector=query, top_k=5, include_values=False, include_metadata=True)


def test_cosine_scores_known_values() -> None:
    state, _ = fresh("cosine", 2)
    dense = np.array([[2.0, 0.0], [0.0, 5.0], [-1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    state.apply(UpsertOp(UpsertBatch(["same", "orth", "opp", "diag"], dense, [None] * 4, [None] * 4)))
    results = state.search(
        vector=np.array([3.0, 0.0], np.float32),
        sparse=None,
        top_k=4,
        flt=None,
        include_values=False,
        include_metadata=False,
    )
    assert [r.record.id for r in results] == ["same", "diag", "orth", "opp"]
    assert [r.score for r in results] == pytest.approx([1.0, 2**-0.5, 0.0, -1.0], abs=1e-6)


def test_euclidean_scores_are_squared_distances_ascending() -> None:
    state, _ = fresh("euclidean", 2)
    dense = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0], [-6.0, -8.0]], dtype=np.float32)
    state.apply(UpsertOp(UpsertBatch(["far", "origin", "near", "farther"], dense, [None] * 4, [None] * 4)))
    results = state.search(
        vector=np.zeros(2, np.float32),
        sparse=None,
        top_k=4,
        flt=None,
        include_values=False,
        include_metadata=False,
    )
    assert [r.record.id for r in results] == ["origin", "near", "far", "farther"]
    assert [r.score for r in results] == pytest.approx([0.0, 1.0, 25.0, 100.0])


def test_dotproduct_scores_known_values() -> None:
    state, _ = fresh("dotproduct", 3)
    dense = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.0], [0.5, 0.5, 0.5]], dtype=np.float32)
    state.apply(UpsertOp(UpsertBatch(["a", "b", "c"], dense, [None] * 3, [None] * 3)))
    results = state.search(
        vector=np.array([1.0, 1.0, 1.0], np.float32),
        sparse=None,
        top_k=2,
        flt=None,
        include_values=False,
        include_metadata=False,
    )
    assert [(r.record.id, r.score) for r in results] == [("a", 6.0), ("c", 1.5)]


def test_empty_state_and_filter_matching_nothing() -> None:
    state, model = fresh("cosine", 4)
    query = np.ones(4, np.float32)
    assert (
        state.search(vector=query, sparse=None, top_k=5, flt=None, include_values=True, include_metadata=True)
        == []
    )
    both(state, model, UpsertOp(make_batch(np.random.default_rng(1), ["a", "b"], 4)))
    assert check_search(state, model, vector=query, raw_filter={"genre": "no-such-genre"}) == []


def test_ties_break_by_insertion_order() -> None:
    state, _ = fresh("dotproduct", 2)
    dense = np.ones((5, 2), dtype=np.float32)
    ids = ["e", "a", "d", "b", "c"]
    state.apply(UpsertOp(UpsertBatch(ids, dense, [None] * 5, [None] * 5)))
    results = state.search(
        vector=np.ones(2, np.float32),
        sparse=None,
        top_k=3,
        flt=None,
        include_values=False,
        include_metadata=False,
    )
    assert [r.record.id for r in results] == ["e", "a", "d"]


# --- overwrites ---------------------------------------------------------------------------------------------


def test_overwrite_within_one_batch_last_wins() -> None:
    state, model = fresh("dotproduct", 3)
    dense = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    batch = UpsertBatch(
        ["a", "b", "a", "a"],
        dense,
        [None, None, None, SparseVector(np.array([4], np.uint32), np.array([2.0], np.float32))],
        [{"v": 1.0}, {"v": 2.0}, {"v": 3.0}, {"v": 4.0}],
    )
    assert both(state, model, UpsertOp(batch)) == 4
    assert len(state) == 2
    got = state.get("a")
    assert got is not None
    assert got.values is not None
    assert got.values.tolist() == [5.0, 5.0, 5.0]
    assert got.metadata == {"v": 4.0}
    assert_same_contents(state, model)
    # The overwritten versions are gone from search too: exactly one hit for "a".
    results = check_search(state, model, vector=np.array([1.0, 0.0, 0.0], np.float32), top_k=10)
    assert [r.record.id for r in results] == ["a", "b"]
    assert results[0].score == pytest.approx(5.0)
    for raw_filter in ({"v": 1.0}, {"v": 3.0}):
        assert check_search(state, model, vector=np.ones(3, np.float32), raw_filter=raw_filter) == []


@pytest.mark.parametrize("metric", METRICS)
def test_overwrite_across_batches_last_wins(metric: Metric) -> None:
    state, model = populated(metric, count=200)
    rng = np.random.default_rng(9)
    ids = [f"doc-{i}" for i in range(0, 200, 3)]
    both(state, model, UpsertOp(make_batch(rng, ids, 16)))
    both(state, model, UpsertOp(make_batch(rng, ids[:10], 16)))
    assert len(state) == 200
    assert_same_contents(state, model)
    for raw_filter in FILTERS[:3]:
        check_search(
            state, model, vector=rng.standard_normal(16).astype(np.float32), top_k=50, raw_filter=raw_filter
        )


# --- deletes and updates ------------------------------------------------------------------------------------


def test_delete_ids_counts_only_existing() -> None:
    state, model = populated("cosine", count=50)
    assert both(state, model, DeleteIdsOp(["doc-1", "doc-2", "doc-2", "nope"])) == 2
    assert state.get("doc-1") is None
    assert "doc-2" not in state.sorted_ids()
    assert both(state, model, DeleteIdsOp(["doc-1"])) == 0
    assert_same_contents(state, model)
    check_search(state, model, vector=np.ones(16, np.float32), top_k=50)


@pytest.mark.parametrize("metric", METRICS)
def test_delete_by_filter(metric: Metric) -> None:
    state, model = populated(metric, count=300)
    count = both(state, model, DeleteFilterOp({"genre": "drama"}))
    assert count > 0
    assert all((rec.metadata or {}).get("genre") != "drama" for rec in model.records.values())
    assert both(state, model, DeleteFilterOp({"genre": "drama"})) == 0
    assert_same_contents(state, model)
    assert state.matching_ids(parse_filter({"genre": "drama"})) == []  # type: ignore[arg-type]
    rng = np.random.default_rng(5)
    for raw_filter in FILTERS:
        check_search(
            state, model, vector=rng.standard_normal(16).astype(np.float32), top_k=40, raw_filter=raw_filter
        )


def test_delete_all_then_reuse() -> None:
    state, model = populated("euclidean", count=120)
    assert both(state, model, DeleteAllOp()) == 120
    assert len(state) == 0
    assert state.sorted_ids() == []
    check_search(state, model, vector=np.ones(16, np.float32))
    both(state, model, UpsertOp(make_batch(np.random.default_rng(2), ["x", "y"], 16)))
    assert_same_contents(state, model)
    check_search(state, model, vector=np.ones(16, np.float32))


def test_update_values_sparse_and_metadata_merge() -> None:
    state, model = fresh("dotproduct", 3)
    start = UpsertBatch(
        ["a", "b"],
        np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32),
        [SparseVector(np.array([1, 2], np.uint32), np.array([1.0, 2.0], np.float32)), None],
        [{"keep": "yes", "n": 1.0}, None],
    )
    both(state, model, UpsertOp(start))
    # Values only: sparse values and metadata stay.
    assert both(state, model, UpdateOp("a", np.array([0.0, 0.0, 9.0], np.float32), None, None)) == 1
    got = state.get("a")
    assert got is not None
    assert got.values is not None
    assert got.values.tolist() == [0.0, 0.0, 9.0]
    assert got.sparse is not None
    assert got.sparse.indices.tolist() == [1, 2]
    assert got.metadata == {"keep": "yes", "n": 1.0}
    # Sparse only.
    new_sparse = SparseVector(np.array([7], np.uint32), np.array([-3.0], np.float32))
    assert both(state, model, UpdateOp("a", None, new_sparse, None)) == 1
    # Metadata merge: new keys added, existing overwritten, others kept.
    assert both(state, model, UpdateOp("a", None, None, {"n": 2.0, "tags": ["x", "y"]})) == 1
    got = state.get("a")
    assert got is not None
    assert got.metadata == {"keep": "yes", "n": 2.0, "tags": ["x", "y"]}
    # Metadata onto a record without any.
    assert both(state, model, UpdateOp("b", None, None, {"first": True})) == 1
    # A missing id matches nothing.
    assert both(state, model, UpdateOp("ghost", np.ones(3, np.float32), None, {"x": "y"})) == 0
    assert state.get("ghost") is None
    assert_same_contents(state, model)
    results = check_search(
        state,
        model,
        vector=np.array([0.0, 0.0, 1.0], np.float32),
        sparse=SparseVector(np.array([7, 1], np.uint32), np.array([1.0, 1.0], np.float32)),
        top_k=2,
    )
    assert results[0].record.id == "a"
    assert results[0].score == pytest.approx(9.0 - 3.0)
    check_search(state, model, vector=np.ones(3, np.float32), raw_filter={"n": 1.0})


def test_update_does_not_share_metadata_with_the_op() -> None:
    state, _ = fresh("cosine", 2)
    metadata: dict[str, Any] = {"tags": ["a"]}
    state.apply(UpsertOp(UpsertBatch(["r"], np.ones((1, 2), np.float32), [None], [{"k": "v"}])))
    state.apply(UpdateOp("r", None, None, metadata))
    metadata["tags"].append("mutated")
    got = state.get("r")
    assert got is not None
    assert got.metadata == {"k": "v", "tags": ["a"]}


@pytest.mark.parametrize("metric", METRICS)
def test_update_by_filter(metric: Metric) -> None:
    state, model = populated(metric, count=200)
    raw_filter = {"genre": {"$in": ["news", "sport"]}}
    expected = len(model._matching(raw_filter))
    assert both(state, model, UpdateFilterOp(raw_filter, {"reviewed": True, "genre": "archived"})) == expected
    assert expected > 0
    assert_same_contents(state, model)
    assert both(state, model, UpdateFilterOp(raw_filter, {"reviewed": False})) == 0
    assert len(state.matching_ids(parse_filter({"genre": "archived"}))) == expected  # type: ignore[arg-type]
    check_search(state, model, vector=np.ones(16, np.float32), top_k=300, raw_filter={"reviewed": True})


def test_matching_ids_are_sorted() -> None:
    state, model = populated("cosine", count=150)
    flt = parse_filter({"flag": True})
    assert flt is not None
    assert state.matching_ids(flt) == sorted(model._matching({"flag": True}))


# --- compaction ---------------------------------------------------------------------------------------------


def _assert_compacted(state: FreshnessState) -> None:
    assert state._dead == 0
    assert state._alive.size == len(state)


@pytest.mark.parametrize("metric", METRICS)
def test_compaction_after_many_deletes_by_id(metric: Metric) -> None:
    state, model = populated(metric, count=3000, seed=4)
    rng = np.random.default_rng(11)
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    doomed = [f"doc-{i}" for i in rng.choice(3000, size=_COMPACT_MIN_DEAD + 500, replace=False)]
    # One big delete crosses the threshold and compacts at once.
    assert both(state, model, DeleteIdsOp(doomed[: _COMPACT_MIN_DEAD + 100])) == _COMPACT_MIN_DEAD + 100
    _assert_compacted(state)
    for start in range(_COMPACT_MIN_DEAD + 100, len(doomed), 100):
        both(state, model, DeleteIdsOp(doomed[start : start + 100]))
    assert state._alive.size == len(state) + state._dead
    assert_same_contents(state, model)
    for query in queries:
        for raw_filter in (None, {"genre": "comedy"}, {"tags": {"$in": ["t2"]}}):
            check_search(state, model, vector=query, top_k=25, raw_filter=raw_filter)
    # The compacted state keeps working for writes.
    both(state, model, UpsertOp(make_batch(rng, [f"new-{i}" for i in range(50)] + doomed[:50], 16)))
    both(state, model, DeleteIdsOp(doomed[:10]))
    assert_same_contents(state, model)
    check_search(state, model, vector=queries[0], top_k=100)


def test_compaction_after_delete_by_filter_keeps_sparse_values() -> None:
    state, model = populated("dotproduct", count=3000, seed=8)
    both(state, model, DeleteFilterOp({"genre": {"$in": ["drama", "comedy", "news"]}}))
    _assert_compacted(state)
    assert_same_contents(state, model)
    rng = np.random.default_rng(12)
    for _ in range(5):
        check_search(
            state, model, vector=rng.standard_normal(16).astype(np.float32), sparse=make_sparse(rng), top_k=30
        )


def test_compaction_through_overwrites_and_updates() -> None:
    state, model = populated("dotproduct", count=1500, seed=6)
    rng = np.random.default_rng(13)
    ids = [f"doc-{i}" for i in range(1500)]
    for _ in range(2):
        for start in range(0, 1500, 500):
            both(state, model, UpsertOp(make_batch(rng, ids[start : start + 500], 16, sparse_share=0.5)))
    for rid in ids[:300]:
        both(state, model, UpdateOp(rid, None, make_sparse(rng), {"updated": True}))
    assert state._alive.size < 2 * 1500 + 300, "tombstones were never compacted"
    assert_same_contents(state, model)
    for _ in range(5):
        check_search(
            state,
            model,
            vector=rng.standard_normal(16).astype(np.float32),
            sparse=make_sparse(rng),
            top_k=40,
            raw_filter={"updated": True} if rng.random() < 0.5 else None,
        )


def test_explicit_compaction_preserves_results() -> None:
    state, model = populated("dotproduct", count=2000, seed=2)
    rng = np.random.default_rng(21)
    # Few enough deletes that nothing compacts on its own.
    both(state, model, DeleteIdsOp([f"doc-{i}" for i in range(0, 2000, 5)]))
    assert state._dead == 400
    queries = [
        (rng.standard_normal(16).astype(np.float32), make_sparse(rng) if i % 2 else None) for i in range(6)
    ]

    def run() -> list[list[tuple[str, float]]]:
        return [
            [
                (r.record.id, r.score)
                for r in check_search(state, model, vector=q, sparse=s, top_k=30, raw_filter=f)
            ]
            for q, s in queries
            for f in (None, {"flag": False})
        ]

    before = run()
    state.compact()
    _assert_compacted(state)
    after = run()
    for old, new in zip(before, after, strict=True):
        assert [rid for rid, _ in old] == [rid for rid, _ in new]
        assert [s for _, s in old] == pytest.approx([s for _, s in new], rel=1e-5, abs=1e-5)
    assert_same_contents(state, model)


# --- sparse and hybrid --------------------------------------------------------------------------------------


def test_sparse_index_scores_and_drops_zero_overlap() -> None:
    state, model = fresh("dotproduct", None, "sparse")

    def sp(pairs: dict[int, float]) -> SparseVector:
        return SparseVector(np.array(list(pairs), np.uint32), np.array(list(pairs.values()), np.float32))

    batch = UpsertBatch(
        ["a", "b", "c", "d"],
        None,
        [sp({1: 1.0, 5: 2.0}), sp({5: -1.0, 9: 4.0}), sp({100: 1.0}), sp({9: 0.0})],
        [{"g": "x"}, {"g": "y"}, None, {"g": "x"}],
    )
    both(state, model, UpsertOp(batch))
    query = sp({5: 1.0, 9: 0.5})
    results = check_search(state, model, sparse=query, top_k=10)
    # "c" shares no dimension with the query: dropped, although top_k leaves room for it. "d" overlaps
    # (with a zero weight) and stays, with score 0.
    assert [(r.record.id, r.score) for r in results] == [("a", 2.0), ("b", 1.0), ("d", 0.0)]
    got = state.get("a")
    assert got is not None
    assert got.values is None
    assert check_search(state, model, sparse=query, top_k=10, raw_filter={"g": "x"})[0].record.id == "a"
    assert check_search(state, model, sparse=sp({77: 1.0}), top_k=10) == []
    assert check_search(state, model, sparse=sp({1: 1.0}), top_k=10)[0].score == 1.0


def test_sparse_index_brute_force() -> None:
    state, model = fresh("dotproduct", None, "sparse")
    rng = np.random.default_rng(17)
    for start in range(0, 600, 200):
        ids = [f"s{i}" for i in range(start, start + 200)]
        sparse = [make_sparse(rng, vocab=200, max_nnz=10) for _ in ids]
        metadata = [make_metadata(rng, i) for i in range(len(ids))]
        both(state, model, UpsertOp(UpsertBatch(ids, None, sparse, metadata)))
    both(state, model, DeleteIdsOp([f"s{i}" for i in range(0, 600, 7)]))
    both(state, model, UpdateOp("s1", None, make_sparse(rng, vocab=200), {"genre": "news"}))
    for raw_filter in FILTERS[:4]:
        for top_k in (1, 10, 1000):
            check_search(
                state,
                model,
                sparse=make_sparse(rng, vocab=200, max_nnz=8),
                top_k=top_k,
                raw_filter=raw_filter,
            )


def test_hybrid_adds_dense_and_sparse_scores() -> None:
    state, model = fresh("dotproduct", 2)
    batch = UpsertBatch(
        ["dense-only", "both"],
        np.array([[1.0, 0.0], [0.0, 1.0]], np.float32),
        [None, SparseVector(np.array([3], np.uint32), np.array([2.0], np.float32))],
        [None, None],
    )
    both(state, model, UpsertOp(batch))
    query_sparse = SparseVector(np.array([3, 4], np.uint32), np.array([1.5, 1.0], np.float32))
    results = check_search(
        state, model, vector=np.array([1.0, 1.0], np.float32), sparse=query_sparse, top_k=5
    )
    # Records without sparse values stay in dense indexes (no zero-overlap drop there).
    assert [(r.record.id, r.score) for r in results] == [("both", 4.0), ("dense-only", 1.0)]


def test_hybrid_brute_force() -> None:
    state, model = populated("dotproduct", count=500, seed=31)
    rng = np.random.default_rng(32)
    both(state, model, DeleteFilterOp({"genre": "sport"}))
    for raw_filter in FILTERS[:4]:
        for top_k in (3, 100):
            check_search(
                state,
                model,
                vector=rng.standard_normal(16).astype(np.float32),
                sparse=make_sparse(rng),
                top_k=top_k,
                raw_filter=raw_filter,
            )

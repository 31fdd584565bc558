"""The engine against a plain dict, through builds and restarts (hypothesis state machine).

Random sequences of upserts, overwrites, updates, deletes by id and by filter, delete-all, index builds
and restarts run against an :class:`IndexEngine` and a dict model side by side. Clusters are tiny (target
size 4), so a few dozen records already go through flat, clustered, incremental, split and merge builds.
After every step the record count, the ids, every record's values and metadata, and full-scan query
results must equal the model's exactly.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pinecone_rag.server.engine import IndexEngine
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.filters import parse_filter
from pinecone_rag.server.records import IndexSpec, SparseVector, UpsertBatch

IDS = [f"id-{i}" for i in range(24)]
GROUPS = ["a", "b", "c"]
DIM = 4
CONFIG = EngineConfig(
    builder=False,  # the machine decides when to build
    build_min_records=1,
    freshness_max_records=10_000,
    target_cluster_size=4,
    flat_records=0,
    sparse_chunk_records=5,
    min_probe=1,
)

vectors = st.lists(st.integers(-3, 3), min_size=DIM, max_size=DIM).filter(any)
metadata = st.fixed_dictionaries({"g": st.sampled_from(GROUPS), "n": st.integers(0, 5)})


class EngineMachine(RuleBasedStateMachine):
    """One namespace of a dense index, compared with a dict of id -> (vector, metadata)."""

    metric = "cosine"

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="engine-machine-"))
        self.spec = IndexSpec(DIM, self.metric, "dense")
        self.engine = IndexEngine(self.directory, self.spec, CONFIG)
        self.model: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
        self.pending: tuple[Any, Any] | None = None  # a build started but not yet installed

    def teardown(self) -> None:
        self.engine.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # ------------------------------------------------------------------------------------------ writes
    @rule(records=st.lists(st.tuples(st.sampled_from(IDS), vectors, metadata), min_size=1, max_size=12))
    def upsert(self, records: list[tuple[str, list[int], dict[str, Any]]]) -> None:
        ids = [record_id for record_id, _, _ in records]
        dense = np.asarray([values for _, values, _ in records], dtype=np.float32)
        stored = [{"g": md["g"], "n": float(md["n"])} for _, _, md in records]
        self.engine.upsert("", UpsertBatch(ids, dense, [None] * len(ids), stored))
        for record_id, row, md in zip(ids, dense, stored, strict=True):
            self.model[record_id] = (row, md)

    @rule(ids=st.lists(st.sampled_from(IDS), max_size=6))
    def delete_ids(self, ids: list[str]) -> None:
        result = self.engine.delete_ids("", ids)
        expected = len({record_id for record_id in ids if record_id in self.model})
        if self.engine._existing(""):
            assert result.count == expected
        for record_id in ids:
            self.model.pop(record_id, None)

    @rule(group=st.sampled_from(GROUPS))
    def delete_by_filter(self, group: str) -> None:
        self.engine.delete_by_filter("", {"g": {"$eq": group}})
        for record_id in [rid for rid, (_, md) in self.model.items() if md["g"] == group]:
            del self.model[record_id]

    @rule()
    def delete_all(self) -> None:
        self.engine.delete_all("")
        self.model.clear()

    @rule(record_id=st.sampled_from(IDS), values=st.none() | vectors, n=st.none() | st.integers(6, 9))
    def update(self, record_id: str, values: list[int] | None, n: int | None) -> None:
        dense = None if values is None else np.asarray(values, dtype=np.float32)
        set_metadata = None if n is None else {"n": float(n)}
        self.engine.update("", record_id, values=dense, sparse=None, set_metadata=set_metadata)
        if record_id in self.model:
            old_values, old_md = self.model[record_id]
            new_md = old_md if set_metadata is None else {**old_md, **set_metadata}
            self.model[record_id] = (old_values if dense is None else dense, new_md)

    @rule(group=st.sampled_from(GROUPS), n=st.integers(6, 9))
    def update_by_filter(self, group: str, n: int) -> None:
        self.engine.update_by_filter("", {"g": {"$eq": group}}, {"n": float(n)}, dry_run=False)
        for record_id, (values, md) in list(self.model.items()):
            if md["g"] == group:
                self.model[record_id] = (values, {**md, "n": float(n)})

    @precondition(lambda self: self.pending is None)
    @rule()
    def build(self) -> None:
        namespace = self.engine._existing("")
        if namespace is not None:
            namespace.build()

    @precondition(lambda self: self.pending is None)
    @rule()
    def start_build(self) -> None:
        """Freeze and write a build, but install it only later: writes land in between."""
        namespace = self.engine._existing("")
        if namespace is None or namespace.state.active.empty:
            return
        with namespace.lock.write():
            work = namespace.state.freeze()
        published, _ = namespace._builder.build(namespace.state.published, work)
        self.pending = (namespace, published)

    @precondition(lambda self: self.pending is not None)
    @rule()
    def finish_build(self) -> None:
        assert self.pending is not None
        namespace, published = self.pending
        self.pending = None
        if namespace is not self.engine._existing(""):  # restarted or deleted meanwhile
            return
        with namespace.lock.write():
            namespace.state.install(published)

    @rule()
    def restart(self) -> None:
        self.pending = None  # an uninstalled build is lost; its manifest may already be current on disk
        self.engine.close()
        self.engine = IndexEngine(self.directory, self.spec, CONFIG)

    # ------------------------------------------------------------------------------------------- reads
    def _scores(self, query: np.ndarray) -> dict[str, float]:
        out = {}
        for record_id, (values, _) in self.model.items():
            if self.metric == "cosine":
                out[record_id] = float(values @ query / (np.linalg.norm(values) * np.linalg.norm(query)))
            else:
                out[record_id] = float(values @ query)
        return out

    @precondition(lambda self: bool(self.model))
    @rule(query=vectors, k=st.integers(1, 30), group=st.none() | st.sampled_from(GROUPS))
    def query_full_scan(self, query: list[int], k: int, group: str | None) -> None:
        vector = np.asarray(query, dtype=np.float32)
        flt = None if group is None else parse_filter({"g": {"$eq": group}})
        namespace = self.engine._existing("")
        assert namespace is not None
        with namespace.reading() as state:
            matches = state.search(
                vector=vector,
                sparse=None,
                top_k=k,
                flt=flt,
                include_values=True,
                include_metadata=True,
                full_scan=True,
            )
        scores = {
            rid: score
            for rid, score in self._scores(vector).items()
            if group is None or self.model[rid][1]["g"] == group
        }
        expected = sorted(scores.values(), reverse=True)[:k]
        assert [m.score for m in matches] == [np.float32(s) for s in expected] or np.allclose(
            [m.score for m in matches], expected, atol=1e-5
        )
        for match in matches:
            values, md = self.model[match.record.id]
            assert abs(match.score - scores[match.record.id]) < 1e-5
            assert match.record.metadata == md
            assert match.record.values is not None
            assert np.array_equal(match.record.values, values)

    @precondition(lambda self: bool(self.model))
    @rule(query=vectors)
    def query_planned(self, query: list[int]) -> None:
        """The default plan may miss records, but what it returns is right and in order."""
        vector = np.asarray(query, dtype=np.float32)
        matches, _ = self.engine.query(
            "",
            top_k=5,
            vector=vector,
            sparse=None,
            record_id=None,
            flt=None,
            include_values=False,
            include_metadata=False,
        )
        scores = self._scores(vector)
        assert len({m.record.id for m in matches}) == len(matches)
        assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
        for match in matches:
            assert abs(match.score - scores[match.record.id]) < 1e-5

    @invariant()
    def counts_ids_and_records_are_exact(self) -> None:
        assert self.engine.stats().get("", 0) == len(self.model)
        page = self.engine.list_ids("", prefix=None, limit=100, token=None)
        assert page.ids == sorted(self.model)
        records, _ = self.engine.fetch("", IDS)
        assert {r.id for r in records} == set(self.model)
        for record in records:
            values, md = self.model[record.id]
            assert record.values is not None
            assert np.array_equal(record.values, values)
            assert record.metadata == md
        matched = self.engine.update_by_filter("", {"g": {"$eq": "a"}}, {}, dry_run=True)
        assert matched.count == sum(md["g"] == "a" for _, md in self.model.values())


class DotproductEngineMachine(EngineMachine):
    """The same over a dotproduct index (clusters are assigned by euclidean distance there)."""

    metric = "dotproduct"


_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = _SETTINGS
TestDotproductEngineMachine = DotproductEngineMachine.TestCase
TestDotproductEngineMachine.settings = _SETTINGS


def test_sparse_index_builds_chunks_with_postings_and_answers_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    spec = IndexSpec(None, "dotproduct", "sparse")
    engine = IndexEngine(tmp_path, spec, CONFIG)
    vectors = {}
    for start in range(0, 60, 20):
        ids = [f"s{i}" for i in range(start, start + 20)]
        sparse = []
        for record_id in ids:
            indices = np.sort(rng.choice(50, size=4, replace=False)).astype(np.uint32)
            vector = SparseVector(indices, rng.random(4).astype(np.float32))
            vectors[record_id] = vector
            sparse.append(vector)
        engine.upsert("", UpsertBatch(ids, None, sparse, [None] * len(ids)))
        namespace = engine._existing("")
        assert namespace is not None
        namespace.build()
    engine.delete_ids("", ["s0", "s59"])
    del vectors["s0"], vectors["s59"]
    namespace = engine._existing("")
    assert namespace is not None
    namespace.build()
    assert engine.cluster_count("") >= 10  # chunks of 5 records
    file = namespace.state.published.file(namespace.state.published.cluster_ids[0])
    assert file.postings is not None
    query = SparseVector(
        np.asarray([3, 7, 11], dtype=np.uint32), np.asarray([1.0, 0.5, 2.0], dtype=np.float32)
    )
    matches, _ = engine.query(
        "",
        top_k=100,
        vector=None,
        sparse=query,
        record_id=None,
        flt=None,
        include_values=False,
        include_metadata=False,
    )

    def score(vector: SparseVector) -> float:
        weights = dict(zip(query.indices.tolist(), query.values.tolist(), strict=True))
        return sum(
            weights.get(i, 0.0) * v
            for i, v in zip(vector.indices.tolist(), vector.values.tolist(), strict=True)
        )

    expected = {rid: score(v) for rid, v in vectors.items() if set(v.indices.tolist()) & {3, 7, 11}}
    assert {m.record.id for m in matches} == set(expected)
    for match in matches:
        assert abs(match.score - expected[match.record.id]) < 1e-5
    engine.close()

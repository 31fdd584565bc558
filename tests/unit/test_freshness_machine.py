"""State-machine test of the freshness layer against a plain dict model."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pinecone_rag.server.freshness import FreshnessState
from pinecone_rag.server.ops import (
    DeleteAllOp,
    DeleteFilterOp,
    DeleteIdsOp,
    UpdateFilterOp,
    UpdateOp,
    UpsertOp,
)
from pinecone_rag.server.records import IndexSpec, SparseVector, UpsertBatch

from .test_freshness import Model, assert_same_contents, both, check_search

# --- a state machine against the dict model -----------------------------------------------------------------

DIM = 4
IDS = st.sampled_from([f"id{i}" for i in range(10)])
COMPONENT = st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])  # never a zero vector (cosine)
VALUES = st.lists(COMPONENT, min_size=DIM, max_size=DIM).map(lambda v: np.asarray(v, np.float32))
SPARSE = st.dictionaries(st.integers(0, 9), COMPONENT, min_size=1, max_size=4).map(
    lambda d: SparseVector(np.array(list(d), np.uint32), np.array(list(d.values()), np.float32))
)
METADATA = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"g": st.sampled_from(["a", "b", "c"])},
        optional={
            "n": st.sampled_from([1.0, 2.0, 3.0]),
            "tags": st.lists(st.sampled_from(["x", "y"]), max_size=2),
        },
    ),
)
MACHINE_FILTERS = st.sampled_from(
    [
        None,
        {"g": "a"},
        {"g": {"$ne": "b"}},
        {"n": {"$gte": 2.0}},
        {"tags": {"$in": ["x"]}},
        {"n": {"$exists": False}},
    ]
)


class FreshnessMachine(RuleBasedStateMachine):
    """Random writes and queries; FreshnessState must always agree with the dict model."""

    state: FreshnessState
    model: Model
    kind: str

    @initialize(kind=st.sampled_from(["cosine", "dotproduct", "euclidean", "hybrid", "sparse"]))
    def setup(self, kind: str) -> None:
        self.kind = kind
        if kind == "sparse":
            spec = IndexSpec(None, "dotproduct", "sparse")
        elif kind == "hybrid":
            spec = IndexSpec(DIM, "dotproduct", "dense")
        else:
            spec = IndexSpec(DIM, kind, "dense")  # type: ignore[arg-type]
        self.state = FreshnessState(spec)
        self.model = Model(spec)

    def _values(self, data: st.DataObject) -> np.ndarray | None:
        return None if self.kind == "sparse" else data.draw(VALUES)

    def _sparse(self, data: st.DataObject, *, required: bool) -> SparseVector | None:
        if self.kind == "sparse" and required:
            return data.draw(SPARSE)
        if self.kind in ("sparse", "hybrid"):
            return data.draw(st.one_of(st.none(), SPARSE))
        return None

    @rule(data=st.data(), ids=st.lists(IDS, min_size=1, max_size=6))
    def upsert(self, data: st.DataObject, ids: list[str]) -> None:
        rows = [self._values(data) for _ in ids]
        dense = None if self.kind == "sparse" else np.stack(rows).astype(np.float32)  # type: ignore[arg-type]
        sparse = [self._sparse(data, required=True) for _ in ids]
        metadata = [data.draw(METADATA) for _ in ids]
        both(self.state, self.model, UpsertOp(UpsertBatch(ids, dense, sparse, metadata)))

    @rule(ids=st.lists(IDS, max_size=4))
    def delete_ids(self, ids: list[str]) -> None:
        both(self.state, self.model, DeleteIdsOp(ids))

    @rule(raw_filter=MACHINE_FILTERS.filter(lambda f: f is not None))
    def delete_by_filter(self, raw_filter: dict[str, Any]) -> None:
        both(self.state, self.model, DeleteFilterOp(raw_filter))

    @rule()
    def delete_all(self) -> None:
        both(self.state, self.model, DeleteAllOp())

    @rule(data=st.data(), record_id=IDS)
    def update(self, data: st.DataObject, record_id: str) -> None:
        values = None if self.kind == "sparse" else data.draw(st.one_of(st.none(), VALUES))
        sparse = self._sparse(data, required=False)
        metadata = data.draw(
            st.one_of(st.none(), st.fixed_dictionaries({}, optional={"g": st.just("c"), "n": st.just(9.0)}))
        )
        both(self.state, self.model, UpdateOp(record_id, values, sparse, metadata or None))

    @rule(raw_filter=MACHINE_FILTERS.filter(lambda f: f is not None), patch=METADATA.filter(bool))
    def update_by_filter(self, raw_filter: dict[str, Any], patch: dict[str, Any]) -> None:
        both(self.state, self.model, UpdateFilterOp(raw_filter, patch))

    @rule()
    def compact(self) -> None:
        self.state.compact()

    @rule(data=st.data(), top_k=st.integers(1, 12), raw_filter=MACHINE_FILTERS)
    def query(self, data: st.DataObject, top_k: int, raw_filter: dict[str, Any] | None) -> None:
        vector = None if self.kind == "sparse" else data.draw(VALUES)
        sparse = self._sparse(data, required=True)
        check_search(self.state, self.model, vector=vector, sparse=sparse, top_k=top_k, raw_filter=raw_filter)

    @invariant()
    def same_contents(self) -> None:
        if hasattr(self, "state"):
            assert_same_contents(self.state, self.model)


FreshnessMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestFreshnessMachine = FreshnessMachine.TestCase

"""Unit tests of the query planner (pinecone_rag.server.planner)."""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinecone_rag.server.filters import Filter, parse_filter
from pinecone_rag.server.kmeans import assign, choose_k, train_centroids
from pinecone_rag.server.planner import (
    DEFAULT_MIN_PROBE,
    DEFAULT_PROBE_FRACTION,
    QueryPlan,
    may_match,
    plan_query,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy.typing as npt

    from pinecone_rag.server.planner import ClusterStatsLike
    from pinecone_rag.server.records import Metric

METRICS: tuple[Metric, ...] = ("cosine", "euclidean", "dotproduct")


# --- a reference implementation of cluster statistics ---------------------------------------------------


@dataclass(frozen=True)
class HashSet:
    """A bloom filter stand-in: one hash into a few buckets, so false positives are common."""

    buckets: frozenset[int]
    size: int

    @classmethod
    def of(cls, strings: set[str], size: int) -> HashSet:
        return cls(frozenset(cls.bucket(item, size) for item in strings), size)

    @staticmethod
    def bucket(value: str, size: int) -> int:
        return zlib.crc32(value.encode("utf-8", "surrogatepass")) % size

    def might_contain(self, value: str) -> bool:
        return self.bucket(value, self.size) in self.buckets


@dataclass(frozen=True)
class FieldStats:
    count: int
    min: float | None
    max: float | None
    values: frozenset[str] | None
    bloom: HashSet | None
    true_count: int
    false_count: int


@dataclass(frozen=True)
class ClusterStats:
    count: int
    fields: Mapping[str, FieldStats] = field(default_factory=dict)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def compute_stats(
    records: list[dict[str, Any] | None], *, value_limit: int = 64, bloom_size: int | None = 1024
) -> ClusterStats:
    """Statistics as FieldStatsLike documents them; above ``value_limit`` strings, a hash set (or none)."""
    fields: dict[str, FieldStats] = {}
    names = {name for record in records if record for name, value in record.items() if value is not None}
    for name in sorted(names):
        present = [record[name] for record in records if record and record.get(name) is not None]
        elements = [item for value in present for item in as_list(value)]
        numbers = [float(item) for item in elements if is_number(item)]
        strings = {item for item in elements if isinstance(item, str)}
        values = frozenset(strings) if len(strings) <= value_limit else None
        bloom = HashSet.of(strings, bloom_size) if values is None and bloom_size is not None else None
        fields[name] = FieldStats(
            count=len(present),
            min=min(numbers) if numbers else None,
            max=max(numbers) if numbers else None,
            values=values,
            bloom=bloom,
            true_count=sum(1 for value in present if any(item is True for item in as_list(value))),
            false_count=sum(1 for value in present if any(item is False for item in as_list(value))),
        )
    return ClusterStats(len(records), fields)


def flt(raw: dict[str, Any]) -> Filter:
    parsed = parse_filter(raw)
    assert parsed is not None
    return parsed


# --- may_match on hand-picked cases ----------------------------------------------------------------------

CLUSTER = [
    {"genre": "drama", "year": 1999.0, "awarded": True, "tags": ["a", "b"]},
    {"genre": "comedy", "year": 2005.0, "awarded": True},
    {"genre": "drama", "year": 2010.0, "awarded": True, "tags": []},
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"genre": "drama"}, True),
        ({"genre": "horror"}, False),
        ({"genre": {"$in": ["horror", "comedy"]}}, True),
        ({"genre": {"$in": ["horror", "noir"]}}, False),
        ({"genre": {"$in": []}}, False),
        ({"genre": 1999}, False),  # a number never equals a string
        ({"year": 2005}, True),
        ({"year": 2011}, False),
        ({"year": 1998}, False),
        ({"year": "1999"}, False),
        ({"year": {"$gt": 2010}}, False),
        ({"year": {"$gte": 2010}}, True),
        ({"year": {"$lt": 1999}}, False),
        ({"year": {"$lte": 1999}}, True),
        ({"year": {"$gte": 2000, "$lte": 2004}}, True),  # the statistics cannot see the gap
        ({"genre": {"$gt": 0}}, False),  # no numbers in the field at all
        ({"awarded": True}, True),
        ({"awarded": False}, False),
        ({"awarded": {"$ne": True}}, False),  # every record is awarded
        ({"awarded": {"$nin": ["x", True]}}, False),
        ({"awarded": {"$ne": False}}, True),
        ({"genre": {"$ne": "drama"}}, True),
        ({"year": {"$ne": 1999}}, True),
        ({"tags": "a"}, True),
        ({"tags": "c"}, False),
        ({"tags": {"$exists": True}}, True),
        ({"tags": {"$exists": False}}, True),
        ({"genre": {"$exists": False}}, False),
        ({"missing": {"$exists": True}}, False),
        ({"missing": {"$exists": False}}, True),
        ({"missing": "x"}, False),
        ({"missing": {"$ne": "x"}}, True),
        ({"missing": {"$nin": ["x"]}}, True),
        ({"missing": {"$lt": 3}}, False),
        ({"genre": "drama", "year": {"$gt": 2020}}, False),
        ({"$or": [{"genre": "horror"}, {"year": {"$gt": 2020}}]}, False),
        ({"$or": [{"genre": "horror"}, {"year": {"$gt": 2000}}]}, True),
        ({"$and": [{"genre": "drama"}, {"$or": [{"awarded": False}, {"tags": "c"}]}]}, False),
    ],
)
def test_may_match_cases(raw: dict[str, Any], expected: bool) -> None:
    stats = compute_stats(list(CLUSTER))
    assert may_match(flt(raw).root, stats) is expected
    if not expected:
        assert not any(flt(raw).matches(record) for record in CLUSTER)


def test_empty_list_defeats_ne_pruning() -> None:
    # Every record has "tags", and the only string is "a", yet [] matches $ne "a": no string proof exists.
    records: list[dict[str, Any] | None] = [{"tags": ["a"]}, {"tags": []}]
    stats = compute_stats(records)
    assert stats.fields["tags"].values == frozenset({"a"})
    assert stats.fields["tags"].count == 2
    assert may_match(flt({"tags": {"$ne": "a"}}).root, stats)
    assert flt({"tags": {"$ne": "a"}}).matches(records[1])


def test_bloom_prunes_only_definite_absences() -> None:
    strings = [f"value-{index}" for index in range(200)]
    stats = compute_stats([{"name": item} for item in strings], value_limit=64, bloom_size=4096)
    assert stats.fields["name"].values is None
    assert all(may_match(flt({"name": item}).root, stats) for item in strings)
    absent = [f"other-{index}" for index in range(200)]
    assert sum(not may_match(flt({"name": item}).root, stats) for item in absent) > 150


def test_without_value_set_or_bloom_strings_cannot_be_ruled_out() -> None:
    stats = compute_stats([{"name": f"v{index}"} for index in range(10)], value_limit=2, bloom_size=None)
    assert may_match(flt({"name": "anything"}).root, stats)
    assert not may_match(flt({"name": 3}).root, stats)


# --- soundness, by property ------------------------------------------------------------------------------

FIELDS = ("a", "b", "c")
STRINGS = st.sampled_from(["x", "y", "z", "1", "True", ""])
NUMBERS = st.sampled_from([-1.5, 0.0, 1.0, 2.0, 2.5, 1e6])
INTS = st.sampled_from([0, 1, 2, -3])
SCALARS = st.one_of(STRINGS, NUMBERS, INTS, st.booleans())
VALUES = st.one_of(STRINGS, NUMBERS, st.booleans(), st.lists(STRINGS, max_size=3), st.none())
METADATA = st.one_of(st.none(), st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3))
FEW_STRINGS = st.sampled_from(["x", "y"])
FEW_VALUES = st.one_of(
    FEW_STRINGS, st.sampled_from([1.0, 2.0]), st.booleans(), st.lists(FEW_STRINGS, max_size=2), st.none()
)
FEW_METADATA = st.fixed_dictionaries({"a": FEW_VALUES}, optional={"b": FEW_VALUES})


def operand(op: str) -> st.SearchStrategy[Any]:
    if op in ("$eq", "$ne"):
        return SCALARS
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return st.one_of(NUMBERS, INTS)
    if op in ("$in", "$nin"):
        return st.lists(SCALARS, max_size=4)
    return st.booleans()


OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
CONDITIONS = st.dictionaries(
    st.sampled_from(FIELDS),
    st.one_of(
        SCALARS,
        st.lists(
            st.sampled_from(OPERATORS).flatmap(lambda op: operand(op).map(lambda arg: (op, arg))),
            min_size=1,
            max_size=2,
            unique_by=lambda pair: pair[0],
        ).map(dict),
    ),
    min_size=1,
    max_size=2,
)


def elements_of(records: list[dict[str, Any] | None]) -> list[Any]:
    """Every scalar stored in the records, list elements included."""
    return [
        item
        for record in records
        for value in (record or {}).values()
        for item in (value if isinstance(value, list) else [value])
        if item is not None
    ]


@st.composite
def derived_condition(
    draw: st.DrawFn, records: list[dict[str, Any] | None], stored: list[Any]
) -> dict[str, Any]:
    """A condition built from one record's values, which that record usually matches.

    Random filters rarely match random records, so on their own they would seldom test the direction that
    matters: a cluster holding a match must never be pruned. ``$ne`` / ``$nin`` operands also come from
    ``stored`` (values the records hold), where pruning them is tempting and often wrong.
    """
    metadata = draw(st.sampled_from(records)) or {}
    name = draw(st.sampled_from(FIELDS))
    value = metadata.get(name)
    operands = st.one_of(SCALARS, st.sampled_from(stored)) if stored else SCALARS
    elements = [] if value is None else as_list(value)
    kinds = ["exists", "$ne", "$nin"] + (["$eq", "$in"] if elements else [])
    if any(is_number(element) for element in elements):
        kinds += ["$gte", "$lte", "$gt", "$lt"]
    kind = draw(st.sampled_from(kinds))
    if kind == "exists":
        return {name: {"$exists": value is not None}}
    if kind == "$ne":
        return {name: {"$ne": draw(operands)}}
    if kind == "$nin":
        return {name: {"$nin": draw(st.lists(operands, max_size=3))}}
    if kind == "$eq":
        return {name: {"$eq": draw(st.sampled_from(elements))}}
    if kind == "$in":
        return {name: {"$in": [*draw(st.lists(SCALARS, max_size=2)), draw(st.sampled_from(elements))]}}
    number = draw(st.sampled_from([element for element in elements if is_number(element)]))
    shift = {"$gte": 0.0, "$lte": 0.0, "$gt": -0.5, "$lt": 0.5}[kind]
    return {name: {kind: number + shift}}


def filters_for(records: list[dict[str, Any] | None]) -> st.SearchStrategy[dict[str, Any]]:
    """Random filter trees whose leaves are random conditions or conditions derived from the records."""
    stored = elements_of(records)
    leaves = st.one_of(CONDITIONS, derived_condition(records, stored))
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.fixed_dictionaries({"$and": st.lists(children, min_size=1, max_size=3)}),
            st.fixed_dictionaries({"$or": st.lists(children, min_size=1, max_size=3)}),
        ),
        max_leaves=6,
    )


STATS_SHAPES = st.tuples(st.sampled_from([0, 1, 2, 64]), st.sampled_from([None, 1, 3, 64]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(METADATA, min_size=1, max_size=24),
    clusters=st.integers(min_value=1, max_value=6),
    data=st.data(),
)
def test_pruning_is_sound(records: list[Any], clusters: int, data: st.DataObject) -> None:
    raw = data.draw(filters_for(records), label="filter")
    parsed = flt(raw)
    labels = data.draw(st.lists(st.integers(0, clusters - 1), min_size=len(records), max_size=len(records)))
    members = [
        [record for record, label in zip(records, labels, strict=True) if label == cluster]
        for cluster in range(clusters)
    ]
    stats: list[ClusterStatsLike | None] = []
    for cluster_records in members:
        value_limit, bloom_size = data.draw(STATS_SHAPES)
        unknown = data.draw(st.integers(0, 9)) == 0  # sometimes a cluster has no statistics at all
        stats.append(
            None
            if unknown
            else compute_stats(cluster_records, value_limit=value_limit, bloom_size=bloom_size)
        )
    ids = [100 + cluster for cluster in range(clusters)]
    centroids = data.draw(
        st.lists(st.lists(st.floats(-2, 2), min_size=3, max_size=3), min_size=clusters, max_size=clusters)
    )
    plan = plan_query(
        np.ones(3, dtype=np.float32),
        np.asarray(centroids, dtype=np.float32),
        ids,
        [len(cluster_records) for cluster_records in members],
        stats,
        metric=data.draw(st.sampled_from(METRICS)),
        top_k=data.draw(st.integers(1, 10)),
        flt=parsed,
    )
    assert sorted(plan.clusters + plan.pruned_by_filter) == ids
    for cluster in plan.pruned_by_filter:
        assert not any(parsed.matches(record) for record in members[cluster - 100]), (cluster, raw)
    # A cluster with a match is never pruned, and one with no statistics never is either.
    for cluster, cluster_stats in enumerate(stats):
        if cluster_stats is None:
            assert 100 + cluster in plan.clusters


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=st.lists(FEW_METADATA, min_size=1, max_size=3), shape=STATS_SHAPES, data=st.data())
def test_a_cluster_holding_a_match_is_never_ruled_out(
    pool: list[Any], shape: tuple[int, int | None], data: st.DataObject
) -> None:
    # Filters made only of conditions derived from the records match far more often than random ones,
    # which is where an over-eager pruning rule shows. Records repeat a few metadata values, so clusters
    # where every record holds the same value (or an empty list) are common.
    records = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6), label="records")
    stored = elements_of(records)
    leaves = derived_condition(records, stored)
    raw = data.draw(
        st.recursive(
            leaves,
            lambda children: st.one_of(
                st.fixed_dictionaries({"$and": st.lists(children, min_size=1, max_size=2)}),
                st.fixed_dictionaries({"$or": st.lists(children, min_size=1, max_size=2)}),
            ),
            max_leaves=4,
        ),
        label="filter",
    )
    parsed = flt(raw)
    stats = compute_stats(records, value_limit=shape[0], bloom_size=shape[1])
    if any(parsed.matches(record) for record in records):
        assert may_match(parsed.root, stats)


SMALL_VALUES: tuple[Any, ...] = (None, "x", "y", [], ["x"], ["x", "y"], 1.0, 2.0, True, False)
SMALL_OPERANDS: dict[str, tuple[Any, ...]] = {
    "$eq": ("x", "y", "z", 1.0, 1.5, 2.0, True, False),
    "$ne": ("x", "y", "z", 1.0, 1.5, 2.0, True, False),
    "$gt": (0.5, 1.0, 1.5, 2.0, 2.5),
    "$gte": (0.5, 1.0, 1.5, 2.0, 2.5),
    "$lt": (0.5, 1.0, 1.5, 2.0, 2.5),
    "$lte": (0.5, 1.0, 1.5, 2.0, 2.5),
    "$in": ((), ("x",), ("z", 2.0), (True,), ("y", False, 1.0)),
    "$nin": ((), ("x",), ("x", "y"), (True,), (False, 1.0, 2.0)),
    "$exists": (True, False),
}


def test_every_condition_on_every_small_cluster() -> None:
    # Exhaustive over clusters of one to three records and one field: the corner cases (an empty list
    # among lists, a field every record has with one value, bools next to numbers) that random search
    # finds only rarely.
    clusters = [
        values for size in (1, 2, 3) for values in itertools.combinations_with_replacement(SMALL_VALUES, size)
    ]
    conditions = [
        flt({"a": {op: list(operand) if isinstance(operand, tuple) else operand}})
        for op, operands in SMALL_OPERANDS.items()
        for operand in operands
    ]
    pruned = 0
    for values in clusters:
        records: list[dict[str, Any] | None] = [{} if value is None else {"a": value} for value in values]
        for value_limit, bloom_size in ((64, None), (0, 1), (0, None)):
            stats = compute_stats(records, value_limit=value_limit, bloom_size=bloom_size)
            for condition in conditions:
                if not may_match(condition.root, stats):
                    pruned += 1
                    assert not any(condition.matches(record) for record in records), (values, condition)
    assert pruned > 10_000  # the pruning rules do fire


# --- ordering --------------------------------------------------------------------------------------------


def expected_order(
    query: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32], metric: Metric
) -> list[int]:
    q = query.astype(np.float64)
    c = centroids.astype(np.float64)
    if metric == "cosine":
        key = -(c @ q) / (np.linalg.norm(c, axis=1) * np.linalg.norm(q))
    elif metric == "dotproduct":
        key = -(c @ q)
    else:
        key = np.linalg.norm(c - q, axis=1)
    return np.argsort(key, kind="stable").tolist()


@pytest.mark.parametrize("metric", METRICS)
def test_clusters_are_ordered_by_centroid_score(metric: Metric) -> None:
    rng = np.random.default_rng(1)
    centroids = (rng.normal(size=(30, 8)) * rng.uniform(0.2, 5.0, size=(30, 1))).astype(np.float32)
    query = rng.normal(size=8).astype(np.float32)
    ids = [7 * index + 3 for index in range(30)]
    plan = plan_query(query, centroids, ids, [100] * 30, [None] * 30, metric=metric, top_k=5, flt=None)
    assert plan.clusters == tuple(ids[index] for index in expected_order(query, centroids, metric))
    assert plan.pruned_by_filter == ()


def test_metrics_disagree_on_order() -> None:
    # A long centroid far away wins on dot product but loses on distance; cosine ignores its length.
    centroids = np.array([[1.0, 0.0], [10.0, 5.0], [0.0, 1.0]], dtype=np.float32)
    query = np.array([1.0, 0.2], dtype=np.float32)
    orders = {
        metric: plan_query(
            query,
            centroids,
            [0, 1, 2],
            [1, 1, 1],
            [None] * 3,
            metric=metric,
            top_k=1,
            flt=None,
            full_scan=True,
        ).clusters
        for metric in METRICS
    }
    assert orders["euclidean"] == (0, 2, 1)
    assert orders["dotproduct"] == (1, 0, 2)
    assert orders["cosine"] == (0, 1, 2)


# --- probe counts ----------------------------------------------------------------------------------------


def grid_plan(**kwargs: Any) -> QueryPlan:
    """40 clusters of 100 records on a line; the query sits at cluster 0's end."""
    centroids = np.arange(40, dtype=np.float32)[:, None]
    options: dict[str, Any] = {"metric": "euclidean", "top_k": 10, "flt": None, **kwargs}
    counts = options.pop("counts", [100] * 40)
    stats = options.pop("stats", [None] * 40)
    return plan_query(np.zeros(1, np.float32), centroids, list(range(40)), counts, stats, **options)


def test_default_probe() -> None:
    plan = grid_plan()
    expected = max(DEFAULT_MIN_PROBE, math.ceil(DEFAULT_PROBE_FRACTION * 40))
    assert plan.probe == expected
    assert plan.to_scan == tuple(range(expected))
    assert plan.clusters == tuple(range(40))
    assert not plan.expand_until_k
    assert plan.reserve == ()
    assert plan.max_records is None
    assert "probe" in plan.reason


def test_min_probe_and_fraction() -> None:
    assert grid_plan(min_probe=1, default_probe_fraction=0.05).probe == 2
    assert grid_plan(min_probe=10, default_probe_fraction=0.05).probe == 10
    assert grid_plan(min_probe=1, default_probe_fraction=1.0).probe == 40


@pytest.mark.parametrize(("scan_factor", "probe"), [(0.5, 2), (1.0, 4), (1.5, 6), (2.0, 8), (4.0, 16)])
def test_scan_factor_scales_the_probe(scan_factor: float, probe: int) -> None:
    assert grid_plan(scan_factor=scan_factor).probe == probe


def test_scan_factor_is_bounded_by_the_cluster_count() -> None:
    assert grid_plan(scan_factor=4.0, default_probe_fraction=0.5).probe == 40


@pytest.mark.parametrize(("max_candidates", "probe"), [(250, 2), (300, 3), (100, 1), (10, 1), (100_000, 4)])
def test_max_candidates_caps_records_scanned(max_candidates: int, probe: int) -> None:
    plan = grid_plan(max_candidates=max_candidates)
    assert plan.probe == probe
    assert plan.max_records == max_candidates


def test_max_candidates_applies_after_scan_factor() -> None:
    assert grid_plan(scan_factor=4.0, max_candidates=1000).probe == 10


def test_probe_grows_to_hold_top_k_records() -> None:
    plan = grid_plan(counts=[3] * 40, top_k=20)
    assert plan.probe == 7  # 7 clusters of 3 hold 21 >= 20 records
    assert grid_plan(counts=[3] * 40, top_k=1000).probe == 40


def test_empty_clusters_do_not_count_towards_top_k() -> None:
    centroids = np.arange(6, dtype=np.float32)[:, None]
    plan = plan_query(
        np.zeros(1, np.float32),
        centroids,
        list(range(6)),
        [0, 0, 0, 0, 5, 5],
        [None] * 6,
        metric="euclidean",
        top_k=8,
        flt=None,
    )
    assert plan.probe == 6


# --- filters, expansion and full scans -------------------------------------------------------------------


def banded_stats(clusters: int = 40) -> list[ClusterStatsLike | None]:
    """Cluster i holds records whose "band" is i // 10 and "n" spans [10 i, 10 i + 9]."""
    return [
        compute_stats([{"band": f"b{index // 10}", "n": float(10 * index + offset)} for offset in range(10)])
        for index in range(clusters)
    ]


def test_filter_prunes_and_expands() -> None:
    plan = grid_plan(stats=banded_stats(), flt=flt({"band": "b1"}))
    assert plan.pruned_by_filter == (*range(10), *range(20, 40))
    assert plan.clusters == tuple(range(10, 20))
    assert plan.probe == 4  # the default counted over all 40 clusters
    assert plan.expand_until_k
    assert plan.reserve == tuple(range(14, 20))
    assert "30 of 40 clusters pruned" in plan.reason


def test_filter_without_pruning_still_expands() -> None:
    plan = grid_plan(stats=banded_stats(), flt=flt({"n": {"$gte": 0}}))
    assert plan.pruned_by_filter == ()
    assert plan.expand_until_k
    assert len(plan.reserve) == 36


def test_expansion_is_off_when_everything_is_scanned() -> None:
    plan = grid_plan(stats=banded_stats(), flt=flt({"n": {"$gte": 385}}))
    assert plan.clusters == (38, 39)
    assert plan.probe == 2
    assert not plan.expand_until_k


def test_everything_pruned() -> None:
    plan = grid_plan(stats=banded_stats(), flt=flt({"band": "b9"}))
    assert plan.clusters == ()
    assert plan.probe == 0
    assert not plan.expand_until_k
    assert len(plan.pruned_by_filter) == 40


def test_full_scan_plans_every_surviving_cluster() -> None:
    plan = grid_plan(full_scan=True, scan_factor=0.5, max_candidates=100)
    assert plan.probe == 40
    assert plan.to_scan == tuple(range(40))
    assert not plan.expand_until_k
    filtered = grid_plan(full_scan=True, stats=banded_stats(), flt=flt({"band": {"$in": ["b0", "b3"]}}))
    assert filtered.to_scan == (*range(10), *range(30, 40))
    assert len(filtered.pruned_by_filter) == 20


def test_without_centroids_every_cluster_is_scanned() -> None:
    plan = plan_query(
        np.ones(4, np.float32), None, [5], [1_000_000], [None], metric="cosine", top_k=3, flt=None
    )
    assert plan.to_scan == (5,)
    assert "no centroids" in plan.reason
    plan = plan_query(
        None,
        np.eye(3, dtype=np.float32),
        [1, 2, 3],
        [9, 9, 9],
        [None] * 3,
        metric="cosine",
        top_k=3,
        flt=None,
    )
    assert plan.to_scan == (1, 2, 3)


def test_no_clusters() -> None:
    plan = plan_query(np.ones(2, np.float32), None, [], [], [], metric="cosine", top_k=3, flt=None)
    assert plan.clusters == ()
    assert plan.probe == 0


def test_plan_is_a_frozen_value() -> None:
    plan = grid_plan()
    with pytest.raises(AttributeError):
        plan.probe = 3  # type: ignore[misc]
    assert plan == grid_plan()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cluster_counts": [1]}, "must match"),
        ({"centroids": np.zeros((3, 2), np.float32)}, "centroids must be"),
        ({"top_k": 0}, "top_k"),
        ({"scan_factor": 0.0}, "scan_factor"),
        ({"max_candidates": 0}, "max_candidates"),
        ({"default_probe_fraction": 1.5}, "default_probe_fraction"),
        ({"min_probe": 0}, "min_probe"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "query": np.zeros(2, np.float32),
        "centroids": np.zeros((2, 2), np.float32),
        "cluster_ids": [0, 1],
        "cluster_counts": [1, 1],
        "stats": [None, None],
        "metric": "cosine",
        "top_k": 1,
        "flt": None,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        plan_query(**arguments)


# --- recall at default settings --------------------------------------------------------------------------


def exact_top(
    vectors: npt.NDArray[np.float32], query: npt.NDArray[np.float32], metric: Metric, k: int
) -> npt.NDArray[np.int64]:
    if metric == "euclidean":
        scores = -np.sum((vectors - query) ** 2, axis=1)
    elif metric == "cosine":
        scores = (vectors @ query) / np.linalg.norm(vectors, axis=1)
    else:
        scores = vectors @ query
    return np.argsort(-scores, kind="stable")[:k]


@pytest.mark.parametrize("metric", METRICS)
def test_recall_at_default_settings(metric: Metric) -> None:
    # 100k records in 300 Gaussian blobs; choose_k gives 49 clusters and the default plan probes 5.
    rng = np.random.default_rng(2024)
    dim, blobs, count = 32, 300, 100_000
    centers = rng.normal(size=(blobs, dim)).astype(np.float32) * 3.0
    vectors = (centers[rng.integers(blobs, size=count)] + rng.normal(size=(count, dim))).astype(np.float32)
    k = choose_k(count)
    centroids = train_centroids(vectors, k, metric=metric, seed=1)
    labels = assign(vectors, centroids, metric=metric)
    members = [np.flatnonzero(labels == cluster) for cluster in range(k)]
    counts = [len(rows) for rows in members]
    queries = (centers[rng.integers(blobs, size=50)] + rng.normal(size=(50, dim))).astype(np.float32)
    found = 0
    scanned = 0
    for query in queries:
        plan = plan_query(
            query, centroids, list(range(k)), counts, [None] * k, metric=metric, top_k=10, flt=None
        )
        rows = np.concatenate([members[cluster] for cluster in plan.to_scan])
        scanned += len(rows)
        approximate = rows[exact_top(vectors[rows], query, metric, 10)]
        found += len(set(approximate.tolist()) & set(exact_top(vectors, query, metric, 10).tolist()))
    recall = found / (10 * len(queries))
    assert recall >= 0.95, recall
    # And it is not brute force in disguise.
    assert scanned < 0.3 * count * len(queries)

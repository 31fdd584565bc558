"""The planner's fast path for unfiltered queries: ``nearest_clusters`` and the probe-count rule agree
with :func:`plan_query`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinecone_rag.server.planner import default_probe, nearest_clusters, plan_query, probe_count

if TYPE_CHECKING:
    import numpy.typing as npt

    from pinecone_rag.server.records import Metric

METRICS: tuple[Metric, ...] = ("cosine", "euclidean", "dotproduct")


def ranking_inputs(
    centroids: npt.NDArray[np.float32], metric: Metric
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
    """What a published index passes to :func:`nearest_clusters`: unit centroids for cosine, raw ones
    otherwise, and squared norms for euclidean only."""
    squared = np.einsum("ij,ij->i", centroids, centroids)
    if metric == "cosine":
        lengths = np.sqrt(squared)[:, None]
        return (centroids / np.where(lengths > 0, lengths, 1.0)).astype(np.float32), None
    return centroids, squared if metric == "euclidean" else None


def unfiltered_order(
    query: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32], metric: Metric
) -> list[int]:
    """Every cluster position in the order :func:`plan_query` ranks them for an unfiltered query."""
    k = len(centroids)
    squared = np.einsum("ij,ij->i", centroids, centroids)
    plan = plan_query(
        query,
        centroids,
        list(range(k)),
        [1] * k,
        [None] * k,
        metric=metric,
        top_k=1,
        flt=None,
        full_scan=True,
        centroid_norms=squared,
    )
    return list(plan.clusters)


@st.composite
def grid_centroids(draw: st.DrawFn) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Small-integer centroids with repeated and parallel rows, and a small-integer query: many exact ties
    (every raw product is exact)."""
    dim = draw(st.integers(1, 12))
    row = st.lists(st.integers(-3, 3), min_size=dim, max_size=dim)
    distinct = draw(st.lists(row, min_size=1, max_size=20))
    picks = draw(st.lists(st.integers(0, len(distinct) - 1), min_size=1, max_size=60))
    centroids = np.asarray([distinct[pick] for pick in picks], dtype=np.float32)
    return centroids, np.asarray(draw(row), dtype=np.float32)


@settings(max_examples=200, deadline=None)
@given(case=grid_centroids(), metric=st.sampled_from(METRICS), data=st.data())
def test_nearest_clusters_are_the_head_of_the_plan_with_ties(
    case: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]], metric: Metric, data: st.DataObject
) -> None:
    """Duplicate centroids and equal scores included, exactly the first ``count`` of the plan's order;
    ``count >= k`` gives the whole order."""
    centroids, query = case
    count = data.draw(st.integers(1, len(centroids) + 3))
    ranking, squared = ranking_inputs(centroids, metric)
    chosen = nearest_clusters(query, ranking, squared, count)
    assert chosen.dtype == np.int64
    assert chosen.tolist() == unfiltered_order(query, centroids, metric)[:count]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 2, 9, 64, 333])
def test_nearest_clusters_are_the_head_of_the_plan(metric: Metric, k: int) -> None:
    """Random centroids of very different lengths, many queries, every count from 1 to past ``k``."""
    rng = np.random.default_rng(k)
    dim = 24
    centroids = (rng.normal(size=(k, dim)) * rng.uniform(0.1, 5.0, size=(k, 1))).astype(np.float32)
    ranking, squared = ranking_inputs(centroids, metric)
    counts = sorted({1, 2, 3, k // 2 + 1, k - 1, k, k + 1, 4 * k} - {0})
    for query in (rng.normal(size=(40, dim)) * rng.uniform(0.1, 5.0, size=(40, 1))).astype(np.float32):
        order = unfiltered_order(query, centroids, metric)
        for count in counts:
            assert nearest_clusters(query, ranking, squared, count).tolist() == order[:count]


@pytest.mark.parametrize("metric", METRICS)
def test_nearest_clusters_with_duplicate_random_centroids(metric: Metric) -> None:
    """Exact copies of float centroids rank alike in both (both take the same float32 products, which
    need not be equal for equal rows: a matrix-vector product may round rows differently by position)."""
    rng = np.random.default_rng(5)
    base = (rng.normal(size=(40, 16)) * rng.uniform(0.5, 2.0, size=(40, 1))).astype(np.float32)
    centroids = base[rng.integers(len(base), size=150)]
    ranking, squared = ranking_inputs(centroids, metric)
    for query in rng.normal(size=(30, 16)).astype(np.float32):
        order = unfiltered_order(query, centroids, metric)
        for count in (1, 7, 40, 150, 151):
            assert nearest_clusters(query, ranking, squared, count).tolist() == order[:count]


def test_nearest_clusters_cosine_ties_between_parallel_centroids() -> None:
    """Parallel centroids have equal cosines with every query; their unit vectors round apart, and both
    rankings see the same unit vectors, so they order them alike."""
    centroids = np.array([[1.0, 1.0], [3.0, 3.0], [1.0, 2.0], [2.0, 4.0], [-1.0, -1.0]], dtype=np.float32)
    ranking, _ = ranking_inputs(centroids, "cosine")
    for query in ([1.0, 2.0], [2.0, 1.0], [-2.0, -1.0], [0.0, 1.0], [1.0, -1.0]):
        vector = np.asarray(query, dtype=np.float32)
        order = unfiltered_order(vector, centroids, "cosine")
        for count in range(1, 7):
            assert nearest_clusters(vector, ranking, None, count).tolist() == order[:count]


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(1, 5000),
    scan_factor=st.none() | st.floats(0.01, 8.0),
    fraction=st.floats(0.001, 1.0),
    min_probe=st.integers(1, 50),
)
def test_probe_count_follows_the_documented_rule(
    total: int, scan_factor: float | None, fraction: float, min_probe: int
) -> None:
    """``max(min_probe, ceil(fraction x total))``, times ``scan_factor`` rounded up, at least 1; the plan
    of an unfiltered query over big clusters probes exactly that many (capped by the clusters there are)."""
    base = max(min_probe, math.ceil(fraction * total))
    assert default_probe(total, fraction, min_probe) == base
    expected = base if scan_factor is None else max(1, math.ceil(base * scan_factor))
    probe = probe_count(total, scan_factor, fraction, min_probe)
    assert probe == expected
    assert probe >= 1
    plan = plan_query(
        np.zeros(1, np.float32),
        np.zeros((total, 1), np.float32),
        list(range(total)),
        [100] * total,
        [None] * total,
        metric="euclidean",
        top_k=1,
        flt=None,
        scan_factor=scan_factor,
        default_probe_fraction=fraction,
        min_probe=min_probe,
    )
    assert plan.probe == min(probe, total)


def test_probe_count_examples() -> None:
    """A few values by hand: the default, a small factor that rounds up, and one that would round to 0."""
    assert probe_count(100, None, 0.04, 8) == 8
    assert probe_count(1000, None, 0.04, 8) == 40
    assert probe_count(1000, 1.5, 0.04, 8) == 60
    assert probe_count(1000, 0.51, 0.04, 8) == 21  # 20.4 rounds up
    assert probe_count(10, 0.01, 0.1, 1) == 1  # 0.01 rounds up to 1
    assert probe_count(10, 4.0, 1.0, 1) == 40  # may exceed the clusters there are
    assert default_probe(0, 0.5, 3) == 3

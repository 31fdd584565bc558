"""Sample-based k-means for the index builder: centroids, assignment and incremental maintenance.

The index builder clusters a namespace's dense vectors around centroids (an inverted-file index, IVF) and
the query planner scans only the clusters whose centroids score best against the query. This module holds
the numeric parts, in numpy only:

* :func:`choose_k` picks the number of clusters for a namespace of ``n`` records.
* :func:`train_centroids` runs Lloyd's algorithm on a random sample, bounded by an iteration cap and a
  time budget, so building never stalls the builder for long.
* :func:`assign` maps vectors to their nearest centroid in row chunks, so memory stays bounded whatever
  the number of vectors.
* :func:`split_cluster` and :func:`merge_plan` keep cluster sizes in range as a namespace changes, in the
  manner of SPFresh's split and merge, without re-clustering everything.

Which centroid is "nearest" depends on the metric:

* ``cosine``: spherical k-means. Vectors are normalised, centroids are unit-length normalised means, and
  the nearest centroid is the one of highest cosine similarity.
* ``euclidean``: ordinary k-means, nearest by squared distance.
* ``dotproduct``: also clustered and assigned by squared euclidean distance. Assigning by largest inner
  product would let the longest centroid capture most vectors, and Lloyd's mean update only minimises
  squared distance, so it would not converge toward anything useful. The planner still ranks these
  clusters by the query's inner product with their centroids, as FAISS does for inner-product IVF.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Final, TypeVar

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from pinecone_rag.server.records import Metric

DEFAULT_TARGET_CLUSTER_SIZE: Final = 1024
"""Records per cluster that :func:`choose_k` aims for; split above 2x this, merge below 1/8."""
FLAT_RECORDS: Final = 4096
"""By default namespaces below this many records stay one flat cluster whatever the target size: brute
force over them costs a fraction of a millisecond, less than ranking centroids and scanning a few
clusters."""
MAX_CLUSTERS: Final = 4096
"""The most clusters :func:`choose_k` returns; beyond that clusters just grow (see :func:`choose_k`)."""
SAMPLE_PER_CENTROID: Final = 64
"""Training points per centroid; FAISS warns below 39 and gains little above 256."""
MAX_SAMPLE: Final = 100_000
"""The largest training sample by default, which bounds one Lloyd iteration's cost."""
CONVERGENCE_TOLERANCE: Final = 1e-4
"""Training stops once an iteration lowers the objective by less than this fraction."""
DEFAULT_REASSIGN_NEIGHBOURS: Final = 256
"""The most candidate centroids per cluster in :func:`refine` (an eighth of the clusters, at least 16,
below that): at 1M x 128 with 2,300 clusters, 32 undid half the drift of incremental builds and 256 all
of it, as a full assignment does at 1/15 of the cost."""
DEFAULT_REFINE_ROUNDS: Final = 3
"""Lloyd rounds of :func:`refine`."""

_Float = TypeVar("_Float", bound=np.floating[Any])

_METRICS: Final = frozenset({"cosine", "euclidean", "dotproduct"})
_CHUNK_BYTES: Final = 32 << 20
"""Size of one block of query-to-centroid scores during assignment."""
_KMEANSPP_MAX_WORK: Final = 500_000_000
"""Greedy k-means++ costs ``k * (2 + ln k) * pool * d`` multiply-adds; the pool shrinks to fit this."""
_KMEANSPP_MIN_POOL_PER_CENTROID: Final = 4
"""With fewer pool points per centroid than this, initialisation takes random sample rows instead."""


def choose_k(
    n: int,
    *,
    target_cluster_size: int = DEFAULT_TARGET_CLUSTER_SIZE,
    max_clusters: int = MAX_CLUSTERS,
    flat_below: int = FLAT_RECORDS,
) -> int:
    """The number of clusters for a namespace of ``n`` records.

    A namespace smaller than two target clusters, or than ``flat_below`` records, stays one flat cluster:
    scanning a few thousand rows by brute force costs less than a millisecond, so clustering would only
    lose recall. Beyond that the
    count is ``round(n / target_cluster_size)``, so clusters hold about ``target_cluster_size`` records:
    big enough that the executor's fixed costs (a numpy call per cluster, ranking the centroids) stay
    small next to the scan, small enough that a few percent of them hold a query's neighbours. The index
    builder trains for twice a growing namespace's size, so clusters hold 512-1,024 records by default
    (measured at 1M x 128: 1,123 clusters reach recall@10 0.956 scanning 4% of the data; 2,300-3,100
    clusters of 320-440 records scan half as much, but a query then pays more per cluster than FAISS does,
    and its latency ratio to FAISS was worse). The count is capped at ``max_clusters`` so that training
    stays within a bounded sample and time; past the cap (about 4M records by default) clusters grow.

    Args:
        n: The number of records.
        target_cluster_size: The records per cluster to aim for.
        max_clusters: The upper bound.
        flat_below: Fewer records than this always make one cluster.

    Returns:
        A cluster count in ``[1, max(1, max_clusters)]``, non-decreasing in ``n``.

    Raises:
        ValueError: ``n`` is negative or a size bound is below 1.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if target_cluster_size < 1 or max_clusters < 1:
        raise ValueError("target_cluster_size and max_clusters must be >= 1")
    if n < max(2 * target_cluster_size, flat_below):
        return 1
    return max(1, min(max_clusters, round(n / target_cluster_size)))


def train_centroids(
    vectors: npt.NDArray[np.float32],
    k: int,
    *,
    metric: Metric,
    sample_size: int | None = None,
    iterations: int = 20,
    seed: int = 0,
    time_budget_s: float | None = 10.0,
) -> npt.NDArray[np.float32]:
    """Train ``k`` centroids with Lloyd's algorithm on a random sample of ``vectors``.

    Initialisation is greedy k-means++ (seeding by squared distance) on the sample, or on a random part of
    it sized to bound the sequential seeding cost; when that part would be too small, ``k`` distinct
    random sample rows. Each iteration assigns the sample in chunks and moves every
    centroid to its members' mean (normalised for cosine). A centroid left without members is re-seeded
    at the farthest member of the cluster with the largest squared error, which splits the worst-fitting
    (usually the largest or widest) cluster. Training stops when no
    assignment changes, the objective improves by less than :data:`CONVERGENCE_TOLERANCE`, ``iterations``
    is reached, or the next iteration would overrun ``time_budget_s``.

    The result is deterministic for a given input and ``seed`` unless the time budget cuts training short.

    Args:
        vectors: ``(n, d)`` float32 vectors, ``n >= k``.
        k: The number of centroids.
        metric: The index metric (see the module docstring for what each means here).
        sample_size: How many vectors to train on; default ``min(64 * k, 100_000)``, never below ``k``
            and never above ``n``.
        iterations: The most Lloyd iterations to run (0 returns the initial centroids).
        seed: Seeds the sample, the initialisation and re-seeding.
        time_budget_s: Wall-clock budget in seconds for the whole call, or None for no limit. Seeding
            that runs out of time completes with random rows; at least the current iteration finishes.

    Returns:
        ``(k, d)`` float32 centroids; unit-length for ``cosine``. When the vectors have fewer than ``k``
        distinct values some centroids coincide.

    Raises:
        ValueError: Bad shapes, ``k`` outside ``[1, n]``, an unknown metric or negative ``iterations``.
    """
    started = time.monotonic()
    data = _as_matrix(vectors)
    _check_metric(metric)
    n = len(data)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of vectors ({n}), got {k}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    rng = np.random.default_rng(seed)
    size = min(SAMPLE_PER_CENTROID * k, MAX_SAMPLE) if sample_size is None else sample_size
    size = min(n, max(k, size))
    sample = data if size == n else data[np.sort(rng.choice(n, size=size, replace=False))]
    if metric == "cosine":
        sample = _normalised(sample)
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    return _lloyd(
        sample,
        k,
        metric=metric,
        iterations=iterations,
        rng=rng,
        started=started,
        time_budget_s=time_budget_s,
    )


def assign(
    vectors: npt.NDArray[np.float32],
    centroids: npt.NDArray[np.float32],
    *,
    metric: Metric,
    chunk_rows: int | None = None,
) -> npt.NDArray[np.int32]:
    """The index of each vector's nearest centroid.

    Args:
        vectors: ``(n, d)`` vectors.
        centroids: ``(k, d)`` centroids, ``k >= 1``; for cosine they need not be normalised.
        metric: The index metric.
        chunk_rows: Vectors scored per block; default keeps a block of scores near 32 MiB.

    Returns:
        ``(n,)`` int32 centroid indices; ties go to the lowest index.

    Raises:
        ValueError: Bad shapes, no centroids, or an unknown metric.
    """
    data = _as_matrix(vectors)
    centers = _as_matrix(centroids, name="centroids")
    _check_metric(metric)
    if len(centers) == 0:
        raise ValueError("at least one centroid is needed")
    if centers.shape[1] != data.shape[1]:
        raise ValueError(f"vectors have dimension {data.shape[1]}, centroids {centers.shape[1]}")
    if metric == "cosine":
        centers = _normalised(centers)
    labels, _ = _nearest(data, centers, metric, chunk_rows)
    return labels


def split_cluster(
    vectors: npt.NDArray[np.float32], metric: Metric, seed: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Split one oversized cluster in two with 2-means.

    Only the cluster's own vectors move, so the builder rewrites two files instead of re-clustering the
    namespace. Vectors near the new boundary may now be closer to a neighbouring cluster; reassigning
    those (SPFresh's boundary check) is the caller's choice.

    Args:
        vectors: The cluster's ``(n, d)`` vectors, ``n >= 2``.
        metric: The index metric.
        seed: Seeds the 2-means.

    Returns:
        ``(centroids, labels)``: ``(2, d)`` float32 centroids and ``(n,)`` int32 labels in ``{0, 1}``. Both
        halves are non-empty: when every vector is identical the split falls back to halving by position
        (both centroids then coincide), so a split always bounds file sizes.

    Raises:
        ValueError: Fewer than two vectors, bad shapes or an unknown metric.
    """
    data = _as_matrix(vectors)
    if len(data) < 2:
        raise ValueError(f"splitting needs at least 2 vectors, got {len(data)}")
    # All vectors: a cluster is a few thousand rows, and 2-means on them takes milliseconds.
    centroids = train_centroids(data, 2, metric=metric, sample_size=len(data), seed=seed, time_budget_s=None)
    labels = assign(data, centroids, metric=metric)
    only = int(labels[0])
    if int(labels.max()) == int(labels.min()):
        centroids = np.repeat(centroids[only : only + 1], 2, axis=0)
        labels = (np.arange(len(data)) >= len(data) // 2).astype(np.int32)
    return centroids, labels


def reassign_nearby(
    vectors: npt.NDArray[np.float32],
    bounds: Sequence[int],
    centroids: npt.NDArray[np.float32],
    *,
    metric: Metric,
    neighbours: int = DEFAULT_REASSIGN_NEIGHBOURS,
) -> npt.NDArray[np.int32]:
    """Move each vector to its nearest centroid among those nearest to its current cluster's centroid.

    One Lloyd assignment step restricted to neighbourhoods, in the manner of SPFresh's reassignment.
    Incremental builds assign new records to the centroids of the moment, then move those centroids to
    their members' means and split big clusters: the records placed earlier drift away from their best
    cluster (measured at 1M x 128: 15% more data scanned for recall 0.95 than after reassignment). A
    record's best centroid lies next to its current one, so scoring ``neighbours`` candidates per
    cluster costs a fraction of a full :func:`assign` (k candidates per record).

    Args:
        vectors: ``(n, d)`` vectors grouped by current cluster: cluster ``c`` holds rows
            ``bounds[c]:bounds[c + 1]``.
        bounds: ``k + 1`` ascending row offsets.
        centroids: ``(k, d)`` centroids; for cosine they need not be normalised.
        metric: The index metric.
        neighbours: Candidate centroids per cluster, its own included.

    Returns:
        ``(n,)`` int32 new cluster indices.

    Raises:
        ValueError: Bounds that are not ``k + 1`` ascending offsets from 0 to ``n``, ``neighbours < 1``,
            mismatched shapes or an unknown metric.
    """
    data = _as_matrix(vectors)
    centers = _as_matrix(centroids, name="centroids")
    _check_metric(metric)
    edges = np.asarray(bounds, dtype=np.int64)
    if (
        len(edges) != len(centers) + 1
        or edges[0] != 0
        or edges[-1] != len(data)
        or np.any(np.diff(edges) < 0)
    ):
        raise ValueError(f"bounds must be {len(centers) + 1} ascending offsets from 0 to {len(data)}")
    if neighbours < 1:
        raise ValueError(f"neighbours must be >= 1, got {neighbours}")
    if metric == "cosine":
        centers = _normalised(centers)
    candidates = _nearby_centroids(centers, metric, neighbours)
    labels = np.empty(len(data), dtype=np.int32)
    bias = None if metric == "cosine" else np.einsum("ij,ij->i", centers, centers)
    for cluster in range(len(centers)):
        start, end = int(bounds[cluster]), int(bounds[cluster + 1])
        if start == end:
            continue
        near = candidates[cluster]
        cost = _as_cost(data[start:end] @ centers[near].T, None if bias is None else bias[near])
        labels[start:end] = near[np.argmin(cost, axis=1)]
    return labels


def refine(
    vectors: npt.NDArray[np.float32],
    labels: npt.NDArray[np.integer],
    centroids: npt.NDArray[np.float32],
    *,
    metric: Metric,
    rounds: int = DEFAULT_REFINE_ROUNDS,
    neighbours: int | None = None,
) -> npt.NDArray[np.int32]:
    """Lloyd rounds over every vector, each assignment restricted to neighbourhoods; the new labels.

    Each round moves the centroids to their members' means and then each vector to the nearest centroid
    near its current one (:func:`reassign_nearby`). Incremental builds leave records where the centroids
    of the moment put them; three rounds over a namespace assigned that way cut the data a query scans
    for recall 0.95 by about 15% (1M x 128, measured), for about two seconds per round at that size.

    Args:
        vectors: ``(n, d)`` vectors.
        labels: ``(n,)`` current cluster of each vector, in ``[0, k)``.
        centroids: ``(k, d)`` current centroids (kept for clusters that end up empty).
        metric: The index metric.
        rounds: Lloyd rounds.
        neighbours: Candidate centroids per cluster in each assignment; default
            ``min(DEFAULT_REASSIGN_NEIGHBOURS, max(16, k // 8))``, which bounds a round's cost at high
            dimensions and few clusters, where drift matters less.

    Returns:
        ``(n,)`` int32 cluster indices; the caller computes the final centroids from its members.
    """
    data = _as_matrix(vectors)
    centers = _as_matrix(centroids, name="centroids")
    _check_metric(metric)
    current: npt.NDArray[np.int32] = np.array(labels, dtype=np.int32)
    if neighbours is None:
        neighbours = min(DEFAULT_REASSIGN_NEIGHBOURS, max(16, len(centers) // 8))
    # One copy of the vectors, grouped by cluster, serves a round's update and its assignment; it is
    # regrouped (one gather) only between rounds. Copies of the whole namespace are what a round
    # costs most at high dimensions: each is freshly mapped memory the kernel zeroes first.
    order = np.argsort(current, kind="stable")
    ordered = data[order]
    if metric == "cosine":
        _normalise_rows(ordered)
    spare: npt.NDArray[np.float32] | None = None  # regrouping alternates between two buffers
    for round_number in range(rounds):
        counts = np.bincount(current, minlength=len(centers))
        centers = _update_grouped(ordered, counts, centers, metric)
        bounds = np.zeros(len(centers) + 1, dtype=np.int64)
        np.cumsum(counts, out=bounds[1:])
        grouped = reassign_nearby(ordered, bounds.tolist(), centers, metric=metric, neighbours=neighbours)
        current[order] = grouped
        if round_number + 1 < rounds:
            regroup = np.argsort(grouped, kind="stable")
            if spare is None:
                spare = np.empty_like(ordered)
            # mode="clip": the indices are a permutation, and "raise" would buffer the output.
            np.take(ordered, regroup, axis=0, out=spare, mode="clip")
            ordered, spare = spare, ordered
            order = order[regroup]
    return current


def merge_plan(
    counts: Sequence[int],
    centroids: npt.NDArray[np.float32],
    *,
    min_size: int,
    metric: Metric = "euclidean",
) -> list[tuple[int, int]]:
    """Which undersized clusters to fold into which neighbour.

    Clusters below ``min_size`` are visited smallest first; each is merged into the nearest cluster (by
    centroid) that is still present, and its count is added to that cluster's. A cluster that has
    absorbed others is checked with its new count, so merges can chain (``a -> b`` then ``b -> c``);
    apply the pairs in order. At least one cluster always remains.

    Args:
        counts: Records per cluster, by position.
        centroids: ``(len(counts), d)`` centroids.
        min_size: Clusters with fewer records are merged away.
        metric: ``cosine`` compares centroid directions; other metrics use euclidean distance, which is
            also how :func:`assign` places records for them.

    Returns:
        ``(source, target)`` position pairs, in the order to apply them.

    Raises:
        ValueError: ``counts`` and ``centroids`` disagree in length, or an unknown metric.
    """
    centers = _as_matrix(centroids, name="centroids").astype(np.float64)
    _check_metric(metric)
    if len(centers) != len(counts):
        raise ValueError(f"{len(counts)} counts but {len(centers)} centroids")
    if metric == "cosine":
        centers = _normalised(centers)
    sizes = np.asarray(counts, dtype=np.int64).copy()
    alive = np.ones(len(sizes), dtype=np.bool_)
    plan: list[tuple[int, int]] = []
    for source in np.argsort(sizes, kind="stable").tolist():
        if sizes[source] >= min_size or int(alive.sum()) <= 1:
            continue
        alive[source] = False
        distances = np.sum((centers - centers[source]) ** 2, axis=1)
        distances[~alive] = np.inf
        target = int(np.argmin(distances))
        plan.append((source, target))
        sizes[target] += sizes[source]
    return plan


# --- internals -------------------------------------------------------------------------------------------


def _lloyd(
    sample: npt.NDArray[np.float32],
    k: int,
    *,
    metric: Metric,
    iterations: int,
    rng: np.random.Generator,
    started: float,
    time_budget_s: float | None,
) -> npt.NDArray[np.float32]:
    deadline = None if time_budget_s is None else started + time_budget_s
    centroids = _initial_centroids(sample, k, rng, deadline)
    # Squared norms turn (||c||^2 - 2 x.c) into true squared distances for picking far points.
    sample_norms = np.einsum("ij,ij->i", sample, sample, dtype=np.float64)
    previous_labels: npt.NDArray[np.int32] | None = None
    previous_cost = math.inf
    last_duration = 0.0
    for _ in range(iterations):
        iteration_started = time.monotonic()
        if time_budget_s is not None and iteration_started - started + last_duration > time_budget_s:
            break
        labels, cost = _nearest(sample, centroids, metric, None)
        if previous_labels is not None and np.array_equal(labels, previous_labels):
            break  # a fixed point: the centroids already are these members' means
        point_cost = _point_cost(cost, sample_norms, metric)
        total_cost = float(point_cost.sum())
        centroids = _update(sample, labels, centroids, metric)
        counts = np.bincount(labels, minlength=k)
        reseeded = not counts.all()
        if reseeded:
            _reseed_empty(centroids, counts, labels, point_cost, sample)
        # Re-seeding raises the objective on purpose, so only a plain step may end training this way; the
        # first step has no previous cost to compare with.
        improvement = previous_cost - total_cost
        if not reseeded and improvement <= CONVERGENCE_TOLERANCE * previous_cost < math.inf:
            break
        previous_labels, previous_cost = labels, total_cost
        last_duration = time.monotonic() - iteration_started
    if metric == "cosine":
        centroids = _normalised(centroids)
    return np.ascontiguousarray(centroids, dtype=np.float32)


def _initial_centroids(
    sample: npt.NDArray[np.float32], k: int, rng: np.random.Generator, deadline: float | None
) -> npt.NDArray[np.float32]:
    """Greedy k-means++: each step draws a few candidates by squared distance and keeps the best.

    Plain k-means++ often seeds two centroids in one dense cluster, a local optimum Lloyd's algorithm
    cannot leave; trying ``2 + ln k`` candidates per step and keeping the one that lowers the total
    squared distance most makes that rare, at the same number of sequential steps.
    """
    size, dim = sample.shape
    trials = 2 + int(math.log(k)) if k > 1 else 1
    # Seeding from a random subset keeps the cost bounded for large k; below a few points per centroid
    # the subset would say little more than random rows do.
    pool_size = min(size, _KMEANSPP_MAX_WORK // (k * trials * dim))
    if k == 1 or pool_size < _KMEANSPP_MIN_POOL_PER_CENTROID * k:
        return np.take(sample, rng.choice(size, size=k, replace=False), axis=0)
    if pool_size < size:
        sample = np.take(sample, np.sort(rng.choice(size, size=pool_size, replace=False)), axis=0)
        size = pool_size
    norms = np.einsum("ij,ij->i", sample, sample, dtype=np.float64)
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.integers(size)
    nearest = _distances_to(sample, norms, chosen[:1])[0]
    for step in range(1, k):
        if deadline is not None and time.monotonic() > deadline:
            # Out of time: the remaining centroids start at random distinct rows not yet chosen.
            rest = np.setdiff1d(np.arange(size), chosen[:step])
            chosen[step:] = rng.choice(rest, size=k - step, replace=False)
            break
        total = float(nearest.sum())
        if total > 0.0:
            draws = np.searchsorted(np.cumsum(nearest), rng.random(trials) * total, side="right")
            candidates = np.minimum(draws, size - 1)
        else:
            # Every point coincides with a chosen one: fewer distinct points than k.
            candidates = rng.integers(size, size=1)
        reduced = np.minimum(nearest[None, :], _distances_to(sample, norms, candidates))
        best = int(np.argmin(reduced.sum(axis=1)))
        chosen[step] = candidates[best]
        nearest = reduced[best]
    return np.take(sample, chosen, axis=0)


def _distances_to(
    sample: npt.NDArray[np.float32], norms: npt.NDArray[np.float64], rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Squared distances ``(len(rows), n)`` from the sample rows ``rows`` to every sample point."""
    products = (sample[rows] @ sample.T).astype(np.float64)
    distances: npt.NDArray[np.float64] = norms[rows, None] + norms[None, :] - 2.0 * products
    return np.maximum(distances, 0.0)


def _nearest(
    data: npt.NDArray[np.float32],
    centers: npt.NDArray[np.float32],
    metric: Metric,
    chunk_rows: int | None,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
    """Nearest centroid per row and its cost: ``-x.c`` (cosine, unit centroids) or ``||c||^2 - 2 x.c``.

    Both costs rank centroids like the true distance while skipping the per-row constant, so each chunk
    costs one matrix product.
    """
    centers32 = np.ascontiguousarray(centers, dtype=np.float32)
    count = len(data)
    rows = chunk_rows if chunk_rows is not None else max(1, _CHUNK_BYTES // (4 * len(centers32)))
    if rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {rows}")
    labels = np.empty(count, dtype=np.int32)
    best = np.empty(count, dtype=np.float32)
    transposed = centers32.T
    bias = None if metric == "cosine" else np.einsum("ij,ij->i", centers32, centers32)
    for start in range(0, count, rows):
        block = np.asarray(data[start : start + rows], dtype=np.float32)
        cost = _as_cost(block @ transposed, bias)
        index = np.argmin(cost, axis=1)
        labels[start : start + len(block)] = index
        best[start : start + len(block)] = np.take_along_axis(cost, index[:, None], axis=1)[:, 0]
    return labels, best


def _as_cost(
    products: npt.NDArray[np.float32], bias: npt.NDArray[np.float32] | None
) -> npt.NDArray[np.float32]:
    """Turn dot products ``x.c`` into :func:`_nearest`'s costs, in place.

    ``-x.c`` without ``bias``, else ``bias - 2 x.c`` with ``bias = ||c||^2``: lower is nearer, and the
    row's own norm, the same for every centroid, is left out.
    """
    if bias is None:
        np.negative(products, out=products)
    else:
        products *= -2.0
        products += bias
    return products


def _nearby_centroids(centers: npt.NDArray[np.float32], metric: Metric, count: int) -> npt.NDArray[np.int64]:
    """The ``count`` centroids nearest to each centroid, itself included, by :func:`_nearest`'s costs."""
    if count >= len(centers):
        return np.tile(np.arange(len(centers), dtype=np.int64), (len(centers), 1))
    table = np.empty((len(centers), count), dtype=np.int64)
    bias = None if metric == "cosine" else np.einsum("ij,ij->i", centers, centers)
    rows = max(1, _CHUNK_BYTES // (4 * len(centers)))
    for start in range(0, len(centers), rows):
        cost = _as_cost(centers[start : start + rows] @ centers.T, bias)
        own = np.arange(len(cost))
        cost[own, own + start] = -np.inf  # kept among the candidates even when centroids coincide
        table[start : start + len(cost)] = np.argpartition(cost, count - 1, axis=1)[:, :count]
    return table


def _point_cost(
    cost: npt.NDArray[np.float32], sample_norms: npt.NDArray[np.float64], metric: Metric
) -> npt.NDArray[np.float64]:
    """Each point's distance to its centroid: ``1 - cos`` for cosine, squared distance otherwise."""
    if metric == "cosine":
        return 1.0 + cost.astype(np.float64)
    return np.maximum(cost.astype(np.float64) + sample_norms, 0.0)


def _update(
    sample: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int32],
    centroids: npt.NDArray[np.float32],
    metric: Metric,
) -> npt.NDArray[np.float32]:
    # Sorting by label makes each cluster's rows contiguous; summing each block of rows is a contiguous
    # reduction (np.add.reduceat or cumsum along axis 0 walk columns with a stride and were measured 5x
    # and 15x slower at d=768).
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=len(centroids))
    return _update_grouped(sample[order], counts, centroids, metric)


def _update_grouped(
    ordered: npt.NDArray[np.float32],
    counts: npt.NDArray[np.int64],
    centroids: npt.NDArray[np.float32],
    metric: Metric,
) -> npt.NDArray[np.float32]:
    """:func:`_update` for rows already grouped by cluster: cluster ``c`` holds ``counts[c]`` rows."""
    present = np.flatnonzero(counts)
    ends = np.cumsum(counts)
    sums = np.empty((len(present), ordered.shape[1]), dtype=np.float64)
    for slot, cluster in enumerate(present.tolist()):
        # float64 accumulation keeps large clusters' means accurate.
        sums[slot] = ordered[ends[cluster] - counts[cluster] : ends[cluster]].sum(axis=0, dtype=np.float64)
    updated = centroids.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(sums, axis=1)
        # Members that cancel out leave no direction; keep the old centroid then.
        usable = norms > 0.0
        updated[present[usable]] = sums[usable] / norms[usable, None]
    else:
        updated[present] = sums / counts[present, None]
    return updated.astype(np.float32)


def _reseed_empty(
    centroids: npt.NDArray[np.float32],
    counts: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int32],
    point_cost: npt.NDArray[np.float64],
    sample: npt.NDArray[np.float32],
) -> None:
    """Move each member-less centroid onto the farthest point of the cluster with the largest error.

    Choosing the donor by total error rather than by size matters with duplicates: a big cluster of
    identical points has no error, and a new centroid taken from it would only duplicate its centroid
    and stay empty.
    """
    error = np.bincount(labels, weights=point_cost, minlength=len(centroids))
    taken = np.zeros(len(sample), dtype=np.bool_)
    empties = np.flatnonzero(counts == 0).tolist()
    while empties:
        donor = int(np.argmax(error))
        if error[donor] <= 0.0:
            return  # every point sits on a centroid: there are fewer distinct points than centroids
        members = np.flatnonzero((labels == donor) & ~taken)
        farthest = int(members[np.argmax(point_cost[members])]) if members.size else -1
        if farthest < 0 or point_cost[farthest] <= 0.0:
            error[donor] = 0.0  # nothing left in it that a new centroid would separate
            continue
        empty = empties.pop()
        taken[farthest] = True
        centroids[empty] = sample[farthest]
        # Splitting a cluster roughly halves its error; this lets the next empty centroid pick another
        # donor once this one is no longer the worst.
        error[donor] /= 2.0
        error[empty] = 0.0


def _as_matrix(array: npt.ArrayLike, *, name: str = "vectors") -> npt.NDArray[np.float32]:
    matrix = np.asarray(array, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {matrix.shape}")
    return matrix


def _normalised(matrix: npt.NDArray[_Float]) -> npt.NDArray[_Float]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    # Zero rows stay zero rather than becoming NaN.
    return (matrix / np.where(norms > 0.0, norms, 1.0)).astype(matrix.dtype, copy=False)


def _normalise_rows(matrix: npt.NDArray[np.float32]) -> None:
    """Scale each row of ``matrix`` to unit length in place (zero rows stay zero), as :func:`_normalised`."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    norms[norms == 0.0] = 1.0
    matrix /= norms[:, None]


def _check_metric(metric: str) -> None:
    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(_METRICS)}")


__all__ = [
    "CONVERGENCE_TOLERANCE",
    "DEFAULT_REASSIGN_NEIGHBOURS",
    "DEFAULT_REFINE_ROUNDS",
    "DEFAULT_TARGET_CLUSTER_SIZE",
    "FLAT_RECORDS",
    "MAX_CLUSTERS",
    "MAX_SAMPLE",
    "SAMPLE_PER_CENTROID",
    "assign",
    "choose_k",
    "merge_plan",
    "reassign_nearby",
    "refine",
    "split_cluster",
    "train_centroids",
]

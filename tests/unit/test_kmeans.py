"""Unit tests of sample-based k-means (pinecone_rag.server.kmeans)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pytest

from pinecone_rag.server import kmeans
from pinecone_rag.server.kmeans import (
    DEFAULT_TARGET_CLUSTER_SIZE,
    FLAT_RECORDS,
    MAX_CLUSTERS,
    assign,
    choose_k,
    merge_plan,
    reassign_nearby,
    refine,
    split_cluster,
    train_centroids,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from pinecone_rag.server.records import Metric

METRICS: tuple[Metric, ...] = ("cosine", "euclidean", "dotproduct")


def planted(
    clusters: int, per_cluster: int, dim: int, *, seed: int, spread: float = 10.0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Well-separated Gaussian blobs (distinct in direction too, so cosine can separate them)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)) * spread
    truth = np.repeat(np.arange(clusters), per_cluster)
    points = centers[truth] + rng.normal(size=(len(truth), dim))
    order = rng.permutation(len(truth))
    return points[order].astype(np.float32), truth[order]


def brute_force_labels(
    vectors: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32], metric: Metric
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Nearest centroid by the definition, in float64, with the full cost matrix."""
    x = vectors.astype(np.float64)
    c = centroids.astype(np.float64)
    if metric == "cosine":
        cost = -(x @ (c / np.linalg.norm(c, axis=1, keepdims=True)).T)
    else:
        cost = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    return cost.argmin(axis=1), cost


# --- train_centroids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_planted_clusters(metric: Metric, seed: int) -> None:
    vectors, truth = planted(10, 300, 16, seed=seed)
    centroids = train_centroids(vectors, 10, metric=metric, seed=seed)
    assert centroids.shape == (10, 16)
    assert centroids.dtype == np.float32
    labels = assign(vectors, centroids, metric=metric)
    # A perfect recovery is a bijection between found and planted clusters.
    pairs = set(zip(labels.tolist(), truth.tolist(), strict=True))
    assert len(pairs) == 10
    assert {label for label, _ in pairs} == set(range(10))


def test_cosine_centroids_are_unit_length() -> None:
    vectors, _ = planted(5, 100, 8, seed=3)
    centroids = train_centroids(vectors * 7.0, 5, metric="cosine")
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)


def test_euclidean_centroids_are_member_means() -> None:
    vectors, _ = planted(6, 200, 8, seed=4)
    # Training on every vector (not a sample) makes the fixed point one of the full data set.
    centroids = train_centroids(vectors, 6, metric="euclidean", sample_size=len(vectors), time_budget_s=None)
    labels = assign(vectors, centroids, metric="euclidean")
    for index in range(6):
        np.testing.assert_allclose(centroids[index], vectors[labels == index].mean(axis=0), atol=1e-4)


@pytest.mark.parametrize("metric", METRICS)
def test_deterministic_for_a_seed(metric: Metric) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(3000, 12)).astype(np.float32)
    first = train_centroids(vectors, 20, metric=metric, seed=7, sample_size=1000, time_budget_s=None)
    second = train_centroids(vectors, 20, metric=metric, seed=7, sample_size=1000, time_budget_s=None)
    np.testing.assert_array_equal(first, second)
    other = train_centroids(vectors, 20, metric=metric, seed=8, sample_size=1000, time_budget_s=None)
    assert not np.array_equal(first, other)


def test_respects_time_budget_roughly() -> None:
    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(60_000, 64)).astype(np.float32)
    started = time.monotonic()
    train_centroids(vectors, 400, metric="euclidean", iterations=10_000, time_budget_s=0.3)
    elapsed = time.monotonic() - started
    # Seeding and one iteration over the 25,600-point sample take a fraction of a second; the loop stops
    # before starting an iteration that would overrun. The slack absorbs a busy machine.
    assert elapsed < 0.3 + 2.0


def test_zero_budget_and_zero_iterations_return_the_initial_sample_points() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(500, 4)).astype(np.float32)
    rows = {row.tobytes() for row in vectors}
    for centroids in (
        train_centroids(vectors, 8, metric="euclidean", time_budget_s=0.0),
        train_centroids(vectors, 8, metric="euclidean", iterations=0),
    ):
        assert all(row.tobytes() in rows for row in centroids)
        assert len({row.tobytes() for row in centroids}) == 8


def test_k_equal_to_n_puts_a_centroid_on_every_point() -> None:
    rng = np.random.default_rng(8)
    vectors = rng.normal(size=(30, 5)).astype(np.float32)
    centroids = train_centroids(vectors, 30, metric="euclidean")
    assert sorted(assign(vectors, centroids, metric="euclidean").tolist()) == list(range(30))


def test_empty_clusters_are_reseeded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Random initialisation on data that is mostly one repeated point picks several copies of it; all but
    # the first copy end up without members and must move to where the error is.
    monkeypatch.setattr(kmeans, "_KMEANSPP_MAX_WORK", 0)
    rng = np.random.default_rng(9)
    duplicates = np.zeros((900, 4))
    left = rng.normal(size=(50, 4)) + 20.0
    right = rng.normal(size=(50, 4)) - 20.0
    vectors = np.concatenate([duplicates, left, right]).astype(np.float32)
    for seed in range(5):
        centroids = train_centroids(vectors, 6, metric="euclidean", seed=seed, time_budget_s=None)
        labels = assign(vectors, centroids, metric="euclidean")
        assert np.bincount(labels, minlength=6).min() > 0, seed
        assert np.isfinite(centroids).all()


def test_fewer_distinct_points_than_k() -> None:
    base = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 3.0]], dtype=np.float32)
    vectors = np.repeat(base, 40, axis=0)
    centroids = train_centroids(vectors, 5, metric="euclidean")
    assert centroids.shape == (5, 2)
    assert np.isfinite(centroids).all()
    # Every distinct point has a centroid on it; the spare centroids duplicate some.
    labels = assign(vectors, centroids, metric="euclidean")
    np.testing.assert_allclose(centroids[labels], vectors, atol=1e-6)


def test_zero_vectors_with_cosine_stay_finite() -> None:
    vectors = np.zeros((50, 3), dtype=np.float32)
    vectors[25:, 0] = 1.0
    centroids = train_centroids(vectors, 2, metric="cosine")
    assert np.isfinite(centroids).all()


def test_sample_size_is_respected() -> None:
    vectors, _ = planted(4, 500, 6, seed=10)
    centroids = train_centroids(vectors, 4, metric="euclidean", sample_size=5)
    assert centroids.shape == (4, 6)


@pytest.mark.parametrize(
    ("vectors", "k", "metric", "message"),
    [
        (np.zeros((3, 2)), 4, "euclidean", "k must be between"),
        (np.zeros((3, 2)), 0, "euclidean", "k must be between"),
        (np.zeros(3), 1, "euclidean", "2-D"),
        (np.zeros((3, 2)), 1, "hamming", "unknown metric"),
    ],
)
def test_train_rejects_bad_arguments(
    vectors: npt.NDArray[np.float32], k: int, metric: Metric, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        train_centroids(vectors, k, metric=metric)


# --- assign ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("chunk_rows", [1, 7, 1000, None])
def test_chunked_assign_equals_brute_force(metric: Metric, chunk_rows: int | None) -> None:
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(600, 10)).astype(np.float32)
    centroids = rng.normal(size=(37, 10)).astype(np.float32) * 1.5
    labels = assign(vectors, centroids, metric=metric, chunk_rows=chunk_rows)
    assert labels.dtype == np.int32
    assert labels.shape == (600,)
    expected, cost = brute_force_labels(vectors, centroids, metric)
    rows = np.arange(len(vectors))
    # float32 products may flip exact near-ties only; the chosen cost must be the minimum either way.
    np.testing.assert_allclose(cost[rows, labels], cost[rows, expected], rtol=1e-5, atol=1e-5)
    assert (labels == expected).mean() > 0.99


def test_assign_cosine_ignores_vector_and_centroid_length() -> None:
    rng = np.random.default_rng(12)
    vectors = rng.normal(size=(200, 6)).astype(np.float32)
    centroids = rng.normal(size=(9, 6)).astype(np.float32)
    scale = rng.uniform(0.1, 10.0, size=(9, 1)).astype(np.float32)
    plain = assign(vectors, centroids, metric="cosine")
    np.testing.assert_array_equal(assign(vectors * 3.0, centroids * scale, metric="cosine"), plain)


def test_assign_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="dimension"):
        assign(np.zeros((3, 2), np.float32), np.zeros((2, 3), np.float32), metric="euclidean")
    with pytest.raises(ValueError, match="at least one centroid"):
        assign(np.zeros((3, 2), np.float32), np.zeros((0, 2), np.float32), metric="euclidean")


def test_assign_empty_input() -> None:
    labels = assign(np.zeros((0, 4), np.float32), np.ones((3, 4), np.float32), metric="dotproduct")
    assert labels.shape == (0,)


# --- choose_k --------------------------------------------------------------------------------------------


def test_choose_k_small_namespaces_stay_flat() -> None:
    assert choose_k(0) == 1
    assert choose_k(1) == 1
    flat_below = max(2 * DEFAULT_TARGET_CLUSTER_SIZE, FLAT_RECORDS)
    assert choose_k(flat_below - 1) == 1
    assert choose_k(flat_below) == round(flat_below / DEFAULT_TARGET_CLUSTER_SIZE)
    # Large targets, or no flat floor: two clusters' worth is the threshold.
    assert choose_k(2 * 4096 - 1, target_cluster_size=4096) == 1
    assert choose_k(2 * 4096, target_cluster_size=4096) == 2
    assert choose_k(7, target_cluster_size=4, flat_below=0) == 1
    assert choose_k(8, target_cluster_size=4, flat_below=0) == 2


def test_choose_k_is_monotone_and_bounded() -> None:
    sizes = [*range(0, 50_000, 97), *np.geomspace(50_000, 10**10, 200).astype(np.int64).tolist()]
    ks = [choose_k(n) for n in sizes]
    assert ks == sorted(ks)
    assert min(ks) == 1
    assert max(ks) == MAX_CLUSTERS
    for n, k in zip(sizes, ks, strict=True):
        if 1 < k < MAX_CLUSTERS:
            # Clusters hold about the target number of records.
            assert 0.5 * DEFAULT_TARGET_CLUSTER_SIZE <= n / k <= 1.5 * DEFAULT_TARGET_CLUSTER_SIZE


def test_choose_k_parameters() -> None:
    assert choose_k(10_000, target_cluster_size=100) == 100
    assert choose_k(10_000, target_cluster_size=100, max_clusters=30) == 30
    assert choose_k(1_000_000) == round(1_000_000 / DEFAULT_TARGET_CLUSTER_SIZE)
    with pytest.raises(ValueError, match=">= 0"):
        choose_k(-1)
    with pytest.raises(ValueError, match=">= 1"):
        choose_k(10, target_cluster_size=0)


# --- split and merge -------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_split_separates_two_blobs(metric: Metric) -> None:
    vectors, truth = planted(2, 400, 8, seed=13)
    centroids, labels = split_cluster(vectors, metric, seed=1)
    assert centroids.shape == (2, 8)
    assert labels.dtype == np.int32
    assert set(labels.tolist()) == {0, 1}
    assert len(set(zip(labels.tolist(), truth.tolist(), strict=True))) == 2
    np.testing.assert_array_equal(assign(vectors, centroids, metric=metric), labels)


def test_split_of_identical_vectors_halves_by_position() -> None:
    vectors = np.ones((7, 3), dtype=np.float32)
    centroids, labels = split_cluster(vectors, "euclidean")
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_array_equal(centroids[0], centroids[1])
    with pytest.raises(ValueError, match="at least 2"):
        split_cluster(vectors[:1], "euclidean")


def test_merge_plan_folds_tiny_clusters_into_nearest() -> None:
    centroids = np.array([[0, 0], [0, 1], [5, 5], [5, 6], [20, 20]], dtype=np.float32)
    assert merge_plan([1, 100, 2, 50, 80], centroids, min_size=10) == [(0, 1), (2, 3)]
    assert merge_plan([100, 100, 100, 100, 100], centroids, min_size=10) == []


def test_merge_plan_chains_and_keeps_one_cluster() -> None:
    centroids = np.array([[0.0], [1.0], [3.0]], dtype=np.float32)
    # 0 joins 1 (now 4 records, still small), then 1 joins 2; 2 stays even though it is small too.
    assert merge_plan([2, 2, 3], centroids, min_size=100) == [(0, 1), (1, 2)]
    assert merge_plan([0], centroids[:1], min_size=5) == []


def test_merge_plan_stops_merging_once_grown() -> None:
    centroids = np.array([[0.0], [1.0], [10.0]], dtype=np.float32)
    assert merge_plan([6, 6, 100], centroids, min_size=10) == [(0, 1)]


def test_merge_plan_cosine_compares_directions() -> None:
    centroids = np.array([[1.0, 0.0], [10.0, 1.0], [0.9, 0.9]], dtype=np.float32)
    assert merge_plan([1, 100, 100], centroids, min_size=5, metric="cosine") == [(0, 1)]
    assert merge_plan([1, 100, 100], centroids, min_size=5) == [(0, 2)]
    with pytest.raises(ValueError, match="counts"):
        merge_plan([1, 2], centroids, min_size=5)


# --- reassign_nearby and refine --------------------------------------------------------------------------


def mixture(
    count: int = 2000, dim: int = 16, *, seed: int, blobs: int = 12
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Overlapping Gaussian blobs of different widths, and ``blobs`` noisy guesses at their centres."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(blobs, dim)) * 3.0
    widths = rng.uniform(0.5, 2.0, size=blobs)
    members = rng.integers(blobs, size=count)
    vectors = centers[members] + rng.normal(size=(count, dim)) * widths[members, None]
    guesses = centers + rng.normal(size=(blobs, dim))
    return vectors.astype(np.float32), guesses.astype(np.float32)


def grouped(
    vectors: npt.NDArray[np.float32], labels: npt.NDArray[np.integer], k: int
) -> tuple[npt.NDArray[np.float32], list[int], npt.NDArray[np.int64]]:
    """``vectors`` sorted by ``labels``, the ``k + 1`` bounds of each label's rows, and the sorted labels."""
    order = np.argsort(labels, kind="stable")
    bounds = [0, *np.cumsum(np.bincount(labels, minlength=k)).tolist()]
    return vectors[order], bounds, np.asarray(labels)[order].astype(np.int64)


def point_costs(
    vectors: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32], metric: Metric
) -> npt.NDArray[np.float64]:
    """``(n, k)`` float64 costs by which each metric assigns: ``-cos`` for cosine, squared distance else."""
    _, cost = brute_force_labels(vectors, centroids, metric)
    if metric == "cosine":
        cost = cost / np.maximum(np.linalg.norm(vectors.astype(np.float64), axis=1), 1e-30)[:, None]
    return cost


def objective(vectors: npt.NDArray[np.float32], labels: npt.NDArray[np.integer], metric: Metric) -> float:
    """The k-means objective of a labelling, in float64: squared distance to the member mean (cosine:
    ``1 - cos`` to the normalised mean of the normalised members)."""
    data = vectors.astype(np.float64)
    if metric == "cosine":
        data = data / np.linalg.norm(data, axis=1, keepdims=True)
    total = 0.0
    for label in np.unique(labels).tolist():
        members = data[labels == label]
        mean = members.mean(axis=0)
        if metric == "cosine":
            total += float(np.sum(1.0 - members @ (mean / np.linalg.norm(mean))))
        else:
            total += float(np.sum((members - mean) ** 2))
    return total


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("k", "extra"), [(2, 0), (12, 0), (12, 1), (37, 500)])
def test_reassign_with_every_centroid_a_candidate_is_assign(metric: Metric, k: int, extra: int) -> None:
    """With ``neighbours >= k`` every centroid is a candidate for every vector: exactly :func:`assign`."""
    vectors, _ = mixture(seed=k + extra)
    rng = np.random.default_rng(k)
    centroids = (rng.normal(size=(k, vectors.shape[1])) * 3.0).astype(np.float32)
    data, bounds, _ = grouped(vectors, rng.integers(k, size=len(vectors)), k)
    labels = reassign_nearby(data, bounds, centroids, metric=metric, neighbours=k + extra)
    assert labels.dtype == np.int32
    assert labels.shape == (len(data),)
    np.testing.assert_array_equal(labels, assign(data, centroids, metric=metric))


@pytest.mark.parametrize("metric", METRICS)
def test_reassign_with_coinciding_centroids_differs_from_assign_only_by_ties(metric: Metric) -> None:
    """Duplicate centroids tie; which copy wins may differ from :func:`assign`, never the centroid itself."""
    vectors, guesses = mixture(seed=21)
    centroids = guesses[[0, 1, 2, 1, 3, 0, 4, 4, 5, 2]]
    rng = np.random.default_rng(21)
    data, bounds, _ = grouped(vectors, rng.integers(len(centroids), size=len(vectors)), len(centroids))
    labels = reassign_nearby(data, bounds, centroids, metric=metric, neighbours=len(centroids))
    expected = assign(data, centroids, metric=metric)
    np.testing.assert_array_equal(centroids[labels], centroids[expected])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("neighbours", [2, 3, 8])
def test_reassign_with_few_neighbours_picks_the_best_candidate(metric: Metric, neighbours: int) -> None:
    """Each vector moves to the best of its cluster's candidates: one of them, never worse than staying."""
    vectors, _ = mixture(seed=neighbours)
    k = 40
    rng = np.random.default_rng(neighbours)
    centroids = vectors[rng.choice(len(vectors), size=k, replace=False)] + 0.5
    # Start from a mostly sensible labelling (nearest centroid), with a tenth of the rows misplaced.
    start = assign(vectors, centroids, metric=metric)
    wrong = rng.random(len(vectors)) < 0.1
    start[wrong] = rng.integers(k, size=int(wrong.sum()))
    data, bounds, current = grouped(vectors, start, k)
    labels = reassign_nearby(data, bounds, centroids, metric=metric, neighbours=neighbours)

    centers = (
        centroids / np.linalg.norm(centroids, axis=1, keepdims=True) if metric == "cosine" else centroids
    )
    candidates = kmeans._nearby_centroids(centers, metric, neighbours)
    assert candidates.shape == (k, neighbours)
    assert all(current[row] in candidates[current[row]] for row in range(0, len(data), 97))
    assert all(labels[row] in candidates[current[row]] for row in range(len(data)))
    cost = point_costs(data, centroids, metric)
    rows = np.arange(len(data))
    chosen, stayed = cost[rows, labels], cost[rows, current]
    assert np.all(chosen <= stayed + 1e-4 * np.maximum(1.0, np.abs(stayed)))
    best_candidate = np.take_along_axis(cost, candidates[current], axis=1).min(axis=1)
    np.testing.assert_allclose(chosen, best_candidate, rtol=1e-4, atol=1e-4)
    # Some vectors did move, and the misplaced ones mostly found a better cluster.
    assert np.count_nonzero(labels != current) > 0
    assert chosen.sum() < stayed.sum()


@pytest.mark.parametrize("metric", METRICS)
def test_reassign_with_one_neighbour_keeps_every_label(metric: Metric) -> None:
    """A cluster is always its own first candidate, so ``neighbours=1`` moves nothing."""
    vectors, guesses = mixture(seed=3)
    rng = np.random.default_rng(3)
    data, bounds, current = grouped(vectors, rng.integers(len(guesses), size=len(vectors)), len(guesses))
    labels = reassign_nearby(data, bounds, guesses, metric=metric, neighbours=1)
    np.testing.assert_array_equal(labels, current)


@pytest.mark.parametrize("metric", METRICS)
def test_nearby_centroids_are_the_nearest_and_include_their_own(metric: Metric) -> None:
    """Each row lists ``count`` distinct centroids, itself among them, none farther than one left out."""
    rng = np.random.default_rng(4)
    centers = rng.normal(size=(50, 8)).astype(np.float32)
    if metric == "cosine":
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    table = kmeans._nearby_centroids(centers, metric, 6)
    cost = point_costs(centers, centers, metric)
    for row in range(len(centers)):
        near = table[row]
        assert len(set(near.tolist())) == 6
        assert row in near
        others = np.setdiff1d(np.arange(len(centers)), near)
        assert cost[row, near].max() <= cost[row, others].min() + 1e-5
    # Coinciding centroids all cost the same: each still lists itself.
    same = np.repeat(centers[:1], 10, axis=0)
    table = kmeans._nearby_centroids(same, metric, 3)
    assert all(row in table[row] for row in range(10))
    np.testing.assert_array_equal(
        kmeans._nearby_centroids(centers[:5], metric, 5), np.tile(np.arange(5), (5, 1))
    )


@pytest.mark.parametrize(
    "bounds",
    [[0, 10], [0, 5, 10, 10], [1, 5, 10], [0, 5, 9], [0, 5, 11], []],
    ids=["too-few", "too-many", "not-from-0", "short", "long", "empty"],
)
def test_reassign_rejects_bad_bounds(bounds: list[int]) -> None:
    """``bounds`` must be ``k + 1`` offsets running from 0 to the number of vectors."""
    vectors = np.zeros((10, 3), dtype=np.float32)
    centroids = np.eye(2, 3, dtype=np.float32)
    with pytest.raises(ValueError, match="bounds"):
        reassign_nearby(vectors, bounds, centroids, metric="euclidean")


@pytest.mark.parametrize("metric", METRICS)
def test_reassign_skips_empty_clusters(metric: Metric) -> None:
    """Clusters with ``start == end`` (leading, inner, trailing) hold no rows and are skipped."""
    vectors, guesses = mixture(seed=6)
    k = len(guesses)
    rng = np.random.default_rng(6)
    start = rng.choice([1, 2, 5, 6, 7, 10], size=len(vectors))  # 0, 3, 4, 8, 9 and 11 stay empty
    data, bounds, _ = grouped(vectors, start, k)
    assert bounds[0] == bounds[1]
    assert bounds[3] == bounds[5]
    assert bounds[-2] == bounds[-1]
    labels = reassign_nearby(data, bounds, guesses, metric=metric, neighbours=k)
    np.testing.assert_array_equal(labels, assign(data, guesses, metric=metric))
    # Everything in cluster 4: it moves only among cluster 4's candidates.
    centers = guesses / np.linalg.norm(guesses, axis=1, keepdims=True) if metric == "cosine" else guesses
    one = reassign_nearby(data, [0] * 5 + [len(data)] * (k - 4), guesses, metric=metric, neighbours=3)
    assert set(one.tolist()) <= set(kmeans._nearby_centroids(centers, metric, 3)[4].tolist())
    assert len(reassign_nearby(data[:0], [0] * (k + 1), guesses, metric=metric)) == 0


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("rounds", "neighbours"), [(1, 4), (3, 4), (3, 256), (2, None)])
def test_refine_never_raises_the_objective(metric: Metric, rounds: int, neighbours: int | None) -> None:
    """Each round is a Lloyd step restricted to neighbourhoods, so the k-means objective cannot grow."""
    vectors, guesses = mixture(seed=rounds * (neighbours or 7))
    rng = np.random.default_rng(7)
    # A poor start: nearest guess for most rows, a random cluster for a fifth of them.
    start = assign(vectors, guesses, metric=metric)
    wrong = rng.random(len(vectors)) < 0.2
    start[wrong] = rng.integers(len(guesses), size=int(wrong.sum()))
    before = objective(vectors, start, metric)
    labels = refine(vectors, start, guesses, metric=metric, rounds=rounds, neighbours=neighbours)
    assert labels.dtype == np.int32
    assert labels.shape == (len(vectors),)
    assert labels.min() >= 0
    assert labels.max() < len(guesses)
    after = objective(vectors, labels, metric)
    assert after <= before * (1 + 1e-6)
    assert after < 0.99 * before  # and it did improve a poor labelling
    if rounds > 1:
        one = refine(vectors, start, guesses, metric=metric, rounds=1, neighbours=neighbours)
        assert after <= objective(vectors, one, metric) * (1 + 1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_refine_when_a_cluster_empties(metric: Metric) -> None:
    """A cluster whose members all leave (or that starts empty) keeps its centroid and stays valid."""
    rng = np.random.default_rng(8)
    dim = 16
    left = rng.normal(size=(500, dim)) + 8.0
    right = rng.normal(size=(500, dim))
    right[:, 0] -= 8.0
    right[:, 1] += 8.0
    vectors = np.concatenate([left, right]).astype(np.float32)
    start = np.repeat([0, 1], 500).astype(np.int32)
    # Cluster 2 takes half of each blob: its mean lies between them, so everything in it leaves.
    start[::2] = 2
    # Cluster 3 starts empty, far from everything.
    centroids = np.stack([left.mean(0), right.mean(0), vectors.mean(0), -50.0 * np.ones(dim)]).astype(
        np.float32
    )
    before = objective(vectors, start, metric)
    for rounds in (1, 2, 4):
        labels = refine(vectors, start, centroids, metric=metric, rounds=rounds, neighbours=4)
        assert labels.min() >= 0
        assert labels.max() < 4
        assert objective(vectors, labels, metric) <= before * (1 + 1e-6)
    assert set(labels.tolist()) == {0, 1}
    assert np.array_equal(labels == 0, np.repeat([True, False], 500))


@pytest.mark.parametrize("metric", METRICS)
def test_refine_is_deterministic_and_leaves_its_inputs_alone(metric: Metric) -> None:
    """The same input gives the same labels; the vectors, labels and centroids passed in are not written."""
    vectors, guesses = mixture(seed=9)
    start = np.random.default_rng(9).integers(len(guesses), size=len(vectors)).astype(np.int32)
    copies = (vectors.copy(), start.copy(), guesses.copy())
    first = refine(vectors, start, guesses, metric=metric, neighbours=5)
    second = refine(vectors, start, guesses, metric=metric, neighbours=5)
    np.testing.assert_array_equal(first, second)
    for passed, copy in zip((vectors, start, guesses), copies, strict=True):
        np.testing.assert_array_equal(passed, copy)
    np.testing.assert_array_equal(refine(vectors, start, guesses, metric=metric, rounds=0), start)


@pytest.mark.parametrize(
    ("bounds", "neighbours"),
    [([0, 8, 3, 10], 2), ([0, 5, 10], 0)],
    ids=["descending bounds", "no neighbours"],
)
def test_reassign_nearby_rejects_bad_bounds_and_neighbours(bounds: list[int], neighbours: int) -> None:
    """Offsets out of order or an empty neighbourhood are caller errors, named as such."""
    vectors = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    centroids = vectors[: len(bounds) - 1]
    with pytest.raises(ValueError, match=r"bounds|neighbours"):
        reassign_nearby(vectors, bounds, centroids, metric="euclidean", neighbours=neighbours)

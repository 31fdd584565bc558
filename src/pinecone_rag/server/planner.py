"""The query planner: which clusters a query scans, in which order, and which it can skip.

A namespace's indexed records live in cluster files, each with a centroid and per-field metadata
statistics. For one query the planner

1. drops every cluster whose statistics *prove* that no record in it can match the filter
   (:func:`may_match`); a cluster that might hold a match is never dropped, so pruning cannot change
   results, only skip work;
2. orders the remaining clusters by how well their centroid scores against the query;
3. decides how many of them to scan: a fraction of all clusters by default (a server setting), scaled
   by the request's ``scanFactor``, capped by its ``maxCandidates``, and never fewer than needed to hold
   ``top_k`` records. With a filter, the executor may keep going through the remaining clusters, in
   order, until it has ``top_k`` matches.

The result is a :class:`QueryPlan`, a small immutable value that does no I/O.

Statistics are described by the protocols :class:`ClusterStatsLike`, :class:`FieldStatsLike` and
:class:`BloomLike`, so any cluster-file implementation whose statistics follow the documented meaning
can be planned over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np

from pinecone_rag.server.filters import And, Condition, Node, Or

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy.typing as npt

    from pinecone_rag.server.filters import Filter, Scalar
    from pinecone_rag.server.records import Metric

DEFAULT_PROBE_FRACTION: Final = 0.1
"""Share of all clusters an unfiltered query scans by default (the server setting's default)."""
DEFAULT_MIN_PROBE: Final = 3
"""The fewest clusters a query scans by default, so small clustered namespaces keep high recall."""


class BloomLike(Protocol):
    """A set membership test without false negatives, e.g. a bloom filter."""

    def might_contain(self, value: str, /) -> bool:
        """False only when ``value`` is certainly not in the set."""
        ...


class FieldStatsLike(Protocol):
    """What one cluster's statistics say about one metadata field.

    A field whose statistics are absent from :attr:`ClusterStatsLike.fields` is one that no record in
    the cluster has. For a field that is present:

    Attributes:
        count: Records whose value for the field is not null (any type, including an empty list).
        min: The smallest number (not boolean) among the field's values, list elements included, or None
            if there is none.
        max: The largest such number, or None.
        values: Every distinct string among the field's values (scalars and list elements) when that set
            is small, an empty set when there are no strings, None when the set was too large to keep.
        bloom: When ``values`` is None, a membership test over those strings, or None if there is none
            (then strings cannot be ruled out).
        true_count: Records whose value is ``True`` (or a list containing it).
        false_count: Records whose value is ``False`` (or a list containing it).
    """

    @property
    def count(self) -> int: ...  # noqa: D102 - documented on the class
    @property
    def min(self) -> float | None: ...  # noqa: D102
    @property
    def max(self) -> float | None: ...  # noqa: D102
    @property
    def values(self) -> frozenset[str] | None: ...  # noqa: D102
    @property
    def bloom(self) -> BloomLike | None: ...  # noqa: D102
    @property
    def true_count(self) -> int: ...  # noqa: D102
    @property
    def false_count(self) -> int: ...  # noqa: D102


class ClusterStatsLike(Protocol):
    """One cluster's metadata statistics.

    Attributes:
        count: Records in the cluster.
        fields: Statistics per field that at least one record in the cluster has.
    """

    @property
    def count(self) -> int: ...  # noqa: D102 - documented on the class
    @property
    def fields(self) -> Mapping[str, FieldStatsLike]: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """How to run one query over a namespace's clusters.

    Attributes:
        clusters: Every cluster that may hold a match, best first (by centroid score; in the given order
            when there are no centroids).
        pruned_by_filter: Clusters whose statistics prove that no record matches the filter, in the given
            order. They need not be read.
        probe: How many leading entries of ``clusters`` to scan unconditionally (:attr:`to_scan`).
        expand_until_k: When True, after those the executor scans the rest of ``clusters`` in order
            (:attr:`reserve`) until it holds ``top_k`` matches, has scanned ``max_records`` records, or has
            run out of clusters.
        max_records: A cap on the records scanned, reserve included, from the request's ``maxCandidates``;
            None for no cap. The first cluster is scanned even if it alone exceeds the cap.
        reason: A human-readable account of the decisions, for logs and tests.
    """

    clusters: tuple[int, ...]
    pruned_by_filter: tuple[int, ...]
    probe: int
    expand_until_k: bool
    reason: str
    max_records: int | None = None

    @property
    def to_scan(self) -> tuple[int, ...]:
        """The clusters to scan in any case, best first."""
        return self.clusters[: self.probe]

    @property
    def reserve(self) -> tuple[int, ...]:
        """The clusters to add in order while fewer than ``top_k`` matches are found."""
        return self.clusters[self.probe :] if self.expand_until_k else ()


def plan_query(
    query: npt.NDArray[np.floating] | None,
    centroids: npt.NDArray[np.floating] | None,
    cluster_ids: Sequence[int] | npt.NDArray[np.int64],
    cluster_counts: Sequence[int] | npt.NDArray[np.int64],
    stats: Sequence[ClusterStatsLike | None],
    *,
    metric: Metric,
    top_k: int,
    flt: Filter | None,
    scan_factor: float | None = None,
    max_candidates: int | None = None,
    default_probe_fraction: float = DEFAULT_PROBE_FRACTION,
    min_probe: int = DEFAULT_MIN_PROBE,
    full_scan: bool = False,
    survivors: npt.NDArray[np.int64] | None = None,
    centroid_norms: npt.NDArray[np.floating] | None = None,
) -> QueryPlan:
    """Plan a query over a namespace's clusters.

    The probe count is ``max(min_probe, ceil(default_probe_fraction * total clusters))``, times
    ``scan_factor`` (rounded up), counted over all clusters rather than the survivors of pruning: a
    filtered query then scans at most what an unfiltered one would, and the matching records it looks
    for are spread over fewer clusters. The count then grows until the scanned clusters hold ``top_k``
    records, and finally shrinks until they hold at most ``max_candidates`` (keeping at least one).

    Any filter sets ``expand_until_k``: the scanned clusters may hold fewer than ``top_k`` matches, and
    only the executor can tell. Without centroids or a query vector there is nothing to rank by, so
    every surviving cluster is scanned.

    Args:
        query: The dense query vector, or None (e.g. a sparse-only query).
        centroids: ``(len(cluster_ids), d)`` centroids by position, or None for an unclustered namespace.
        cluster_ids: The clusters' ids; plans name clusters by these.
        cluster_counts: Records per cluster, by position.
        stats: Metadata statistics per cluster, by position; None where unknown (never pruned).
        metric: The index metric; decides how centroids are ranked.
        top_k: How many matches the query wants.
        flt: The parsed metadata filter, or None.
        scan_factor: Multiplies the default probe count (the API allows 0.5 to 4).
        max_candidates: Caps the records scanned (the API allows ``top_k`` to 100,000).
        default_probe_fraction: The server's share of clusters to probe, in ``(0, 1]``.
        min_probe: The fewest clusters to probe, at least 1.
        full_scan: Scan every surviving cluster (exact results; used by tests and consistency checks).
        survivors: With a filter, the positions (ascending) of the clusters known to hold a match, e.g.
            from evaluating the filter itself; ``stats`` are then not consulted.
        centroid_norms: The centroids' squared L2 norms, when the caller keeps them (ranking an index's
            centroids against every query need not recompute them); computed when None.

    Returns:
        The plan.

    Raises:
        ValueError: Sequences of different lengths, or a parameter out of range.
    """
    total = len(cluster_ids)
    _check_arguments(
        centroids,
        total,
        cluster_counts,
        stats,
        top_k=top_k,
        scan_factor=scan_factor,
        max_candidates=max_candidates,
        default_probe_fraction=default_probe_fraction,
        min_probe=min_probe,
    )
    kept: list[int] | npt.NDArray[np.int64]
    pruned: list[int]
    if flt is None:
        kept, pruned = np.arange(total, dtype=np.int64), []
    elif survivors is not None:
        keep = np.zeros(total, dtype=np.bool_)
        keep[survivors] = True
        kept, pruned = np.asarray(survivors, dtype=np.int64), np.flatnonzero(~keep).tolist()
    else:
        listed: list[int] = []
        pruned = []
        for position, cluster_stats in enumerate(stats):
            keep_this = cluster_stats is None or may_match(flt.root, cluster_stats)
            (listed if keep_this else pruned).append(position)
        kept = listed
    pruned_ids = tuple(cluster_ids[position] for position in pruned)
    pruned_text = f"{len(pruned)} of {total} clusters pruned by filter" if flt is not None else "no filter"

    if len(kept) == 0:
        return QueryPlan((), pruned_ids, 0, expand_until_k=False, reason=f"{pruned_text}; nothing to scan")

    if query is None or centroids is None:
        ordered = np.asarray(kept, dtype=np.int64)
        ranking = "no centroids" if centroids is None else "no query vector"
    else:
        ordered = _rank(
            np.asarray(query), np.asarray(centroids), kept, metric, total, squared_norms=centroid_norms
        )
        ranking = f"ranked by {metric} centroid score"
    ordered_ids = tuple(np.asarray(cluster_ids, dtype=np.int64)[ordered].tolist())
    cap = max_candidates

    if full_scan or query is None or centroids is None:
        why = "full scan requested" if full_scan else f"{ranking}, scanning every cluster"
        return QueryPlan(
            ordered_ids,
            pruned_ids,
            len(ordered_ids),
            expand_until_k=False,
            reason=f"{pruned_text}; {why}",
        )

    base = default_probe(total, default_probe_fraction, min_probe)
    steps = [f"default probe max({min_probe}, ceil({default_probe_fraction} x {total})) = {base}"]
    probe = probe_count(total, scan_factor, default_probe_fraction, min_probe)
    if scan_factor is not None:
        steps.append(f"x scan_factor {scan_factor} = {probe}")
    probe = min(probe, len(ordered))
    counts = np.asarray(cluster_counts, dtype=np.int64)[ordered]
    cumulative = np.cumsum(counts)
    if cumulative[probe - 1] < top_k and probe < len(ordered):
        # The first index whose running total reaches top_k, or every cluster when none does.
        probe = min(len(ordered), int(np.searchsorted(cumulative, top_k, side="left")) + 1)
        steps.append(f"raised to {probe} to hold top_k={top_k} records")
    if cap is not None and cumulative[probe - 1] > cap:
        probe = max(1, int(np.searchsorted(cumulative, cap, side="right")))
        steps.append(f"cut to {probe} by max_candidates={cap}")
    expand = flt is not None and probe < len(ordered)
    tail = f"; then expand in order until top_k={top_k} matches" if expand else ""
    return QueryPlan(
        ordered_ids,
        pruned_ids,
        probe,
        expand_until_k=expand,
        reason=f"{pruned_text}; {ranking}; probe {probe} of {len(ordered)}: {', '.join(steps)}{tail}",
        max_records=cap,
    )


def default_probe(total: int, default_probe_fraction: float, min_probe: int) -> int:
    """Clusters an unfiltered query scans by default: ``max(min_probe, ceil(fraction x total))``."""
    return max(min_probe, math.ceil(default_probe_fraction * total))


def probe_count(total: int, scan_factor: float | None, default_probe_fraction: float, min_probe: int) -> int:
    """:func:`default_probe` times ``scan_factor`` (rounded up, at least 1); may exceed ``total``."""
    base = default_probe(total, default_probe_fraction, min_probe)
    return base if scan_factor is None else max(1, math.ceil(base * scan_factor))


def nearest_clusters(
    query: npt.NDArray[np.float32],
    ranking_centroids: npt.NDArray[np.float32],
    squared_norms: npt.NDArray[np.float32] | None,
    count: int,
) -> npt.NDArray[np.int64]:
    """Positions of the ``count`` best centroids, best first, ties by position.

    What :func:`plan_query` puts first for an unfiltered query, at the cost of a partial sort.
    ``ranking_centroids`` are unit-length for cosine (so the score is one dot product) and as stored
    otherwise; ``squared_norms`` are given for euclidean only.
    """
    dots = ranking_centroids @ query
    key = squared_norms - 2.0 * dots if squared_norms is not None else np.negative(dots)
    if count < len(key):
        threshold = key[np.argpartition(key, count - 1)[count - 1]]
        chosen = np.flatnonzero(key <= threshold)
    else:
        chosen = np.arange(len(key), dtype=np.int64)
    best: npt.NDArray[np.int64] = chosen[np.lexsort((chosen, key[chosen]))][:count]
    return best


def may_match(node: Node, stats: ClusterStatsLike) -> bool:
    """Whether some record of a cluster might match a filter tree, judging by the cluster's statistics.

    False is a proof that no record matches; True only means the statistics cannot rule it out. ``And``
    may match when every child may, ``Or`` when any child may. A condition on a field that no record has
    may match only for ``$ne``, ``$nin`` and ``$exists: false``. ``$ne`` and ``$nin`` are otherwise
    ruled out only for booleans, when every record holds the excluded value: for strings and numbers
    the statistics cannot exclude records holding an empty list, which match ``$ne``.

    Args:
        node: The root of a parsed filter (:attr:`Filter.root`) or any sub-tree.
        stats: The cluster's statistics.

    Returns:
        False when no record in the cluster can match.
    """
    if isinstance(node, And):
        return all(may_match(child, stats) for child in node.children)
    if isinstance(node, Or):
        return any(may_match(child, stats) for child in node.children)
    return _condition_may_match(node, stats)


# --- internals -------------------------------------------------------------------------------------------


def _condition_may_match(condition: Condition, stats: ClusterStatsLike) -> bool:
    field = stats.fields.get(condition.field)
    op, value = condition.op, condition.value
    if op == "$exists":
        if value:
            return field is not None and field.count > 0
        return field is None or field.count < stats.count
    if op in ("$ne", "$nin"):
        # Matches a record unless it holds one of the excluded values; records without the field match.
        if field is None or field.count < stats.count:
            return True
        excluded = value if isinstance(value, tuple) else (value,)
        return not any(_everyone_holds(field, item, stats.count) for item in excluded)
    if field is None:
        return False
    if op == "$in" or isinstance(value, tuple):
        # Like the evaluator, a scalar $in operand counts as a one-element list.
        return any(_may_equal(field, item) for item in (value if isinstance(value, tuple) else (value,)))
    if op == "$eq":
        return _may_equal(field, value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False  # range operators match only numbers, and only against a number
    low, high = field.min, field.max
    if low is None or high is None:
        return False
    if math.isnan(low) or math.isnan(high):
        return True  # a broken statistic proves nothing
    if op == "$gt":
        return high > value
    if op == "$gte":
        return high >= value
    if op == "$lt":
        return low < value
    return low <= value  # $lte


def _may_equal(field: FieldStatsLike, value: Scalar) -> bool:
    if isinstance(value, bool):
        return (field.true_count if value else field.false_count) > 0
    if isinstance(value, str):
        if field.values is not None:
            return value in field.values
        return field.bloom is None or field.bloom.might_contain(value)
    low, high = field.min, field.max
    if low is None or high is None:
        return False
    if math.isnan(low) or math.isnan(high):
        return True
    return low <= value <= high


def _everyone_holds(field: FieldStatsLike, value: Scalar, cluster_size: int) -> bool:
    """True when every record's value certainly equals (or contains) ``value``.

    Only booleans have per-record counts; for strings and numbers, a record holding an empty list counts
    towards ``field.count`` without contributing any value, so no statistic proves this.
    """
    if isinstance(value, bool):
        return (field.true_count if value else field.false_count) >= cluster_size > 0
    return False


def _rank(
    query: npt.NDArray[np.floating],
    centroids: npt.NDArray[np.floating],
    positions: list[int] | npt.NDArray[np.int64],
    metric: Metric,
    total: int,
    *,
    squared_norms: npt.NDArray[np.floating] | None,
) -> npt.NDArray[np.int64]:
    """``positions`` ordered best first by the query's score against their centroids; ties keep order."""
    vector = np.asarray(query, dtype=np.float32).reshape(-1)
    centers = np.asarray(centroids, dtype=np.float32)
    chosen = np.asarray(positions, dtype=np.int64)
    squared = np.einsum("ij,ij->i", centers, centers) if squared_norms is None else squared_norms
    if len(positions) < total:
        centers = centers[chosen]  # copying every centroid per query would cost more than ranking them
        squared = squared[chosen]
    if metric == "cosine":
        # Unit centroids, computed as nearest_clusters' callers do, so both rank ties alike.
        lengths = np.sqrt(squared)[:, None]
        centers = (centers / np.where(lengths > 0, lengths, 1.0)).astype(np.float32)
    dots = centers @ vector
    # ||c||^2 - 2 q.c orders like the euclidean distance; ||q||^2 is the same for every centroid.
    key = squared - 2.0 * dots if metric == "euclidean" else -dots
    order = np.argsort(key, kind="stable")
    ranked: npt.NDArray[np.int64] = chosen[order]
    return ranked


def _check_arguments(
    centroids: npt.NDArray[np.floating] | None,
    total: int,
    cluster_counts: Sequence[int] | npt.NDArray[np.int64],
    stats: Sequence[ClusterStatsLike | None],
    *,
    top_k: int,
    scan_factor: float | None,
    max_candidates: int | None,
    default_probe_fraction: float,
    min_probe: int,
) -> None:
    if len(cluster_counts) != total or len(stats) != total:
        raise ValueError(
            f"{total} cluster ids, {len(cluster_counts)} counts and {len(stats)} statistics must match"
        )
    if centroids is not None and (np.ndim(centroids) != 2 or len(centroids) != total):
        raise ValueError(f"centroids must be a ({total}, d) array, got shape {np.shape(centroids)}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if scan_factor is not None and not scan_factor > 0:
        raise ValueError(f"scan_factor must be > 0, got {scan_factor}")
    if max_candidates is not None and max_candidates < 1:
        raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
    if not 0 < default_probe_fraction <= 1:
        raise ValueError(f"default_probe_fraction must be in (0, 1], got {default_probe_fraction}")
    if min_probe < 1:
        raise ValueError(f"min_probe must be >= 1, got {min_probe}")


__all__ = [
    "DEFAULT_MIN_PROBE",
    "DEFAULT_PROBE_FRACTION",
    "BloomLike",
    "ClusterStatsLike",
    "FieldStatsLike",
    "QueryPlan",
    "default_probe",
    "may_match",
    "nearest_clusters",
    "plan_query",
    "probe_count",
]

"""The index builder: fold a frozen freshness layer into new cluster files and publish a manifest.

A build reads the current published index and the frozen layer, and writes new versions of only the
clusters it touches: those that lose rows (deleted or overwritten records) and those that receive new
records (each assigned to its nearest centroid). Untouched cluster files are shared with the previous
manifest. Then it publishes a manifest naming the new set of files and the LSN it covers; the pointer
flips last, so a crash at any point leaves the previous manifest current and the new files unreferenced
(garbage collection removes them).

Shapes a namespace goes through:

* **Flat**: while it is smaller than two target clusters it is one cluster without a centroid (scanning a
  few thousand rows costs less than ranking centroids).
* **Clustered**: when it outgrows that, and again each time it has doubled since, the builder trains
  centroids on a sample (:func:`pinecone_rag.server.kmeans.train_centroids`, time-bounded) and assigns
  every record. In between, builds are incremental: an oversized cluster is split in two by 2-means and
  undersized ones are merged into their nearest neighbour, without re-clustering the rest.
* **Sparse-only indexes** have no centroids: records go into chunks of ``sparse_chunk_records``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from pinecone_rag.server.cluster_file import write_cluster
from pinecone_rag.server.kmeans import (
    assign,
    choose_k,
    merge_plan,
    refine,
    split_cluster,
    train_centroids,
)
from pinecone_rag.server.manifest import (
    ClusterRef,
    Manifest,
    centroids_key,
    cluster_key,
    publish_manifest,
    write_centroids,
)
from pinecone_rag.server.published import PublishedIndex, pack_location

if TYPE_CHECKING:
    import numpy.typing as npt

    from pinecone_rag.server.cluster_stats import ClusterStats
    from pinecone_rag.server.engine_config import EngineConfig
    from pinecone_rag.server.namespace_state import BuildInput
    from pinecone_rag.server.records import IndexSpec, Metadata, Metric, SparseVector

logger = logging.getLogger(__name__)


_T = TypeVar("_T")


@dataclass(slots=True)
class _Group:
    """Records bound for one new cluster file."""

    ids: list[str] = field(default_factory=list)
    dense: list[npt.NDArray[np.float32]] = field(default_factory=list)
    sparse: list[SparseVector | None] = field(default_factory=list)
    metadata: list[Metadata | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def extend(
        self,
        ids: list[str],
        dense: npt.NDArray[np.float32] | None,
        sparse: list[SparseVector | None],
        metadata: list[Metadata | None],
    ) -> None:
        self.ids.extend(ids)
        if dense is not None and len(dense):
            self.dense.append(dense)
        self.sparse.extend(sparse)
        self.metadata.extend(metadata)

    def block(self, dimension: int | None) -> npt.NDArray[np.float32] | None:
        if dimension is None:
            return None
        if not self.dense:
            return np.zeros((0, dimension), dtype=np.float32)
        if len(self.dense) > 1:
            self.dense = [np.ascontiguousarray(np.concatenate(self.dense), dtype=np.float32)]
        return self.dense[0]

    def take(self, positions: npt.NDArray[np.int64], dimension: int | None) -> _Group:
        block = self.block(dimension)
        rows = positions.tolist()
        return _Group(
            _pick(self.ids, rows),
            [] if block is None else [block[positions]],
            _pick(self.sparse, rows),
            _pick(self.metadata, rows),
        )


def _pick(values: list[_T], rows: list[int]) -> list[_T]:
    """``[values[row] for row in rows]``, with the loop in C (this runs for every record a build moves)."""
    return list(map(values.__getitem__, rows))


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What one build did (logged, and read by tests and benchmarks)."""

    version: int
    indexed_lsn: int
    records: int
    clusters: int
    rewritten: int
    mode: str
    seconds: float


class Builder:
    """Builds new published indexes for one namespace.

    Args:
        spec: The index's metric, dimension and type.
        config: Engine tuning.
    """

    def __init__(self, spec: IndexSpec, config: EngineConfig) -> None:
        self.spec = spec
        self.config = config
        self._metric: Metric = spec.metric
        # Records when the centroids were last trained on the whole namespace. Splits keep clusters
        # small as a namespace grows, but bisecting is a worse clustering than k-means over everything
        # (measured at 1M: recall 0.87 where FAISS's k-means gave 0.95 at the same probe count), so the
        # builder retrains whenever the namespace has doubled since: geometric growth keeps the total
        # retraining work proportional to the records written.
        self.trained_records = 0

    def build(self, published: PublishedIndex, work: BuildInput) -> tuple[PublishedIndex, BuildReport]:
        """Write the clusters ``work`` changes and publish the manifest; returns the new index."""
        started = time.perf_counter()
        layer = work.layer
        ids, dense, sparse, metadata = layer.state.live()
        fresh = _Group()
        fresh.extend(ids, dense, sparse, metadata)
        base_clusters = () if layer.cleared or published.manifest is None else published.cluster_ids
        removed = {} if layer.cleared else work.removed
        survivors = sum(published.counts[cid] - len(removed.get(cid, ())) for cid in base_clusters)
        total = survivors + len(fresh)
        version = published.version + 1
        clustered = published.centroids is not None and not layer.cleared
        target = self.config.target_cluster_size
        k = choose_k(total, target_cluster_size=target, flat_below=self.config.flat_records)
        if clustered and not self.trained_records:
            self.trained_records = published.count  # opened on an index trained before a restart
        if self.spec.is_sparse or k == 1:
            mode = "chunked" if self.spec.is_sparse else "flat"
            limit = self.config.sparse_chunk_records if self.spec.is_sparse else max(total, 1)
            plan = self._chunked(published, base_clusters, removed, fresh, limit, rebuild=clustered)
        elif not clustered or k > 4 * len(base_clusters) or total >= 2 * self.trained_records:
            mode = "clustered"
            if clustered and total >= 2 * self.trained_records:
                # Growing: train for twice the records, so clusters fill up to the target size until the
                # next retraining instead of being split in two (splits cluster worse than k-means over
                # everything: measured at 1M, 15% more data scanned for the same recall).
                k = choose_k(2 * total, target_cluster_size=target, flat_below=self.config.flat_records)
            plan = self._recluster(published, base_clusters, removed, fresh, k)
            self.trained_records = total
        else:
            mode = "incremental"
            plan = self._incremental(published, base_clusters, removed, fresh)
        new_index = self._publish(published, work, version, plan, total)
        if published.has_arena:
            # Selective filters used the old copy: make the new one here, not in the next query.
            new_index.prepare_arena()
        else:
            new_index.keep_in_memory(self.config.memory_copy_max_bytes)
        report = BuildReport(
            version,
            work.lsn,
            total,
            len(new_index.cluster_ids),
            len(plan.written),
            mode,
            time.perf_counter() - started,
        )
        logger.info("built %s", report)
        return new_index, report

    # --------------------------------------------------------------------------------------- gathering
    def _old_rows(
        self, published: PublishedIndex, cluster_id: int, removed: dict[int, frozenset[int]]
    ) -> _Group:
        """The rows of an old cluster that survive, copied out of the file."""
        file = published.file(cluster_id)
        gone = removed.get(cluster_id, frozenset())
        keep = np.arange(file.count, dtype=np.int64)
        if gone:
            keep = np.setdiff1d(keep, np.fromiter(gone, dtype=np.int64, count=len(gone)), assume_unique=True)
        group = _Group()
        if not len(keep):
            return group
        all_ids = file.ids
        all_metadata = file.metadata
        rows = keep.tolist()
        dense = None
        if file.dense is not None:  # one copy out of the mapped file, not two
            dense = np.array(file.dense[keep] if gone else file.dense, dtype=np.float32)
        sparse: list[SparseVector | None] = (
            [file.sparse_row(row) for row in rows] if file.sparse is not None else [None] * len(rows)
        )
        group.extend(_pick(all_ids, rows), dense, sparse, _pick(all_metadata, rows))
        return group

    def _chunked(
        self,
        published: PublishedIndex,
        base: tuple[int, ...],
        removed: dict[int, frozenset[int]],
        fresh: _Group,
        limit: int,
        *,
        rebuild: bool,
    ) -> _Plan:
        """Unclustered files of at most ``limit`` records; only the last one takes new records."""
        plan = _Plan(next_id=max(base, default=-1) + 1)
        kept: list[int] = []
        pending = _Group()
        for position, cluster_id in enumerate(base):
            is_last = position == len(base) - 1
            if rebuild or cluster_id in removed or (is_last and len(fresh)):
                old = self._old_rows(published, cluster_id, removed)
                pending.extend(old.ids, old.block(self.spec.dimension), old.sparse, old.metadata)
                plan.dropped.append(cluster_id)
            else:
                kept.append(cluster_id)
        pending.extend(fresh.ids, fresh.block(self.spec.dimension), fresh.sparse, fresh.metadata)
        plan.kept = kept
        for start in range(0, len(pending), limit):
            positions = np.arange(start, min(start + limit, len(pending)), dtype=np.int64)
            plan.add(pending.take(positions, self.spec.dimension), None)
        return plan

    def _recluster(
        self,
        published: PublishedIndex,
        base: tuple[int, ...],
        removed: dict[int, frozenset[int]],
        fresh: _Group,
        k: int,
    ) -> _Plan:
        """Train ``k`` centroids and assign every record: the namespace has no centroids worth keeping."""
        everything = _Group()
        for cluster_id in base:
            old = self._old_rows(published, cluster_id, removed)
            everything.extend(old.ids, old.block(self.spec.dimension), old.sparse, old.metadata)
        everything.extend(fresh.ids, fresh.block(self.spec.dimension), fresh.sparse, fresh.metadata)
        block = everything.block(self.spec.dimension)
        assert block is not None
        centroids = train_centroids(block, k, metric=self._metric, seed=self.config.seed)
        labels = assign(block, centroids, metric=self._metric)
        plan = _Plan(next_id=max(base, default=-1) + 1)
        plan.dropped = list(base)
        for position in range(len(centroids)):
            members = np.flatnonzero(labels == position)
            if len(members):
                plan.add(everything.take(members, self.spec.dimension), centroids[position])
        return plan

    def _incremental(
        self,
        published: PublishedIndex,
        base: tuple[int, ...],
        removed: dict[int, frozenset[int]],
        fresh: _Group,
    ) -> _Plan:
        """Rewrite only the clusters that lose or gain records; split big ones, merge small ones."""
        assert published.centroids is not None
        centroids = published.centroids
        groups: dict[int, _Group] = {}
        block = fresh.block(self.spec.dimension)
        if len(fresh):
            assert block is not None
            labels = assign(block, centroids, metric=self._metric)
            for position in np.unique(labels).tolist():
                members = np.flatnonzero(labels == position)
                groups[position] = fresh.take(members, self.spec.dimension)
        touched = set(groups) | {base.index(cid) for cid in removed if cid in published.counts}
        # A build that rewrites most clusters anyway also runs Lloyd rounds over every record, each
        # choosing among the centroids near its own (kmeans.refine): records placed by earlier builds
        # drift from their best cluster as centroids move and split, and reading the rest of the
        # clusters costs less than the extra data queries would otherwise scan.
        regroup = 2 * len(touched) >= len(base)
        if regroup:
            touched = set(range(len(base)))
        counts = [
            published.counts[cid] - len(removed.get(cid, ())) + len(groups.get(position, ()))
            for position, cid in enumerate(base)
        ]
        # Clusters that fell below an eighth of the target are folded into their nearest neighbour.
        target = self.config.target_cluster_size
        merges = merge_plan(counts, centroids, min_size=max(1, target // 8), metric=self._metric)
        merged_into: dict[int, int] = {}
        for source, destination in merges:
            merged_into[source] = destination
            touched.update((source, destination))
        plan = _Plan(next_id=max(base, default=-1) + 1)
        contents: dict[int, _Group] = {}
        for position in sorted(touched):
            cluster_id = base[position]
            group = self._old_rows(published, cluster_id, removed)
            extra = groups.get(position)
            if extra is not None:
                group.extend(extra.ids, extra.block(self.spec.dimension), extra.sparse, extra.metadata)
            contents[position] = group
            plan.dropped.append(cluster_id)
        for source, destination in merges:
            moving = contents.pop(source)
            into = contents[_final(destination, merged_into)]
            into.extend(moving.ids, moving.block(self.spec.dimension), moving.sparse, moving.metadata)
        plan.kept = [cid for position, cid in enumerate(base) if position not in touched]
        plan.kept_centroids = {cid: centroids[position] for position, cid in enumerate(base)}
        if regroup:
            contents = dict(enumerate(self._regrouped([group for group in contents.values() if len(group)])))
        for group in contents.values():
            if not len(group):
                continue
            dense = group.block(self.spec.dimension)
            assert dense is not None
            if len(group) > 2 * target:
                halves, labels = split_cluster(dense, self._metric, seed=self.config.seed)
                for half in (0, 1):
                    members = np.flatnonzero(labels == half)
                    plan.add(group.take(members, self.spec.dimension), halves[half])
            else:
                plan.add(group, _centroid(dense, self._metric))
        return plan

    def _regrouped(self, groups: list[_Group]) -> list[_Group]:
        """``groups`` after a few Lloyd rounds over all their records (:func:`kmeans.refine`)."""
        dimension = self.spec.dimension
        everything = _Group()
        # Stand-ins only: refine's first round moves every centroid to its (non-empty) group's mean.
        centers = []
        for group in groups:
            dense = group.block(dimension)
            assert dense is not None
            centers.append(dense[0])
            everything.extend(group.ids, dense, group.sparse, group.metadata)
        block = everything.block(dimension)
        assert block is not None
        start = np.repeat(np.arange(len(groups), dtype=np.int32), [len(group) for group in groups])
        labels = refine(block, start, np.stack(centers), metric=self._metric)
        order = np.argsort(labels, kind="stable")
        ends = np.cumsum(np.bincount(labels, minlength=len(groups))).tolist()
        return [
            everything.take(order[first:end], dimension)
            for first, end in zip([0, *ends[:-1]], ends, strict=True)
            if end > first
        ]

    # -------------------------------------------------------------------------------------- publishing
    def _publish(
        self,
        published: PublishedIndex,
        work: BuildInput,
        version: int,
        plan: _Plan,
        total: int,
    ) -> PublishedIndex:
        store, prefix = published.store, published.prefix
        refs: list[ClusterRef] = []
        centroid_rows: list[npt.NDArray[np.float32]] = []
        stats: dict[int, ClusterStats] = {}
        with_centroids = plan.kept_centroids is not None or any(c is not None for _, _, c in plan.new)
        for cluster_id in plan.kept:
            row = None
            if with_centroids and plan.kept_centroids is not None:
                row = len(centroid_rows)
                centroid_rows.append(plan.kept_centroids[cluster_id])
            refs.append(ClusterRef(cluster_id, published.keys[cluster_id], published.counts[cluster_id], row))
            stats[cluster_id] = published.stats[cluster_id]
        written: list[tuple[int, list[str]]] = []
        for cluster_id, group, centroid in plan.new:
            key = cluster_key(prefix, cluster_id, version)
            info = write_cluster(
                store,
                key,
                ids=group.ids,
                dense=group.block(self.spec.dimension),
                sparse=group.sparse if any(vector is not None for vector in group.sparse) else None,
                metadata=group.metadata,
                metric=self.spec.metric,
                postings=self.spec.is_sparse,
            )
            row = None
            if centroid is not None:
                row = len(centroid_rows)
                centroid_rows.append(centroid)
            refs.append(ClusterRef(cluster_id, key, len(group), row))
            stats[cluster_id] = info.stats
            written.append((cluster_id, group.ids))
        key_of_centroids = None
        if centroid_rows:
            key_of_centroids = centroids_key(prefix, version)
            write_centroids(store, key_of_centroids, np.stack(centroid_rows).astype(np.float32))
        manifest = Manifest(
            version=version,
            indexed_lsn=work.lsn,
            dimension=self.spec.dimension,
            metric=self.spec.metric,
            record_count=total,
            centroids_key=key_of_centroids,
            clusters=tuple(refs),
        )
        publish_manifest(store, prefix, manifest)
        if plan.kept:
            location = dict(published.location)
            for cluster_id in plan.dropped:
                for record_id in published.file(cluster_id).ids:
                    location.pop(record_id, None)
        else:
            location = {}
        for cluster_id, ids in written:
            base_location = pack_location(cluster_id, 0)
            location.update(zip(ids, range(base_location, base_location + len(ids)), strict=True))
        centroids = np.stack(centroid_rows).astype(np.float32) if centroid_rows else None
        if centroids is not None and any(ref.centroid_row is None for ref in refs):
            centroids = None
        return PublishedIndex(
            store,
            prefix,
            self.spec,
            published.cache,
            manifest=manifest,
            location=location,
            stats=stats,
            centroids=centroids,
        )


@dataclass(slots=True)
class _Plan:
    """The outcome of a build before it is written: clusters kept as they are and new files."""

    next_id: int
    kept: list[int] = field(default_factory=list)
    kept_centroids: dict[int, npt.NDArray[np.float32]] | None = None
    dropped: list[int] = field(default_factory=list)
    new: list[tuple[int, _Group, npt.NDArray[np.float32] | None]] = field(default_factory=list)

    def add(self, group: _Group, centroid: npt.NDArray[np.float32] | None) -> None:
        self.new.append((self.next_id, group, centroid))
        self.next_id += 1

    @property
    def written(self) -> list[int]:
        return [cluster_id for cluster_id, _, _ in self.new]


def _final(position: int, merged_into: dict[int, int]) -> int:
    """Follow a chain of merges (a -> b, b -> c) to where the records end up."""
    while position in merged_into:
        position = merged_into[position]
    return position


def _centroid(dense: npt.NDArray[np.float32], metric: Metric) -> npt.NDArray[np.float32]:
    """The mean of a cluster's vectors; unit length for cosine (spherical k-means)."""
    rows = dense.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        rows = rows / np.where(norms > 0, norms, 1.0)
    center = rows.mean(axis=0)
    if metric == "cosine":
        length = float(np.linalg.norm(center))
        if length > 0:
            center = center / length
    result: npt.NDArray[np.float32] = center.astype(np.float32)
    return result

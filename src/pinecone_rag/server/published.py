"""A namespace's published index: the cluster files its current manifest names, ready to query.

The index builder produces a new :class:`PublishedIndex` with every publish; readers use whichever one
the namespace held when their read began. Besides the manifest it keeps what queries need in memory:
where each id lives (cluster and row), each cluster's metadata statistics for the planner, and the
centroids by cluster position. Cluster files themselves are mapped on demand through a shared
:class:`~pinecone_rag.server.cluster_cache.ClusterCache`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from pinecone_rag.server.cluster_file import compute_norms
from pinecone_rag.server.cluster_stats import MetadataColumn, StringPostings
from pinecone_rag.server.column_filter import column_mask
from pinecone_rag.server.executor import ScanQuery, ScanResult, dense_scores, scan_cluster, top_positions
from pinecone_rag.server.manifest import load_current, read_centroids
from pinecone_rag.server.planner import may_match, plan_query
from pinecone_rag.server.records import Record, SparseVector

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import numpy.typing as npt

    from pinecone_rag.server.blobstore import BlobStore
    from pinecone_rag.server.cluster_cache import ClusterCache
    from pinecone_rag.server.cluster_file import ClusterFile
    from pinecone_rag.server.cluster_stats import ClusterStats
    from pinecone_rag.server.engine_config import EngineConfig
    from pinecone_rag.server.filters import Filter
    from pinecone_rag.server.manifest import Manifest
    from pinecone_rag.server.records import IndexSpec, Metric

_ROW_BITS: Final = 32
_ROW_MASK: Final = (1 << _ROW_BITS) - 1


def pack_location(cluster_id: int, row: int) -> int:
    """One int for (cluster, row): a dict of ints costs far less than a dict of tuples."""
    return (cluster_id << _ROW_BITS) | row


def unpack_location(location: int) -> tuple[int, int]:
    """Inverse of :func:`pack_location`."""
    return location >> _ROW_BITS, location & _ROW_MASK


@dataclass(frozen=True, slots=True)
class Hit:
    """A match in a cluster file."""

    score: float
    cluster_id: int
    row: int


class PublishedIndex:
    """The cluster files of one manifest, their statistics, centroids and id locations (immutable).

    Args:
        store: The index's blob store.
        prefix: The namespace's key prefix.
        spec: The index's metric and dimension.
        cache: The open-file cache shared by the index.
        manifest: The manifest, or None for a namespace that was never published.
        location: Every id in the manifest's clusters -> :func:`pack_location` of its cluster and row.
        stats: Each cluster's metadata statistics, by cluster id.
        centroids: Centroids by cluster position in ``manifest.clusters``, or None (unclustered).
    """

    def __init__(
        self,
        store: BlobStore,
        prefix: str,
        spec: IndexSpec,
        cache: ClusterCache,
        *,
        manifest: Manifest | None,
        location: dict[str, int],
        stats: dict[int, ClusterStats],
        centroids: npt.NDArray[np.float32] | None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.spec = spec
        self.cache = cache
        self.manifest = manifest
        self.location = location
        self.stats = stats
        self.centroids = centroids
        clusters = manifest.clusters if manifest is not None else ()
        self.keys: dict[int, str] = {ref.cluster_id: ref.key for ref in clusters}
        self.counts: dict[int, int] = {ref.cluster_id: ref.count for ref in clusters}
        self.cluster_ids: tuple[int, ...] = tuple(ref.cluster_id for ref in clusters)
        self._position = {cluster_id: position for position, cluster_id in enumerate(self.cluster_ids)}
        self._cluster_id_array = np.asarray(self.cluster_ids, dtype=np.int64)
        self._offsets = np.zeros(len(clusters) + 1, dtype=np.int64)
        np.cumsum([ref.count for ref in clusters], out=self._offsets[1:])
        self._columns: dict[str, MetadataColumn | None] = {}
        self._columns_lock = threading.Lock()
        self._arrays: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None] = [None] * len(
            clusters
        )

    @classmethod
    def empty(cls, store: BlobStore, prefix: str, spec: IndexSpec, cache: ClusterCache) -> PublishedIndex:
        """A namespace with nothing published."""
        return cls(store, prefix, spec, cache, manifest=None, location={}, stats={}, centroids=None)

    @classmethod
    def load(cls, store: BlobStore, prefix: str, spec: IndexSpec, cache: ClusterCache) -> PublishedIndex:
        """Open the namespace's current manifest (every cluster file is mapped and verified once).

        Raises:
            DataLossError: The manifest, the centroids or a cluster file is missing or damaged.
        """
        manifest = load_current(store, prefix)
        if manifest is None:
            return cls.empty(store, prefix, spec, cache)
        location: dict[str, int] = {}
        stats: dict[int, ClusterStats] = {}
        for ref in manifest.clusters:
            file = cache.get(ref.key)
            base = ref.cluster_id << _ROW_BITS
            location.update(zip(file.ids, range(base, base + file.count), strict=True))
            stats[ref.cluster_id] = file.stats
        centroids = None
        if manifest.centroids_key is not None and all(
            ref.centroid_row is not None for ref in manifest.clusters
        ):
            table = read_centroids(store, manifest.centroids_key)
            centroids = table[[ref.centroid_row or 0 for ref in manifest.clusters]]
        return cls(
            store, prefix, spec, cache, manifest=manifest, location=location, stats=stats, centroids=centroids
        )

    # ----------------------------------------------------------------------------------------- lookup
    @property
    def count(self) -> int:
        """Records in the cluster files."""
        return len(self.location)

    @property
    def indexed_lsn(self) -> int:
        """Every write up to this LSN is in the cluster files."""
        return 0 if self.manifest is None else self.manifest.indexed_lsn

    @property
    def version(self) -> int:
        """The manifest version (0 before the first publish)."""
        return 0 if self.manifest is None else self.manifest.version

    def file(self, cluster_id: int) -> ClusterFile:
        """The open cluster file of ``cluster_id``."""
        return self.cache.get(self.keys[cluster_id])

    def locate(self, record_id: str) -> tuple[int, int] | None:
        """(cluster id, row) of ``record_id``, or None when it is not in the cluster files."""
        location = self.location.get(record_id)
        return None if location is None else unpack_location(location)

    def record(self, cluster_id: int, row: int, *, values: bool = True, metadata: bool = True) -> Record:
        """One record; vectors are copied out of the mapping when asked for."""
        file = self.file(cluster_id)
        dense = None
        sparse = None
        if values:
            # Copies: a record outlives the query, and must not pin the file's mapping.
            dense = None if file.dense is None else np.array(file.dense[row])
            mapped = file.sparse_row(row)
            if mapped is not None:
                sparse = SparseVector(np.array(mapped.indices), np.array(mapped.values))
        return Record(file.id_at(row), dense, sparse, file.metadata[row] if metadata else None)

    def ids(self) -> Iterator[str]:
        """Every id in the cluster files (in no particular order)."""
        return iter(self.location)

    # ------------------------------------------------------------------------------------------ reads
    def matching(self, flt: Filter, hidden: Mapping[int, set[int]]) -> Iterator[tuple[int, int]]:
        """(cluster id, row) of every visible record whose metadata matches ``flt``."""
        for cluster_id in self.cluster_ids:
            if not may_match(flt.root, self.stats[cluster_id]):
                continue
            file = self.file(cluster_id)
            mask = column_mask(flt, file.metadata_columns(), file.count)
            gone = hidden.get(cluster_id)
            if gone:
                mask[list(gone)] = False
            for row in np.flatnonzero(mask).tolist():
                yield cluster_id, row

    def search(
        self,
        query: ScanQuery,
        hidden: Mapping[int, set[int]],
        config: EngineConfig,
        *,
        scan_factor: float | None = None,
        max_candidates: int | None = None,
        full_scan: bool = False,
    ) -> list[Hit]:
        """The best ``query.top_k`` visible records of the clusters the planner picks, best first."""
        if not self.cluster_ids:
            return []
        if (
            query.flt is not None
            and query.vector is not None
            and query.sparse is None
            and max_candidates is None
        ):
            matches = self._global_mask(query.flt, hidden)
            if int(matches.sum()) <= config.exact_filter_records:
                # A selective filter's nearest matches are scattered over many clusters (measured at
                # 1% selectivity: recall 0.5 with the default probe), and few rows match: scoring
                # exactly those rows is both exact and cheaper than probing.
                gathered = self._gather_matches(query, matches)
                return _merge([gathered], query) if gathered is not None else []
        counts = [self.counts[cluster_id] for cluster_id in self.cluster_ids]
        plan = plan_query(
            query.vector if self.centroids is not None else None,
            self.centroids,
            self.cluster_ids,
            counts,
            [self.stats[cluster_id] for cluster_id in self.cluster_ids],
            metric=_metric(self.spec.metric),
            top_k=query.top_k,
            flt=query.flt,
            scan_factor=scan_factor,
            max_candidates=max_candidates,
            default_probe_fraction=config.probe_fraction,
            min_probe=config.min_probe,
            full_scan=full_scan,
        )
        results: list[tuple[int, ScanResult]] = []
        matched = scanned = 0
        for position, cluster_id in enumerate(plan.clusters):
            if position >= plan.probe:
                if plan.max_records is not None and scanned >= plan.max_records:
                    break
                if not plan.expand_until_k or matched >= query.top_k:
                    break
            gone = hidden.get(cluster_id)
            rows = np.fromiter(gone, dtype=np.int64, count=len(gone)) if gone else None
            result = scan_cluster(self.file(cluster_id), query, rows)
            scanned += self.counts[cluster_id]
            matched += result.matched
            if len(result.rows):
                results.append((cluster_id, result))
        return _merge(results, query)

    def _global_column(self, field: str) -> MetadataColumn | None:
        """One metadata field over every cluster, rows numbered cluster after cluster (cached)."""
        with self._columns_lock:
            if field in self._columns:
                return self._columns[field]
        total = self._offsets[-1] if len(self._offsets) else 0
        present = np.zeros(total, dtype=np.bool_)
        numbers: npt.NDArray[np.float64] | None = None
        bools: npt.NDArray[np.int8] | None = None
        index: dict[str, int] = {}
        pieces: dict[int, list[npt.NDArray[np.int64]]] = {}
        seen = False
        for position, cluster_id in enumerate(self.cluster_ids):
            column = self.file(cluster_id).metadata_columns().get(field)
            if column is None:
                continue
            seen = True
            start = int(self._offsets[position])
            end = start + len(column.present)
            present[start:end] = column.present
            if column.numbers is not None:
                if numbers is None:
                    numbers = np.full(total, np.nan, dtype=np.float64)
                numbers[start:end] = column.numbers
            if column.bools is not None:
                if bools is None:
                    bools = np.full(total, -1, dtype=np.int8)
                bools[start:end] = column.bools
            for value in column.strings:
                code = index.setdefault(value, len(index))
                pieces.setdefault(code, []).append(column.strings[value] + start)
        merged: MetadataColumn | None = None
        if seen:
            offsets = np.zeros(len(index) + 1, dtype=np.int64)
            groups = [np.concatenate(pieces[code]) for code in range(len(index))]
            np.cumsum([len(group) for group in groups], out=offsets[1:])
            rows = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
            merged = MetadataColumn(present, numbers, bools, StringPostings(index, offsets, rows))
        with self._columns_lock:
            self._columns[field] = merged
        return merged

    def _dense_arrays(self, position: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
        """The mapped vectors and norms of the cluster at ``position``, held after first use.

        Holding the arrays keeps the mapping alive past cache eviction; that is only address space,
        the page cache decides what stays in memory.
        """
        arrays = self._arrays[position]
        if arrays is None:
            file = self.file(self.cluster_ids[position])
            if file.dense is None or file.norms is None:
                return None
            arrays = self._arrays[position] = (file.dense, file.norms)
        return arrays

    def _global_mask(self, flt: Filter, hidden: Mapping[int, set[int]]) -> npt.NDArray[np.bool_]:
        """Which rows of the whole index (numbered as in :meth:`_global_column`) match and are visible."""
        columns = {field: self._global_column(field) for field in flt.fields}
        total = int(self._offsets[-1]) if len(self._offsets) else 0
        mask = column_mask(flt, {k: v for k, v in columns.items() if v is not None}, total)
        for cluster_id, rows in hidden.items():
            position = self._position.get(cluster_id)
            if position is not None and rows:
                mask[np.fromiter(rows, dtype=np.int64, count=len(rows)) + self._offsets[position]] = False
        return mask

    def _gather_matches(self, query: ScanQuery, mask: npt.NDArray[np.bool_]) -> tuple[int, ScanResult] | None:
        """Score exactly the rows of ``mask`` (a selective filter, dense query), gathered per cluster.

        The result is one pseudo-cluster whose rows are packed locations (:func:`pack_location`).
        """
        matches = np.flatnonzero(mask)
        if not len(matches) or query.vector is None:
            return None
        positions = np.searchsorted(self._offsets, matches, side="right") - 1
        local = matches - self._offsets[positions]
        packed = (self._cluster_id_array[positions] << _ROW_BITS) | local
        starts = np.flatnonzero(np.diff(positions, prepend=-1))
        ends = np.append(starts[1:], len(matches))
        # One gather per cluster is the only per-cluster work left (norms are recomputed from the
        # gathered rows, locations were packed above), which is what makes this beat probing.
        vectors: list[npt.NDArray[np.float32]] = []
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            arrays = self._dense_arrays(int(positions[start]))
            if arrays is None:
                return None
            vectors.append(arrays[0][local[start:end]])
        block = np.concatenate(vectors)
        norms = compute_norms(block, query.metric)
        scores = dense_scores(block, norms, query.vector, query.metric)
        order = top_positions(scores, query.top_k, ascending=query.ascending)
        return _PACKED, ScanResult(packed[order], scores[order], len(packed))


_PACKED: Final = -1
"""The cluster id of a result whose rows are packed locations (:func:`pack_location`)."""


def _merge(results: list[tuple[int, ScanResult]], query: ScanQuery) -> list[Hit]:
    if not results:
        return []
    scores = np.concatenate([result.scores for _, result in results])
    clusters = np.concatenate(
        [
            (result.rows >> _ROW_BITS) if cid == _PACKED else np.full(len(result.rows), cid, dtype=np.int64)
            for cid, result in results
        ]
    )
    rows = np.concatenate(
        [(result.rows & _ROW_MASK) if cid == _PACKED else result.rows for cid, result in results]
    )
    key = scores if query.ascending else -scores
    order = np.lexsort((rows, clusters, key))[: query.top_k]
    return [Hit(float(scores[i]), int(clusters[i]), int(rows[i])) for i in order]


def _metric(metric: str) -> Metric:
    assert metric in ("cosine", "euclidean", "dotproduct")
    return metric  # type: ignore[return-value]

"""A namespace's published index: the cluster files its current manifest names, ready to query.

The index builder produces a new :class:`PublishedIndex` with every publish; readers use whichever one
the namespace held when their read began. Besides the manifest it keeps what queries need in memory:
where each id lives (cluster and row), each cluster's metadata statistics for the planner, and the
centroids by cluster position. Cluster files themselves are mapped on demand through a shared
:class:`~pinecone_rag.server.cluster_cache.ClusterCache`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from pinecone_rag.server.cluster_stats import MetadataColumn, StringPostings
from pinecone_rag.server.column_filter import column_mask
from pinecone_rag.server.executor import ScanQuery, ScanResult, scan_cluster
from pinecone_rag.server.manifest import load_current, read_centroids
from pinecone_rag.server.planner import nearest_clusters, plan_query, probe_count
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
    from pinecone_rag.server.planner import QueryPlan
    from pinecone_rag.server.records import IndexSpec, Metric

_FILTERS_REMEMBERED: Final = 64
"""Filters whose matches an index remembers (see :meth:`PublishedIndex._filter_matches`)..."""
_FILTER_MEMORY_BYTES: Final = 64 << 20
"""...within this many bytes (a non-selective filter's mask costs a byte per record)."""
_GATHERED_MAX_BYTES: Final = 16 << 20
"""The largest block of vectors a remembered selective filter keeps gathered (``_FilterMatches``)."""
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


@dataclass(frozen=True, slots=True)
class _FilterMatches:
    """What one filter selects in a published index.

    Attributes:
        rows: The matching rows (numbered across clusters, as in ``PublishedIndex._global_column``) when
            there are at most ``exact_filter_records`` of them, else None.
        mask: Otherwise, which rows match.
        survivors: Positions of the clusters holding at least one match: the exact form of pruning by
            statistics.
        gathered: The vectors and ranking factors of ``rows``, copied out of the in-memory copy when
            they take at most :data:`_GATHERED_MAX_BYTES`: later queries with the filter then score one
            contiguous block instead of gathering scattered rows again (3-4x cheaper at 10k rows).
    """

    rows: npt.NDArray[np.int64] | None
    mask: npt.NDArray[np.bool_] | None
    survivors: npt.NDArray[np.int64]
    gathered: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None

    @property
    def nbytes(self) -> int:
        """Memory held."""
        arrays = (self.survivors, self.rows, self.mask, *(self.gathered or ()))
        return sum(array.nbytes for array in arrays if array is not None)


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
        self._centroid_norms = None if centroids is None else np.einsum("ij,ij->i", centroids, centroids)
        # What nearest_clusters ranks by: unit centroids for cosine (one dot product per centroid).
        self._ranking_centroids = centroids
        if centroids is not None and spec.metric == "cosine":
            assert self._centroid_norms is not None
            lengths = np.sqrt(self._centroid_norms)[:, None]
            self._ranking_centroids = (centroids / np.where(lengths > 0, lengths, 1.0)).astype(np.float32)
        clusters = manifest.clusters if manifest is not None else ()
        self.keys: dict[int, str] = {ref.cluster_id: ref.key for ref in clusters}
        self.counts: dict[int, int] = {ref.cluster_id: ref.count for ref in clusters}
        self.cluster_ids: tuple[int, ...] = tuple(ref.cluster_id for ref in clusters)
        self._position = {cluster_id: position for position, cluster_id in enumerate(self.cluster_ids)}
        self._cluster_id_array = np.asarray(self.cluster_ids, dtype=np.int64)
        # Cluster id -> position as an array: plans name clusters by id, and a dict lookup per cluster
        # would cost more than scanning a small cluster.
        self._position_of = np.full(max(self.cluster_ids, default=-1) + 1, -1, dtype=np.int64)
        self._position_of[self._cluster_id_array] = np.arange(len(clusters), dtype=np.int64)
        self._counts = np.asarray([ref.count for ref in clusters], dtype=np.int64)
        self._stats = [stats[ref.cluster_id] for ref in clusters]
        self._offsets = np.zeros(len(clusters) + 1, dtype=np.int64)
        np.cumsum([ref.count for ref in clusters], out=self._offsets[1:])
        self._columns: dict[str, MetadataColumn | None] = {}
        self._columns_lock = threading.Lock()
        self._factors: list[npt.NDArray[np.float32] | None] = [None] * len(clusters)
        self._arena: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None
        self._arena_lock = threading.Lock()
        # Keyed by (filter, selectivity limit): the limit decides whether an entry keeps rows or a mask.
        self._selected: OrderedDict[tuple[Filter, int], _FilterMatches] = OrderedDict()

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
        """(cluster id, row) of every visible record whose metadata matches ``flt``, cluster by cluster."""
        if not self.cluster_ids:
            return
        selected = self._filter_matches(flt, 0)
        rows = selected.rows if selected.mask is None else np.flatnonzero(selected.mask)
        assert rows is not None
        gone = self._hidden_rows(hidden) if hidden else None
        if gone is not None:
            rows = rows[~np.isin(rows, gone)]
        positions = np.searchsorted(self._offsets, rows, side="right") - 1
        local = rows - self._offsets[positions]
        yield from zip(self._cluster_id_array[positions].tolist(), local.tolist(), strict=True)

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
        selected = None if query.flt is None else self._filter_matches(query.flt, config.exact_filter_records)
        dense_only = query.vector is not None and query.sparse is None
        if selected is not None and selected.rows is not None and dense_only and max_candidates is None:
            # A selective filter's nearest matches are scattered over many clusters (measured at 1%
            # selectivity: recall 0.5 with the default probe), and few rows match: scoring exactly those
            # rows is both exact and cheaper than probing.
            gathered = self._gather_matches(query, selected, hidden)
            if gathered is not None:
                return gathered
        if selected is None and dense_only and not full_scan and max_candidates is None:
            hits = self._scan_nearest(query, hidden, config, scan_factor)
            if hits is not None:
                return hits
        plan = plan_query(
            query.vector if self.centroids is not None else None,
            self.centroids,
            self._cluster_id_array,
            self._counts,
            self._stats,
            metric=_metric(self.spec.metric),
            top_k=query.top_k,
            flt=query.flt,
            scan_factor=scan_factor,
            max_candidates=max_candidates,
            default_probe_fraction=config.probe_fraction,
            min_probe=config.min_probe,
            full_scan=full_scan,
            survivors=None if selected is None else selected.survivors,
            centroid_norms=self._centroid_norms,
        )
        if dense_only:
            limit = len(plan.clusters) if plan.expand_until_k else plan.probe
            positions = self._position_of[np.fromiter(plan.clusters[:limit], dtype=np.int64, count=limit)]
            mask = None if selected is None else selected.mask
            hits = self._scan_dense(positions, query, hidden, mask, plan=plan)
            if hits is not None:
                return hits
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

    def _scan_nearest(
        self,
        query: ScanQuery,
        hidden: Mapping[int, set[int]],
        config: EngineConfig,
        scan_factor: float | None,
    ) -> list[Hit] | None:
        """An unfiltered dense query over the clusters nearest to it, planned without ordering them all.

        The same clusters :func:`plan_query` would scan first; None (plan in full) when they hold fewer
        than ``top_k`` records or the index has no centroids or vectors.
        """
        if self._ranking_centroids is None or query.vector is None:
            return None
        probe = probe_count(len(self.cluster_ids), scan_factor, config.probe_fraction, config.min_probe)
        norms = self._centroid_norms if query.metric == "euclidean" else None
        vector = np.asarray(query.vector, dtype=np.float32)
        positions = nearest_clusters(vector, self._ranking_centroids, norms, probe)
        if int(self._counts[positions].sum()) < query.top_k:
            return None
        return self._scan_dense(positions, query, hidden, None, plan=None)

    def _scan_dense(
        self,
        positions: npt.NDArray[np.int64],
        query: ScanQuery,
        hidden: Mapping[int, set[int]],
        mask: npt.NDArray[np.bool_] | None,
        *,
        plan: QueryPlan | None,
    ) -> list[Hit] | None:
        """A dense query over the clusters at ``positions``: one key buffer, one top-k; None without vectors.

        With a ``plan`` that expands, clusters past its probe count are scanned only while fewer than
        ``top_k`` matches were found (and its record cap allows); without one, every position is scanned.

        The per-cluster work is one matrix-vector product written straight into a shared buffer, one or
        two in-place elementwise steps (:func:`_rank_keys`), and for a filter one slice of its global
        ``mask``: no per-cluster top-k, result object or merge, so small clusters cost little more than
        the bytes they hold. Rows that fail the filter or that newer writes hid get an infinite key.
        """
        assert query.vector is not None
        prepared = _prepare(query.vector, query.metric)
        starts = np.zeros(len(positions) + 1, dtype=np.int64)
        np.cumsum(self._counts[positions], out=starts[1:])
        keys = np.empty(int(starts[-1]), dtype=np.float32)
        bounds = starts.tolist()
        offsets = self._offsets
        arena = self._arena
        counting = plan is not None and plan.expand_until_k
        if arena is not None and mask is None and not counting:
            self._scan_arena(arena, positions, bounds, prepared, metric=query.metric, keys=keys)
            if hidden:
                self._hide(hidden, positions, bounds, keys)
            return self._best(keys, starts, positions, query)
        metric, top_k = query.metric, query.top_k
        probe = len(positions) if plan is None else plan.probe
        cap = None if plan is None else plan.max_records
        # The loop runs once per scanned cluster: everything it can skip or hoist, it does.
        matched = scanned = used = 0
        for slot, position in enumerate(positions.tolist()):
            if slot >= probe and ((cap is not None and scanned >= cap) or matched >= top_k):
                break
            arrays = self._rank_arrays(position)
            if arrays is None:
                return None
            segment = keys[bounds[slot] : bounds[slot + 1]]
            _rank_keys(arrays[0], arrays[1], prepared, metric, segment)
            if mask is not None:
                segment[~mask[offsets[position] : offsets[position + 1]]] = np.inf
            if hidden:
                gone = hidden.get(self.cluster_ids[position])
                if gone:
                    segment[np.fromiter(gone, dtype=np.int64, count=len(gone))] = np.inf
            if counting:
                matched += int(np.count_nonzero(segment != np.inf))
            scanned += bounds[slot + 1] - bounds[slot]
            used = slot + 1
        return self._best(keys[: bounds[used]], starts, positions, query)

    def _scan_arena(
        self,
        arena: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
        positions: npt.NDArray[np.int64],
        bounds: list[int],
        prepared: npt.NDArray[np.float32],
        *,
        metric: str,
        keys: npt.NDArray[np.float32],
    ) -> None:
        """Ranking keys of every row of the clusters at ``positions`` from the in-memory copy.

        The copy's cosine rows are unit vectors with factor -1, so ``x.(-q)`` is the key itself: the loop
        is one matrix-vector product per cluster, plus one addition for euclidean.
        """
        vectors, factor = arena
        side = np.negative(prepared) if metric == "cosine" else prepared
        lows = self._offsets[positions].tolist()
        highs = self._offsets[positions + 1].tolist()
        for low, high, start, end in zip(lows, highs, bounds, bounds[1:], strict=False):
            np.matmul(vectors[low:high], side, out=keys[start:end])
        if metric == "euclidean":
            for low, high, start, end in zip(lows, highs, bounds, bounds[1:], strict=False):
                np.add(keys[start:end], factor[low:high], out=keys[start:end])

    def _hide(
        self,
        hidden: Mapping[int, set[int]],
        positions: npt.NDArray[np.int64],
        bounds: list[int],
        keys: npt.NDArray[np.float32],
    ) -> None:
        """Give rows that newer writes replaced or deleted an infinite key."""
        for slot, cluster_id in enumerate(self._cluster_id_array[positions].tolist()):
            rows = hidden.get(cluster_id)
            if rows:
                keys[bounds[slot] + np.fromiter(rows, dtype=np.int64, count=len(rows))] = np.inf

    def _best(
        self,
        keys: npt.NDArray[np.float32],
        starts: npt.NDArray[np.int64],
        positions: npt.NDArray[np.int64],
        query: ScanQuery,
    ) -> list[Hit]:
        """The hits of the lowest keys of a scan whose cluster ``positions`` start at ``starts``."""
        candidates = _lowest(keys, query.top_k)
        slots = np.searchsorted(starts, candidates, side="right") - 1
        return _hits(
            keys[candidates], self._cluster_id_array[positions[slots]], candidates - starts[slots], query
        )

    def _rank_arrays(self, position: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
        """The vectors of a cluster and the per-row factor of its ranking keys.

        Cosine uses ``-1 / |x|`` (0 for a zero vector, whose score is 0), euclidean ``|x|^2``; the factor
        is computed once and kept (4 bytes a record). The vectors come through the cluster cache on every
        call rather than being held here: a mapping holds a file descriptor, and only the cache's byte
        budget may decide how many stay open.
        """
        arena = self._arena
        if arena is not None:
            # Once the in-memory copy exists, scans read it too: the mapped files' pages are then left to
            # the page cache instead of being resident twice.
            start, end = int(self._offsets[position]), int(self._offsets[position + 1])
            return arena[0][start:end], arena[1][start:end]
        file = self.file(self.cluster_ids[position])
        dense, norms = file.dense, file.norms
        if dense is None or norms is None:
            return None
        factor = self._factors[position]
        if factor is None:
            if self.spec.metric == "cosine":
                with np.errstate(divide="ignore"):
                    factor = np.where(norms > 0, np.float32(-1.0) / norms, np.float32(0.0)).astype(np.float32)
            else:
                factor = np.array(norms)  # a copy: the mapping it came from may be closed by the cache
            self._factors[position] = factor
        return dense, factor

    @property
    def has_arena(self) -> bool:
        """Whether the contiguous copy of every vector (:meth:`prepare_arena`) has been made."""
        return self._arena is not None

    def prepare_arena(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
        """Copy every cluster's vectors and ranking factors into one array, rows numbered globally.

        Selective filters gather scattered rows from every cluster; one fancy index into a single array
        replaces a Python step per cluster (which, at a thousand clusters, cost more than the scoring),
        and scans of the copy skip the cluster cache. For cosine the copy holds unit vectors and the
        factor is -1 (0 for a zero vector), so ranking a row is one dot product. None when the index has
        no dense vectors.
        """
        with self._arena_lock:
            if self._arena is None:
                parts = [self._rank_arrays(position) for position in range(len(self.cluster_ids))]
                present = [part for part in parts if part is not None]
                if len(present) != len(parts) or not present:
                    return None
                vectors = np.concatenate([part[0] for part in present])
                factor = np.concatenate([part[1] for part in present])
                if self.spec.metric == "cosine":
                    # factor is -1/|x|: scaling by its negation normalises, and zero rows stay zero.
                    np.multiply(vectors, np.negative(factor)[:, None], out=vectors)
                    factor = np.where(factor != 0, np.float32(-1.0), np.float32(0.0)).astype(np.float32)
                self._arena = (vectors, factor)
            return self._arena

    def keep_in_memory(self, max_bytes: int) -> None:
        """Make the in-memory copy (:meth:`prepare_arena`) if the index is clustered and fits ``max_bytes``.

        A flat index is one contiguous scan already.
        """
        dimension = self.spec.dimension
        if self.centroids is not None and dimension and 0 < self.count * dimension * 4 <= max_bytes:
            self.prepare_arena()

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

    def _filter_matches(self, flt: Filter, limit: int) -> _FilterMatches:
        """What ``flt`` selects in this index, remembered per filter (a small LRU bounded in bytes).

        Applications repeat the same filters (a tenant, a user, a source), and evaluating one over every
        row costs more than scoring the rows it selects. The index is immutable, so entries never go
        stale: the next publish starts a new index with an empty memory. Rows hidden by newer writes are
        removed at query time.
        """
        with self._columns_lock:
            known = self._selected.get((flt, limit))
            if known is not None:
                self._selected.move_to_end((flt, limit))
                return known
        columns = {field: self._global_column(field) for field in flt.fields}
        total = int(self._offsets[-1]) if len(self._offsets) else 0
        mask = column_mask(flt, {k: v for k, v in columns.items() if v is not None}, total)
        running = np.zeros(total + 1, dtype=np.int64)
        np.cumsum(mask, out=running[1:])
        per_cluster = running[self._offsets[1:]] - running[self._offsets[:-1]]
        survivors = np.flatnonzero(per_cluster)
        if int(running[-1]) <= limit:
            rows = np.flatnonzero(mask)
            gathered = None
            if 0 < len(rows) * (self.spec.dimension or 0) * 4 <= _GATHERED_MAX_BYTES:
                arena = self.prepare_arena()
                if arena is not None:
                    gathered = (np.take(arena[0], rows, axis=0), arena[1][rows])
            selected = _FilterMatches(rows, None, survivors, gathered)
        else:
            selected = _FilterMatches(None, mask, survivors)
        with self._columns_lock:
            self._selected[flt, limit] = selected
            while len(self._selected) > 1 and (
                len(self._selected) > _FILTERS_REMEMBERED
                or sum(entry.nbytes for entry in self._selected.values()) > _FILTER_MEMORY_BYTES
            ):
                self._selected.popitem(last=False)
        return selected

    def _hidden_rows(self, hidden: Mapping[int, set[int]]) -> npt.NDArray[np.int64] | None:
        """The global row numbers newer writes hid, or None when there are none."""
        gone = [
            np.fromiter(cluster_rows, dtype=np.int64, count=len(cluster_rows)) + self._offsets[position]
            for cluster_id, cluster_rows in hidden.items()
            if cluster_rows and (position := self._position.get(cluster_id)) is not None
        ]
        return np.concatenate(gone) if gone else None

    def _gather_matches(
        self, query: ScanQuery, selected: _FilterMatches, hidden: Mapping[int, set[int]]
    ) -> list[Hit] | None:
        """Score exactly the rows a selective filter matches (dense query); None if impossible."""
        rows = selected.rows
        if query.vector is None or rows is None:
            return None
        prepared = _prepare(query.vector, query.metric)
        gone = self._hidden_rows(hidden) if hidden else None
        keys = np.empty(len(rows), dtype=np.float32)
        if selected.gathered is not None:
            _rank_keys(selected.gathered[0], selected.gathered[1], prepared, query.metric, keys)
            if gone is not None:
                keys[np.isin(rows, gone)] = np.inf
        else:
            if gone is not None:
                rows = rows[~np.isin(rows, gone)]
                keys = keys[: len(rows)]
            if not len(rows):
                return []
            arena = self.prepare_arena()
            if arena is None:
                return None
            # np.take gathers rows about twice as fast as fancy indexing (measured, 10k of 1M x 128 rows).
            _rank_keys(np.take(arena[0], rows, axis=0), arena[1][rows], prepared, query.metric, keys)
        candidates = _lowest(keys, query.top_k)
        found = rows[candidates]
        positions = np.searchsorted(self._offsets, found, side="right") - 1
        return _hits(
            keys[candidates], self._cluster_id_array[positions], found - self._offsets[positions], query
        )


def _prepare(vector: npt.NDArray[np.floating], metric: str) -> npt.NDArray[np.float32]:
    """The query side of :func:`_rank_keys`: ``q`` (cosine), ``-q`` (dot product), ``-2q`` (euclidean)."""
    scale = {"cosine": 1.0, "euclidean": -2.0}.get(metric, -1.0)
    prepared: npt.NDArray[np.float32] = np.ascontiguousarray(np.float32(scale) * vector, dtype=np.float32)
    return prepared


def _rank_keys(
    dense: npt.NDArray[np.float32],
    factor: npt.NDArray[np.float32],
    prepared: npt.NDArray[np.float32],
    metric: str,
    out: npt.NDArray[np.float32],
) -> None:
    """Write ranking keys of ``dense`` rows into ``out``: lower is better for every metric.

    The keys leave out the query's own norm, which is the same for every row: cosine ranks by
    ``x.q * (-1 / |x|)``, euclidean by ``x.(-2q) + |x|^2``, dot product by ``x.(-q)`` (``prepared`` is the
    query side from :func:`_prepare`, ``factor`` the row side), so each costs one matrix-vector product
    and at most one elementwise step. :func:`_hits` turns the keys of the winners back into scores.
    """
    np.matmul(dense, prepared, out=out)
    if metric == "cosine":
        np.multiply(out, factor, out=out)
    elif metric == "euclidean":
        np.add(out, factor, out=out)


def _lowest(keys: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    """Positions of the ``k`` lowest finite keys, plus every key tied with the k-th (unordered).

    Keeping the ties lets :func:`_hits` break them by location, so the result does not depend on the
    order in which clusters were scanned.
    """
    if len(keys) > k:
        threshold = keys[np.argpartition(keys, k - 1)[k - 1]]
        candidates = np.flatnonzero(keys <= threshold)
    else:
        candidates = np.arange(len(keys), dtype=np.int64)
    finite: npt.NDArray[np.int64] = candidates[np.isfinite(keys[candidates])]
    return finite


def _hits(
    keys: npt.NDArray[np.float32],
    clusters: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    query: ScanQuery,
) -> list[Hit]:
    """The best ``query.top_k`` of the candidates as hits with exact scores, ties by (cluster, row)."""
    order = np.lexsort((rows, clusters, keys))[: query.top_k]
    best = keys[order]
    assert query.vector is not None
    if query.metric == "euclidean":
        squared = np.float32(np.dot(query.vector, query.vector))
        scores = np.maximum(best + squared, np.float32(0.0))
    elif query.metric == "cosine":
        norm = np.float32(np.linalg.norm(query.vector))
        scores = -best / norm if norm > 0 else np.zeros(len(best), dtype=np.float32)
    else:
        scores = -best
    return [
        Hit(float(score), int(cluster), int(row))
        for score, cluster, row in zip(
            scores.astype(np.float32).tolist(), clusters[order].tolist(), rows[order].tolist(), strict=True
        )
    ]


def _merge(results: list[tuple[int, ScanResult]], query: ScanQuery) -> list[Hit]:
    if not results:
        return []
    scores = np.concatenate([result.scores for _, result in results])
    clusters = np.concatenate([np.full(len(result.rows), cid, dtype=np.int64) for cid, result in results])
    rows = np.concatenate([result.rows for _, result in results])
    key = scores if query.ascending else -scores
    order = np.lexsort((rows, clusters, key))[: query.top_k]
    return [Hit(float(scores[i]), int(clusters[i]), int(rows[i])) for i in order]


def _metric(metric: str) -> Metric:
    assert metric in ("cosine", "euclidean", "dotproduct")
    return metric  # type: ignore[return-value]

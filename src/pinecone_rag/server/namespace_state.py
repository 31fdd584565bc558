"""What a namespace holds at one LSN: freshness layers over the published cluster index.

Three layers, newest first:

* the **active** freshness layer takes every applied write;
* the **frozen** layer is the previous active one while the index builder turns it into cluster files
  (there is none between builds);
* the **published** index is the cluster files of the current manifest.

A record lives in the newest layer that knows its id: a layer's records hide older copies below it, and
a layer's ``deleted`` ids (or a ``cleared`` flag, after delete-all) hide records below it that no longer
exist. Rather than looking every scanned row up by id, the hidden rows of the lower layers are tracked as
they are hidden (``hidden_frozen``, ``hidden_published``), so scans only mask them out. The record count
is kept exact the same way: each write knows whether the id it touches was visible before.

Writes are applied by one thread at a time under the namespace's write lock; reads share its read lock.
When the builder publishes, :meth:`NamespaceState.install` swaps in the new index in the same state:
what the frozen layer held is now in cluster files, and the rows the active layer hides are found again
in the new files.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pinecone_rag.server.executor import ScanQuery
from pinecone_rag.server.filters import parse_filter
from pinecone_rag.server.freshness import FreshnessState
from pinecone_rag.server.metadata import merge_metadata
from pinecone_rag.server.ops import (
    DeleteAllOp,
    DeleteFilterOp,
    DeleteIdsOp,
    Op,
    UpdateFilterOp,
    UpdateOp,
    UpsertOp,
)
from pinecone_rag.server.published import unpack_location
from pinecone_rag.server.records import Record, ScoredRecord

if TYPE_CHECKING:
    from pinecone_rag.server.engine_config import EngineConfig
    from pinecone_rag.server.filters import Filter
    from pinecone_rag.server.published import PublishedIndex
    from pinecone_rag.server.records import FloatArray, IndexSpec, Metadata, SparseVector


@dataclass(slots=True)
class FreshnessLayer:
    """Writes since the layer began: records, ids deleted from below, and whether below was cleared."""

    state: FreshnessState
    deleted: set[str] = field(default_factory=set)
    cleared: bool = False

    @property
    def empty(self) -> bool:
        """The layer changes nothing."""
        return not len(self.state) and not self.deleted and not self.cleared


@dataclass(frozen=True, slots=True)
class BuildInput:
    """What the builder folds into a new index: the frozen layer and the published rows it replaces."""

    layer: FreshnessLayer
    removed: dict[int, frozenset[int]]
    lsn: int


class NamespaceState:
    """The layered, exactly counted state of one namespace (see the module docstring).

    Args:
        spec: The index's dimension, metric and type.
        published: The published index to start from.
        config: Engine tuning (planner defaults).
    """

    def __init__(self, spec: IndexSpec, published: PublishedIndex, config: EngineConfig) -> None:
        self.spec = spec
        self.config = config
        self.published = published
        self.active = FreshnessLayer(FreshnessState(spec))
        self.frozen: FreshnessLayer | None = None
        self.hidden_frozen: set[int] = set()
        self.hidden_published: dict[int, set[int]] = {}
        self.count = published.count
        self.applied_lsn = published.indexed_lsn
        self._sorted_ids: list[str] | None = None

    def __len__(self) -> int:
        return self.count

    # ------------------------------------------------------------------------------------- visibility
    def get(self, record_id: str) -> Record | None:
        """The visible record with ``record_id``, or None."""
        active = self.active
        row = active.state.row(record_id)
        if row is not None:
            return active.state.record_at(row)
        if active.cleared or record_id in active.deleted:
            return None
        frozen = self.frozen
        if frozen is not None:
            row = frozen.state.row(record_id)
            if row is not None:
                return frozen.state.record_at(row)
            if frozen.cleared or record_id in frozen.deleted:
                return None
        location = self.published.locate(record_id)
        return None if location is None else self.published.record(*location)

    def metadata_of(self, record_id: str) -> Metadata | None:
        """The metadata of the visible record ``record_id`` (None when it has none or does not exist)."""
        record = self.get(record_id)
        return None if record is None else record.metadata

    def _take(self, record_id: str) -> bool:
        """Hide the copies of ``record_id`` below the active layer; True when the id was visible."""
        active = self.active
        if active.state.row(record_id) is not None:
            return True  # its copies below were hidden when the active layer first took it
        if active.cleared:
            return False
        if record_id in active.deleted:
            return False  # a later upsert leaves the tombstone: the layer's own record takes precedence
        frozen = self.frozen
        if frozen is not None:
            row = frozen.state.row(record_id)
            if row is not None:
                self.hidden_frozen.add(row)
                return True
            if frozen.cleared or record_id in frozen.deleted:
                return False
        location = self.published.location.get(record_id)
        if location is None:
            return False
        cluster_id, row = unpack_location(location)
        self.hidden_published.setdefault(cluster_id, set()).add(row)
        return True

    # ----------------------------------------------------------------------------------------- writes
    def apply(self, op: Op, lsn: int) -> int:
        """Apply one logged operation at ``lsn``; returns how many records it wrote or matched."""
        self._sorted_ids = None
        self.applied_lsn = lsn
        if isinstance(op, UpsertOp):
            batch = op.batch
            unique = dict.fromkeys(batch.ids).keys()
            # _take is False, and changes nothing, for ids that no layer holds (most ids, in bulk ingest):
            # set intersections, run in C, leave only the ids that may be there.
            known = unique & self.active.state.id_view()
            if self.frozen is not None:
                known |= unique & self.frozen.state.id_view()
            known |= unique & self.published.location.keys()
            self.count += len(unique) - sum(map(self._take, known))
            self.active.state.append(
                batch.ids, batch.dense, batch.sparse, batch.metadata, batch.squared_norms
            )
            return len(batch)
        if isinstance(op, DeleteIdsOp):
            return self._delete(dict.fromkeys(op.ids))
        if isinstance(op, DeleteFilterOp):
            flt = parse_filter(op.filter)
            return self._delete(self.matching_ids(flt) if flt is not None else self.sorted_ids())
        if isinstance(op, DeleteAllOp):
            count = self.count
            self.active = FreshnessLayer(FreshnessState(self.spec), cleared=True)
            self.count = 0
            return count
        if isinstance(op, UpdateOp):
            return self._update(op.id, op.values, op.sparse, op.set_metadata)
        if isinstance(op, UpdateFilterOp):
            flt = parse_filter(op.filter)
            ids = self.matching_ids(flt) if flt is not None else self.sorted_ids()
            for record_id in ids:
                self._update(record_id, None, None, op.set_metadata)
            return len(ids)
        raise TypeError(f"unknown operation {op!r}")

    def _delete(self, ids: dict[str, None] | list[str]) -> int:
        active = self.active
        killed = 0
        for record_id in list(ids):
            if not self._take(record_id):
                continue
            killed += 1
            active.state.kill(record_id)
            if not active.cleared:
                active.deleted.add(record_id)
        self.count -= killed
        return killed

    def _update(
        self,
        record_id: str,
        values: FloatArray | None,
        sparse: SparseVector | None,
        set_metadata: Metadata | None,
    ) -> int:
        state = self.active.state
        if state.row(record_id) is not None and values is None and sparse is None:
            if set_metadata is not None:
                state.merge_metadata(record_id, set_metadata)
            return 1
        current = self.get(record_id)
        if current is None:
            return 0
        metadata = current.metadata
        if set_metadata is not None:
            metadata = merge_metadata(metadata, set_metadata)
        dense = values if values is not None else current.values
        self._take(record_id)
        state.append(
            [record_id],
            None if dense is None else np.asarray(dense, dtype=np.float32).reshape(1, -1),
            [sparse if sparse is not None else current.sparse],
            [metadata],
        )
        return 1

    # ------------------------------------------------------------------------------------------ reads
    def _lower_visible(self) -> tuple[bool, bool]:
        """Whether the frozen layer and the published index can hold visible records."""
        if self.active.cleared:
            return False, False
        frozen = self.frozen
        return frozen is not None, frozen is None or not frozen.cleared

    def matching_ids(self, flt: Filter | None) -> list[str]:
        """Ids of every visible record whose metadata matches ``flt``, in bitwise order."""
        if flt is None:
            return self.sorted_ids()
        ids = self.active.state.matching_ids(flt)
        frozen_visible, published_visible = self._lower_visible()
        if frozen_visible:
            assert self.frozen is not None
            frozen = self.frozen.state
            ids += [frozen.id_at(row) for row in frozen.matching_rows(flt, self.hidden_frozen)]
        if published_visible:
            published = self.published
            ids += [
                published.file(cluster_id).id_at(row)
                for cluster_id, row in published.matching(flt, self.hidden_published)
            ]
        return sorted(ids)

    def sorted_ids(self) -> list[str]:
        """Every visible id in bitwise (code point) order; cached until the next write."""
        if self._sorted_ids is None:
            ids = list(self.active.state.ids())
            frozen_visible, published_visible = self._lower_visible()
            frozen = self.frozen
            if frozen_visible:
                assert frozen is not None
                ids += [
                    frozen.state.id_at(row) for row in frozen.state.matching_rows(None, self.hidden_frozen)
                ]
            if published_visible:
                if not self.hidden_published:
                    ids += self.published.ids()
                else:
                    hidden = self.hidden_published
                    ids += [
                        record_id
                        for record_id, location in self.published.location.items()
                        if (location >> 32) not in hidden
                        or (location & 0xFFFFFFFF) not in hidden[location >> 32]
                    ]
            self._sorted_ids = sorted(ids)
        return self._sorted_ids

    def search(
        self,
        *,
        vector: FloatArray | None,
        sparse: SparseVector | None,
        top_k: int,
        flt: Filter | None,
        include_values: bool,
        include_metadata: bool,
        scan_factor: float | None = None,
        max_candidates: int | None = None,
        full_scan: bool = False,
    ) -> list[ScoredRecord]:
        """The top-k visible records over every layer, merged and deduplicated by id."""
        layers: list[list[ScoredRecord]] = [
            self.active.state.search(
                vector=vector,
                sparse=sparse,
                top_k=top_k,
                flt=flt,
                include_values=include_values,
                include_metadata=include_metadata,
            )
        ]
        frozen_visible, published_visible = self._lower_visible()
        if frozen_visible:
            assert self.frozen is not None
            layers.append(
                self.frozen.state.search(
                    vector=vector,
                    sparse=sparse,
                    top_k=top_k,
                    flt=flt,
                    include_values=include_values,
                    include_metadata=include_metadata,
                    exclude_rows=self.hidden_frozen,
                )
            )
        if published_visible and self.published.count:
            query = ScanQuery(vector, sparse, self.spec.metric, top_k, flt, self.spec.is_sparse)
            hits = self.published.search(
                query,
                self.hidden_published,
                self.config,
                scan_factor=scan_factor,
                max_candidates=max_candidates,
                full_scan=full_scan,
            )
            layers.append(
                [
                    ScoredRecord(
                        self.published.record(
                            hit.cluster_id, hit.row, values=include_values, metadata=include_metadata
                        ),
                        hit.score,
                    )
                    for hit in hits
                ]
            )
        return merge_layers(layers, top_k, ascending=self.spec.metric == "euclidean")

    # -------------------------------------------------------------------------------------- builder
    def freeze(self) -> BuildInput:
        """Start a build: the active layer becomes the frozen one, a new active layer takes writes."""
        assert self.frozen is None, "one build at a time"
        removed = {cluster_id: frozenset(rows) for cluster_id, rows in self.hidden_published.items()}
        self.frozen = self.active
        self.active = FreshnessLayer(FreshnessState(self.spec))
        self.hidden_frozen = set()
        return BuildInput(self.frozen, removed, self.applied_lsn)

    def install(self, published: PublishedIndex) -> None:
        """Finish a build: ``published`` now holds the frozen layer; the active layer hides into it."""
        self.published = published
        self.frozen = None
        self.hidden_frozen = set()
        hidden: dict[int, set[int]] = {}
        active = self.active
        if not active.cleared:
            location = published.location
            for record_id in itertools.chain(active.state.ids(), active.deleted):
                packed = location.get(record_id)
                if packed is not None:
                    cluster_id, row = unpack_location(packed)
                    hidden.setdefault(cluster_id, set()).add(row)
        self.hidden_published = hidden
        self._sorted_ids = None

    def abandon_build(self) -> None:
        """Undo :meth:`freeze` after a failed build: fold the active layer back onto the frozen one."""
        frozen, newer = self.frozen, self.active
        assert frozen is not None
        self.frozen = None
        self.active = frozen
        self.hidden_frozen = set()
        if newer.cleared:
            self.active = FreshnessLayer(FreshnessState(self.spec), cleared=True)
        for record_id in newer.deleted:
            self.active.state.kill(record_id)
            self.active.deleted.add(record_id)
        ids, dense, sparse, metadata = newer.state.live()
        if ids:
            self.active.state.append(ids, dense, sparse, metadata)
        self._sorted_ids = None

    @property
    def freshness_records(self) -> int:
        """Records held in freshness layers (what the cap counts)."""
        frozen = 0 if self.frozen is None else len(self.frozen.state)
        return len(self.active.state) + frozen

    @property
    def freshness_bytes(self) -> int:
        """Vector bytes held in freshness layers."""
        frozen = 0 if self.frozen is None else self.frozen.state.nbytes
        return self.active.state.nbytes + frozen


def merge_layers(layers: list[list[ScoredRecord]], top_k: int, *, ascending: bool) -> list[ScoredRecord]:
    """The best ``top_k`` of several layers' results; a newer layer's copy of an id wins."""
    newest: dict[str, int] = {}
    for rank, matches in enumerate(layers):
        for match in matches:
            newest.setdefault(match.record.id, rank)
    merged = [
        (match.score if ascending else -match.score, rank, position, match)
        for rank, matches in enumerate(layers)
        for position, match in enumerate(matches)
        if newest[match.record.id] == rank
    ]
    merged.sort(key=lambda item: item[:3])
    return [match for _, _, _, match in merged[:top_k]]

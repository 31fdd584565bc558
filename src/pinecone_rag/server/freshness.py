"""The in-memory state of one namespace: every applied write, searchable at once.

Rows are append-only: an overwrite or an update tombstones the old row and appends a new one, so dense
vectors stay in a few large float32 blocks (a matrix-vector product per block scans them at memory speed)
and sparse vectors in flat CSR-like arrays. When tombstones pile up the arrays are compacted.

Thread safety: callers hold the namespace's read/write lock (``apply`` exclusive, everything else shared).
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.server.filters import Filter, parse_filter
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
from pinecone_rag.server.records import (
    FloatArray,
    IndexSpec,
    Metadata,
    Record,
    ScoredRecord,
    SparseVector,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, KeysView

    import numpy.typing as npt

_MIN_CAPACITY = 64
_BLOCK_BYTES = 16 << 20  # per block of dense rows (at least _MIN_CAPACITY rows)
_COMPACT_MIN_DEAD = 1024
_ADOPT_MIN_BYTES = 256 << 10  # an append this big becomes a block of its own (see _RowBlocks)


class _Growable:
    """A 1-D numpy buffer with amortised appends (per-row columns: a few bytes per record)."""

    def __init__(self, dtype: Any) -> None:
        self.data: npt.NDArray[Any] = np.zeros(_MIN_CAPACITY, dtype=dtype)
        self.size = 0

    def extend(self, rows: npt.NDArray[Any]) -> None:
        need = self.size + len(rows)
        if need > len(self.data):
            grown = np.zeros(max(need, 2 * len(self.data)), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : need] = rows
        self.size = need

    def view(self) -> npt.NDArray[Any]:
        return self.data[: self.size]

    def replace(self, rows: npt.NDArray[Any]) -> None:
        self.size = 0
        self.data = np.zeros(max(_MIN_CAPACITY, len(rows)), dtype=self.data.dtype)
        self.extend(rows)


class _RowBlocks:
    """A growing 2-D float32 buffer kept in blocks, so that appending never moves a row.

    One contiguous buffer grown by doubling copied everything it held at each doubling, under the
    namespace's write lock: at 100k x 768 that stalled every writer for 0.1-0.4 s (measured). Scoring
    costs one matrix-vector product per block instead of one in all, which is the same work.

    Small appends are copied into fixed-size blocks. An append of at least ``_ADOPT_MIN_BYTES`` (an
    upsert request's rows, which the decoder gathered into a matrix of their own) becomes a block as it
    is, without a copy: on two cores the engine's write path is bound by memory traffic as much as by
    the interpreter (measured: the decoder ran 1.8x slower beside a process copying memory), and this
    copy was one of about a dozen passes over a request's 1.5 MB of vectors. The size floor keeps the
    per-block cost of a scan (one ``matmul`` call) small against the bytes it scans.
    """

    def __init__(self, width: int, rows_per_block: int | None = None) -> None:
        self._width = width
        self._rows_per_block = rows_per_block or max(_MIN_CAPACITY, _BLOCK_BYTES // (4 * max(1, width)))
        self._blocks: list[npt.NDArray[np.float32]] = []
        self._starts: list[int] = []  # the first row of each block
        self._open = False  # whether the last block is a fixed-size one with rows still free
        self.size = 0

    def extend(self, rows: npt.NDArray[np.float32]) -> None:
        """Append ``rows``; a large C-contiguous float32 matrix is kept as it is (not to be changed after)."""
        if rows.nbytes >= _ADOPT_MIN_BYTES and rows.dtype == np.float32 and rows.flags.c_contiguous:
            self._close()
            adopted = rows.view()
            adopted.flags.writeable = False
            self._add(adopted)
            self.size += len(rows)
            return
        done = 0
        while done < len(rows):
            if not self._open or self.size - self._starts[-1] == len(self._blocks[-1]):
                # Untouched pages of a new block take no memory yet: small namespaces stay small.
                self._add(np.empty((self._rows_per_block, self._width), dtype=np.float32))
                self._open = True
            offset = self.size - self._starts[-1]
            count = min(len(self._blocks[-1]) - offset, len(rows) - done)
            self._blocks[-1][offset : offset + count] = rows[done : done + count]
            done += count
            self.size += count

    def _add(self, block: npt.NDArray[np.float32]) -> None:
        self._blocks.append(block)
        self._starts.append(self.size)

    def _close(self) -> None:
        """Cut the open block down to its rows (a copy of those rows only), so the next block follows them."""
        if self._open:
            self._blocks[-1] = self._blocks[-1][: self.size - self._starts[-1]].copy()
            self._open = False

    def _filled(self) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
        """Each block's first row and its rows in use."""
        for start, block in zip(self._starts, self._blocks, strict=True):
            yield start, block[: self.size - start]

    def row(self, row: int) -> npt.NDArray[np.float32]:
        number = bisect_right(self._starts, row) - 1
        values: npt.NDArray[np.float32] = self._blocks[number][row - self._starts[number]]
        return values

    def take(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The rows at ``rows`` (ascending or not), copied into one matrix."""
        out = np.empty((len(rows), self._width), dtype=np.float32)
        if not len(rows):
            return out
        starts = np.asarray(self._starts, dtype=np.int64)
        numbers = np.searchsorted(starts, rows, side="right") - 1
        # Grouped by block with one sort, not one scan of ``rows`` per block: there can be thousands.
        order = np.argsort(numbers, kind="stable")
        grouped = numbers[order]
        firsts = np.flatnonzero(np.diff(grouped, prepend=-1))  # where each block's rows begin in ``order``
        bounds = [*firsts.tolist(), len(rows)]
        for i, number in enumerate(grouped[firsts].tolist()):
            where = order[bounds[i] : bounds[i + 1]]
            out[where] = self._blocks[number][rows[where] - self._starts[number]]
        return out

    def matvec(self, vector: FloatArray) -> FloatArray:
        """``rows @ vector`` for every row held."""
        out = np.empty(self.size, dtype=np.float32)
        for start, block in self._filled():
            np.matmul(block, vector, out=out[start : start + len(block)])
        return out

    def replace(self, rows: npt.NDArray[np.float32]) -> None:
        """Hold ``rows`` (kept as they are when large) instead of everything held so far."""
        self._blocks = []
        self._starts = []
        self._open = False
        self.size = 0
        self.extend(rows)


class FreshnessState:
    """All records of one namespace, in memory, with exact (brute-force) search."""

    def __init__(self, spec: IndexSpec) -> None:
        self.spec = spec
        self._reset()

    def _reset(self) -> None:
        dim = self.spec.dimension or 0
        self._ids: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._metadata: list[Metadata | None] = []
        self._alive = _Growable(np.bool_)
        self._dense = _RowBlocks(dim) if not self.spec.is_sparse else None
        self._norms = _Growable(np.float32)  # L2 norm (cosine) or squared norm (euclidean) per row
        # Sparse entries of every row, flat: row number, index, value. A row's entries are contiguous.
        self._sp_row = _Growable(np.int64)
        self._sp_idx = _Growable(np.uint32)
        self._sp_val = _Growable(np.float32)
        self._sp_start: list[int] = []  # per row: offset of its entries, or -1 for no sparse values
        self._sp_len: list[int] = []
        self._dead = 0
        self._sorted_ids: list[str] | None = None

    # ----------------------------------------------------------------------------------------- reads
    def __len__(self) -> int:
        return len(self._row_of)

    def get(self, record_id: str) -> Record | None:
        """The record with ``record_id``, or None."""
        row = self._row_of.get(record_id)
        return None if row is None else self._record(row, values=True, metadata=True)

    def sorted_ids(self) -> list[str]:
        """All ids in bitwise (code point) order; cached until the next write."""
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self._row_of)
        return self._sorted_ids

    def metadata_of(self, record_id: str) -> Metadata | None:
        """The metadata of ``record_id`` (None when it has none or does not exist)."""
        row = self._row_of.get(record_id)
        return None if row is None else self._metadata[row]

    def matching_ids(self, flt: Filter) -> list[str]:
        """Ids of all live records whose metadata matches ``flt``, in bitwise order."""
        return sorted(self._ids[row] or "" for row in self._matching_rows(flt))

    def matching_rows(self, flt: Filter | None, exclude_rows: Collection[int] = ()) -> list[int]:
        """Live rows whose metadata matches ``flt`` (every live row for None), minus ``exclude_rows``."""
        rows = self._matching_rows(flt)
        if not exclude_rows:
            return rows
        return [row for row in rows if row not in exclude_rows]

    def row(self, record_id: str) -> int | None:
        """The live row of ``record_id``, or None."""
        return self._row_of.get(record_id)

    def id_at(self, row: int) -> str:
        """The id of a live row."""
        record_id = self._ids[row]
        assert record_id is not None
        return record_id

    def record_at(self, row: int, *, values: bool = True, metadata: bool = True) -> Record:
        """A live row as a record (vectors copied)."""
        return self._record(row, values=values, metadata=metadata)

    def id_view(self) -> KeysView[str]:
        """Every live id, as a keys view: set operations with it run in C."""
        return self._row_of.keys()

    def ids(self) -> Iterator[str]:
        """Every live id, in no particular order."""
        return iter(self._row_of)

    @property
    def nbytes(self) -> int:
        """Approximate bytes of vector data held (dense rows, live or not, and sparse entries)."""
        dense = self._alive.size * 4 * (self.spec.dimension or 0) if self._dense is not None else 0
        return dense + self._sp_idx.size * 8

    def live(self) -> tuple[list[str], FloatArray | None, list[SparseVector | None], list[Metadata | None]]:
        """Every live record as columns (ids, dense block, sparse, metadata), in row order."""
        rows = np.flatnonzero(self._alive.view())
        ids = [self._ids[row] or "" for row in rows.tolist()]
        dense = None if self._dense is None else self._dense.take(rows)
        sparse: list[SparseVector | None] = []
        for row in rows.tolist():
            if self._sp_start[row] < 0:
                sparse.append(None)
                continue
            start, length = self._sp_start[row], self._sp_len[row]
            sparse.append(
                SparseVector(
                    self._sp_idx.data[start : start + length], self._sp_val.data[start : start + length]
                )
            )
        return ids, dense, sparse, [self._metadata[row] for row in rows.tolist()]

    def append(
        self,
        ids: list[str],
        dense: FloatArray | None,
        sparse: list[SparseVector | None],
        metadata: list[Metadata | None],
        squared_norms: FloatArray | None = None,
    ) -> None:
        """Add records, replacing live ones with the same ids.

        A large ``dense`` block (an upsert request's) is kept as it is, not copied: the caller hands it
        over and must not change it afterwards. ``squared_norms`` (float32, one per row of ``dense``)
        saves computing them when validation already did.
        """
        self._sorted_ids = None
        self._append(ids, dense, sparse, metadata, squared_norms)

    def kill(self, record_id: str) -> int:
        """Delete ``record_id``; returns 1 if it was live."""
        self._sorted_ids = None
        killed = self._kill(record_id)
        self._maybe_compact()
        return killed

    def merge_metadata(self, record_id: str, set_metadata: Metadata) -> None:
        """Merge ``set_metadata`` into a live record's metadata in place."""
        row = self._row_of[record_id]
        self._metadata[row] = merge_metadata(self._metadata[row], set_metadata)

    def _matching_rows(self, flt: Filter | None) -> list[int]:
        alive = self._alive.view()
        if flt is None:
            return [int(r) for r in np.flatnonzero(alive)]
        metadata = self._metadata
        matches = flt.matches
        return [row for row in np.flatnonzero(alive).tolist() if matches(metadata[row])]

    def _record(self, row: int, *, values: bool, metadata: bool) -> Record:
        record_id = self._ids[row]
        assert record_id is not None
        dense = None
        if values and self._dense is not None:
            dense = self._dense.row(row).copy()
        sparse = None
        if values and self._sp_start[row] >= 0:
            start, length = self._sp_start[row], self._sp_len[row]
            sparse = SparseVector(
                self._sp_idx.data[start : start + length].copy(),
                self._sp_val.data[start : start + length].copy(),
            )
        return Record(record_id, dense, sparse, self._metadata[row] if metadata else None)

    def search(
        self,
        *,
        vector: FloatArray | None,
        sparse: SparseVector | None,
        top_k: int,
        flt: Filter | None,
        include_values: bool,
        include_metadata: bool,
        exclude_rows: Collection[int] = (),
    ) -> list[ScoredRecord]:
        """Exact top-k by the index metric over live records that match ``flt``.

        Scores: cosine similarity, dot product (plus the sparse dot product for hybrid queries), or the
        squared euclidean distance (lower is better, sorted ascending). ``exclude_rows`` are rows that a
        newer layer replaced or deleted.
        """
        n = self._alive.size
        if n == 0 or not self._row_of:
            return []
        mask = self._alive.view().copy()
        if exclude_rows:
            mask[list(exclude_rows)] = False
        if flt is not None:
            metadata = self._metadata
            matches = flt.matches
            for row in np.flatnonzero(mask).tolist():
                if not matches(metadata[row]):
                    mask[row] = False
        if not mask.any():
            return []
        scores = np.zeros(n, dtype=np.float32)
        if vector is not None and self._dense is not None:
            scores += self._dense_scores(vector)
        if sparse is not None:
            scores += self._sparse_scores(sparse, n)
            if self.spec.is_sparse:
                # Pinecone drops sparse matches that share no dimension with the query.
                mask &= self._sparse_overlap(sparse, n)
        ascending = self.spec.metric == "euclidean"
        candidates = np.flatnonzero(mask)
        cand_scores = scores[candidates]
        order_key = cand_scores if ascending else -cand_scores
        k = min(top_k, len(candidates))
        part = np.argpartition(order_key, k - 1)[:k] if k < len(candidates) else np.arange(len(candidates))
        # Ties break by row (insertion order) so results are deterministic.
        part = part[np.lexsort((candidates[part], order_key[part]))]
        return [
            ScoredRecord(
                self._record(int(candidates[i]), values=include_values, metadata=include_metadata),
                float(cand_scores[i]),
            )
            for i in part
        ]

    def _dense_scores(self, vector: FloatArray) -> FloatArray:
        assert self._dense is not None
        dots = self._dense.matvec(vector)
        if self.spec.metric == "cosine":
            qnorm = float(np.linalg.norm(vector))
            denom = self._norms.view() * qnorm
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(denom > 0, dots / denom, 0.0).astype(np.float32)
        if self.spec.metric == "euclidean":
            qsq = float(np.dot(vector, vector))
            distances: FloatArray = np.maximum(self._norms.view() - 2.0 * dots + qsq, 0.0).astype(np.float32)
            return distances
        return dots

    def _sparse_hits(self, query: SparseVector) -> tuple[Any, Any]:
        order = np.argsort(query.indices, kind="stable")
        q_idx = query.indices[order]
        q_val = query.values[order]
        idx = self._sp_idx.view()
        if len(q_idx) == 0 or len(idx) == 0:
            return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.float32)
        pos = np.searchsorted(q_idx, idx)
        pos_clipped = np.minimum(pos, len(q_idx) - 1)
        hit = q_idx[pos_clipped] == idx
        return hit, q_val[pos_clipped]

    def _sparse_scores(self, query: SparseVector, n: int) -> FloatArray:
        hit, q_val = self._sparse_hits(query)
        if not hit.any():
            return np.zeros(n, dtype=np.float32)
        weights = self._sp_val.view()[hit].astype(np.float64) * q_val[hit]
        return np.bincount(self._sp_row.view()[hit], weights=weights, minlength=n).astype(np.float32)

    def _sparse_overlap(self, query: SparseVector, n: int) -> npt.NDArray[np.bool_]:
        hit, _ = self._sparse_hits(query)
        out = np.zeros(n, dtype=bool)
        out[self._sp_row.view()[hit]] = True
        return out

    # ---------------------------------------------------------------------------------------- writes
    def apply(self, op: Op) -> int:
        """Apply one logged operation; returns how many records it wrote or matched."""
        self._sorted_ids = None
        if isinstance(op, UpsertOp):
            batch = op.batch
            self._append(batch.ids, batch.dense, batch.sparse, batch.metadata)
            return len(batch)
        if isinstance(op, DeleteIdsOp):
            killed = sum(self._kill(record_id) for record_id in op.ids)
            self._maybe_compact()
            return killed
        if isinstance(op, DeleteFilterOp):
            rows = self._matching_rows(parse_filter(op.filter))
            for row in rows:
                self._kill_row(row)
            self._maybe_compact()
            return len(rows)
        if isinstance(op, DeleteAllOp):
            count = len(self._row_of)
            self._reset()
            return count
        if isinstance(op, UpdateOp):
            return self._update(op)
        if isinstance(op, UpdateFilterOp):
            rows = self._matching_rows(parse_filter(op.filter))
            for row in rows:
                self._metadata[row] = merge_metadata(self._metadata[row], op.set_metadata)
            return len(rows)
        raise TypeError(f"unknown operation {op!r}")

    def _update(self, op: UpdateOp) -> int:
        row = self._row_of.get(op.id)
        if row is None:
            return 0
        current = self._record(row, values=True, metadata=True)
        values = op.values if op.values is not None else current.values
        sparse = op.sparse if op.sparse is not None else current.sparse
        metadata = current.metadata
        if op.set_metadata is not None:
            metadata = merge_metadata(metadata, op.set_metadata)
        dense = None if values is None else values.reshape(1, -1)
        self._append([op.id], dense, [sparse], [metadata])
        return 1

    def _append(
        self,
        ids: list[str],
        dense: FloatArray | None,
        sparse: list[SparseVector | None],
        metadata: list[Metadata | None],
        squared_norms: FloatArray | None = None,
    ) -> None:
        base = self._alive.size
        count = len(ids)
        # Per-id work runs as C-level iteration (map, zip): this runs for every upserted record.
        replaced = list(map(self._row_of.pop, ids, repeat(None, count)))
        if replaced.count(None) != count:  # overwrites of live records
            for row in replaced:
                if row is not None:
                    self._mark_dead(row)
        # A later duplicate in the same batch wins, as it would with separate requests.
        final_row = dict(zip(ids, range(base, base + count), strict=True))
        self._row_of.update(final_row)
        if len(final_row) == count:  # no id twice in the batch (the usual case): every row is live
            alive = np.ones(count, dtype=bool)
            self._ids.extend(ids)
            self._metadata.extend(metadata)
        else:
            alive = np.zeros(count, dtype=bool)
            alive[[row - base for row in final_row.values()]] = True
            self._ids.extend(record_id if alive[i] else None for i, record_id in enumerate(ids))
            self._metadata.extend(md if alive[i] else None for i, md in enumerate(metadata))
        self._dead += count - len(final_row)
        self._alive.extend(alive)
        if self._dense is not None:
            assert dense is not None
            block = np.ascontiguousarray(dense, dtype=np.float32)
            self._dense.extend(block)
            # einsum sums each row's squares without the temporary matrix np.linalg.norm builds (half
            # the time, measured on 500 x 768 blocks).
            squares = np.einsum("ij,ij->i", block, block) if squared_norms is None else squared_norms
            self._norms.extend(
                (np.sqrt(squares) if self.spec.metric == "cosine" else squares).astype(np.float32)
            )
        else:
            self._norms.extend(np.zeros(count, dtype=np.float32))
        if sparse.count(None) == count:  # no sparse values (a dense upsert)
            self._sp_start.extend([-1] * count)
            self._sp_len.extend([0] * count)
            self._maybe_compact()
            return
        for offset, vec in enumerate(sparse):
            if vec is None or len(vec.indices) == 0:
                self._sp_start.append(-1)
                self._sp_len.append(0)
                continue
            self._sp_start.append(self._sp_idx.size)
            self._sp_len.append(len(vec.indices))
            self._sp_row.extend(np.full(len(vec.indices), base + offset, dtype=np.int64))
            self._sp_idx.extend(vec.indices)
            self._sp_val.extend(vec.values)
        self._maybe_compact()

    def _kill(self, record_id: str) -> int:
        row = self._row_of.pop(record_id, None)
        if row is None:
            return 0
        self._mark_dead(row)
        return 1

    def _kill_row(self, row: int) -> None:
        record_id = self._ids[row]
        if record_id is not None and self._row_of.get(record_id) == row:
            del self._row_of[record_id]
        self._mark_dead(row)

    def _mark_dead(self, row: int) -> None:
        if self._alive.data[row]:
            self._alive.data[row] = False
            self._ids[row] = None
            self._metadata[row] = None
            self._dead += 1

    def _maybe_compact(self) -> None:
        if self._dead >= _COMPACT_MIN_DEAD and self._dead * 4 >= self._alive.size:
            self.compact()

    def compact(self) -> None:
        """Drop tombstoned rows, keeping live rows in their order."""
        keep = np.flatnonzero(self._alive.view())
        remap = np.full(self._alive.size, -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        if self._dense is not None:
            self._dense.replace(self._dense.take(keep))
        self._norms.replace(self._norms.view()[keep])
        self._alive.replace(np.ones(len(keep), dtype=bool))
        sp_rows = self._sp_row.view()
        sp_keep = remap[sp_rows] >= 0 if len(sp_rows) else np.zeros(0, dtype=bool)
        new_rows = remap[sp_rows[sp_keep]] if len(sp_rows) else np.zeros(0, dtype=np.int64)
        self._sp_idx.replace(self._sp_idx.view()[sp_keep])
        self._sp_val.replace(self._sp_val.view()[sp_keep])
        self._sp_row.replace(new_rows)
        starts: list[int] = []
        lengths: list[int] = []
        cursor = 0
        for row in keep.tolist():
            length = self._sp_len[row]
            starts.append(cursor if self._sp_start[row] >= 0 else -1)
            lengths.append(length)
            cursor += length
        self._sp_start, self._sp_len = starts, lengths
        self._ids = [self._ids[row] for row in keep.tolist()]
        self._metadata = [self._metadata[row] for row in keep.tolist()]
        self._row_of = {record_id: row for row, record_id in enumerate(self._ids) if record_id is not None}
        self._dead = 0

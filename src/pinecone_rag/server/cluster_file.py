"""Immutable cluster files: one cluster of one namespace, memory-mapped for scans (format in FORMAT.md).

A cluster file holds a set of records laid out for numpy: ids (offsets plus one UTF-8 blob), the dense
vectors as one contiguous little-endian float32 block starting on a 64-byte boundary, their precomputed
norms, sparse vectors in CSR form, the metadata as one JSON array, and per-field metadata statistics
that let the query planner skip clusters a filter cannot match. A header with a section table gives each
section's kind, offset, length and CRC-32; the header has its own CRC.

:func:`write_cluster` writes a file through a :class:`~pinecone_rag.server.blobstore.BlobStore` (new key,
fsynced, never modified). :meth:`ClusterFile.open` maps it read-only: ``dense`` is a zero-copy
``(n, d)`` view of the mapping, so a scan reads the page cache directly. Ids, metadata, statistics and the
metadata columns (both defined in :mod:`pinecone_rag.server.cluster_stats`) are decoded on first use and
cached.
"""

from __future__ import annotations

import itertools
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson

from pinecone_rag.errors import DataLossError
from pinecone_rag.server.blobstore import BlobNotFoundError
from pinecone_rag.server.cluster_stats import ClusterStats, MetadataColumn, metadata_columns
from pinecone_rag.server.records import Record, SparseVector

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    import numpy.typing as npt

    from pinecone_rag.server.blobstore import BlobStore, BytesLike
    from pinecone_rag.server.records import Metadata

CLUSTER_MAGIC: Final = b"PRAGCLU\x00"
CLUSTER_VERSION: Final = 1
ALIGNMENT: Final = 64
"""Every section starts at a multiple of this many bytes (a cache line; enough for any SIMD load)."""
MAX_SECTIONS: Final = 64

# magic, version, flags, metric code, 3 reserved bytes, record count, dimension, section count, file length
_HEADER: Final = struct.Struct("<8sHHB3xQIIQ")
# kind, flags, crc32 of the section bytes, offset from the start of the file, length in bytes
_SECTION: Final = struct.Struct("<HHIQQ")
_CRC: Final = struct.Struct("<I")

SECTION_IDS: Final = 1
SECTION_DENSE: Final = 2
SECTION_NORMS: Final = 3
SECTION_SPARSE: Final = 4
SECTION_METADATA: Final = 5
SECTION_STATS: Final = 6
SECTION_POSTINGS: Final = 7
SECTION_NAMES: Final[Mapping[int, str]] = {
    SECTION_IDS: "ids",
    SECTION_DENSE: "dense",
    SECTION_NORMS: "norms",
    SECTION_SPARSE: "sparse",
    SECTION_METADATA: "metadata",
    SECTION_STATS: "stats",
    SECTION_POSTINGS: "postings",
}

METRIC_CODES: Final[Mapping[str, int]] = {"cosine": 0, "euclidean": 1, "dotproduct": 2}
_METRICS_BY_CODE: Final = {code: name for name, code in METRIC_CODES.items()}


def _align(offset: int) -> int:
    return -(-offset // ALIGNMENT) * ALIGNMENT


# ---------------------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """What :func:`write_cluster` wrote."""

    key: str
    count: int
    dimension: int | None
    nbytes: int
    stats: ClusterStats


@dataclass(slots=True)
class _Section:
    kind: int
    parts: list[BytesLike]
    length: int = 0
    crc: int = 0

    def __post_init__(self) -> None:
        crc = 0
        for part in self.parts:
            crc = zlib.crc32(part, crc)
            self.length += memoryview(part).nbytes
        self.crc = crc


def _buffer(array: npt.NDArray[Any]) -> memoryview:
    # A flat byte view: memoryview.cast refuses shapes with a zero in them, e.g. (n, 0).
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


def compute_norms(dense: npt.NDArray[np.float32], metric: str) -> npt.NDArray[np.float32]:
    """What the norms section holds: L2 norms (cosine), squared norms (euclidean), zeros (dotproduct)."""
    if metric == "dotproduct" or dense.shape[1] == 0:
        return np.zeros(dense.shape[0], dtype=np.float32)
    # float64 accumulation: the norm of a long vector loses digits in float32; inf/NaN rows stay inf/NaN.
    with np.errstate(all="ignore"):
        squared: npt.NDArray[np.float64] = np.einsum("ij,ij->i", dense, dense, dtype=np.float64)
        result: npt.NDArray[np.float64] = np.sqrt(squared) if metric == "cosine" else squared
        return result.astype(np.float32)


def _ids_section(ids: Sequence[str]) -> _Section:
    encoded = [record_id.encode("utf-8") for record_id in ids]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.fromiter((len(item) for item in encoded), dtype=np.int64, count=len(encoded)))
    if int(offsets[-1]) > 0xFFFFFFFF:
        raise ValueError("the ids of one cluster must fit in 4 GiB of UTF-8")
    return _Section(SECTION_IDS, [_buffer(offsets.astype("<u4")), b"".join(encoded)])


def _sparse_section(sparse: Sequence[SparseVector | None], count: int) -> _Section:
    offsets = np.zeros(count + 1, dtype="<u8")
    present = np.zeros(count, dtype=np.uint8)
    indices: list[npt.NDArray[Any]] = []
    values: list[npt.NDArray[Any]] = []
    for row, vector in enumerate(sparse):
        if vector is None:
            continue
        if len(vector.indices) != len(vector.values):
            raise ValueError(f"sparse vector of row {row} has unequal indices and values")
        present[row] = 1
        indices.append(vector.indices)
        values.append(vector.values)
        offsets[row + 1] = len(vector.indices)
    np.cumsum(offsets, out=offsets)
    all_indices = np.concatenate(indices).astype("<u4") if indices else np.zeros(0, dtype="<u4")
    all_values = np.concatenate(values).astype("<f4") if values else np.zeros(0, dtype="<f4")
    return _Section(
        SECTION_SPARSE, [_buffer(offsets), _buffer(all_indices), _buffer(all_values), _buffer(present)]
    )


def _postings_section(
    csr_offsets: npt.NDArray[Any], indices: npt.NDArray[Any], values: npt.NDArray[Any]
) -> _Section:
    """The inverted index of a cluster's sparse vectors: each term's rows and values, terms sorted.

    Layout: term count ``t`` (u64), ``t`` sorted terms (u32), ``t + 1`` offsets into the postings (u64),
    then the postings' rows (u32) and values (f32), grouped by term.
    """
    lengths = np.diff(csr_offsets).astype(np.int64)
    rows = np.repeat(np.arange(len(lengths), dtype=np.uint32), lengths)
    order = np.argsort(indices, kind="stable")
    sorted_terms = indices[order]
    terms, starts = np.unique(sorted_terms, return_index=True)
    offsets = np.append(starts, len(sorted_terms)).astype("<u8")
    head = np.asarray([len(terms)], dtype="<u8")
    return _Section(
        SECTION_POSTINGS,
        [
            _buffer(head),
            _buffer(terms.astype("<u4")),
            _buffer(offsets),
            _buffer(rows[order].astype("<u4")),
            _buffer(values[order].astype("<f4")),
        ],
    )


def write_cluster(
    store: BlobStore,
    key: str,
    *,
    ids: Sequence[str],
    dense: npt.NDArray[np.float32] | None,
    sparse: Sequence[SparseVector | None] | None,
    metadata: Sequence[Metadata | None],
    metric: str,
    postings: bool = False,
) -> ClusterInfo:
    """Write one cluster as a new immutable object.

    Args:
        store: Where to write.
        key: The new object's key (must not exist yet).
        ids: The records' ids, unique.
        dense: An ``(n, d)`` block of dense vectors (converted to little-endian float32 if it is not), or
            None when the records have no dense values (sparse indexes).
        sparse: Per record, its sparse vector or None; None when no record has one. A file whose records
            all lack sparse values has no sparse section.
        metadata: Per record, its metadata or None.
        metric: ``cosine``, ``euclidean`` or ``dotproduct``: decides what the norms section holds.
        postings: Also write an inverted index of the sparse vectors (sparse-only indexes search it).

    Returns:
        The key, counts, size and the metadata statistics that were written.

    Raises:
        ValueError: The arguments disagree on the record count, ids repeat, or the metric is unknown.
        BlobExistsError: ``key`` already exists.
    """
    count = len(ids)
    if metric not in METRIC_CODES:
        raise ValueError(f"unknown metric {metric!r}")
    if len(set(ids)) != count:
        raise ValueError("cluster ids must be unique")
    if len(metadata) != count or (sparse is not None and len(sparse) != count):
        raise ValueError(f"{count} ids, but metadata or sparse vectors for a different number of records")
    sections = [_ids_section(ids)]
    dimension = 0
    if dense is not None:
        block = np.ascontiguousarray(dense, dtype="<f4")
        if block.ndim != 2 or block.shape[0] != count:
            raise ValueError(f"dense block has shape {block.shape}; expected ({count}, d)")
        dimension = block.shape[1]
        sections.append(_Section(SECTION_DENSE, [_buffer(block)]))
        sections.append(_Section(SECTION_NORMS, [_buffer(compute_norms(block, metric).astype("<f4"))]))
    if sparse is not None and any(vector is not None for vector in sparse):
        section = _sparse_section(sparse, count)
        sections.append(section)
        if postings:
            csr_offsets, indices, values = (
                np.frombuffer(part, dtype=dt)
                for part, dt in zip(section.parts[:3], ("<u8", "<u4", "<f4"), strict=True)
            )
            sections.append(_postings_section(csr_offsets, indices, values))
    sections.append(_Section(SECTION_METADATA, [orjson.dumps(list(metadata))]))
    stats = ClusterStats.compute(metadata)
    sections.append(_Section(SECTION_STATS, [orjson.dumps(stats.to_json())]))

    header_length = _HEADER.size + _SECTION.size * len(sections) + _CRC.size
    offsets: list[int] = []
    end = header_length
    for section in sections:
        offsets.append(_align(end))
        end = offsets[-1] + section.length
    header = bytearray(
        _HEADER.pack(
            CLUSTER_MAGIC, CLUSTER_VERSION, 0, METRIC_CODES[metric], count, dimension, len(sections), end
        )
    )
    for section, offset in zip(sections, offsets, strict=True):
        header += _SECTION.pack(section.kind, 0, section.crc, offset, section.length)
    header += _CRC.pack(zlib.crc32(header))

    def chunks() -> Iterator[BytesLike]:
        position = len(header)
        yield header
        for section, offset in zip(sections, offsets, strict=True):
            yield bytes(offset - position)
            yield from section.parts
            position = offset + section.length

    store.put(key, chunks())
    return ClusterInfo(key, count, dimension if dense is not None else None, end, stats)


# ---------------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True, slots=True)
class SparseCSR:
    """The sparse vectors of a cluster in CSR form (views of the mapped file).

    Row ``i`` holds ``indices[offsets[i]:offsets[i + 1]]`` and the matching ``values``; ``present[i]``
    tells a record without sparse values from one with an empty sparse vector.
    """

    offsets: npt.NDArray[np.uint64]
    indices: npt.NDArray[np.uint32]
    values: npt.NDArray[np.float32]
    present: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Postings:
    """A cluster's inverted index (views of the mapped file): term -> rows and values.

    Term ``terms[i]`` occurs in ``rows[offsets[i]:offsets[i + 1]]`` with the matching ``values``.
    """

    terms: npt.NDArray[np.uint32]
    offsets: npt.NDArray[np.uint64]
    rows: npt.NDArray[np.uint32]
    values: npt.NDArray[np.float32]


class ClusterFile:
    """A read-only, memory-mapped cluster file.

    Array attributes are read-only views of the mapping and stay valid as long as they are referenced,
    even after :meth:`close` or after the object is deleted from the store. Lazily decoded attributes
    (``ids``, ``metadata``, ``stats``, :meth:`metadata_columns`) are computed once, thread-safely.

    Attributes:
        key: The object's key.
        count: Number of records.
        dimension: Dense dimension, or None when the file has no dense section.
        metric: The metric the norms were computed for.
        nbytes: Size of the file.
        dense: ``(count, dimension)`` float32 view, 64-byte aligned and C-contiguous, or None.
        norms: Per-row float32: L2 norm (cosine), squared L2 norm (euclidean), 0 (dotproduct); or None.
        sparse: The CSR arrays, or None when no record has sparse values.
    """

    def __init__(self, key: str, view: memoryview, *, verify: bool = True) -> None:
        """Parse a mapped file; prefer :meth:`open`.

        Raises:
            DataLossError: The file is damaged (header, section table, a section CRC when ``verify``, or
                section lengths that disagree with the header).
        """
        self.key = key
        self._view = view
        self._lock = threading.Lock()
        self._ids: list[str] | None = None
        self._row_of: dict[str, int] | None = None
        self._metadata: list[Metadata | None] | None = None
        self._stats: ClusterStats | None = None
        self._columns: dict[str, MetadataColumn] | None = None
        sections = self._parse_header(verify)
        self._sections = sections
        self._ids_offsets, self._ids_blob = self._parse_ids(sections[SECTION_IDS])
        self.dense: npt.NDArray[np.float32] | None = None
        self.norms: npt.NDArray[np.float32] | None = None
        if SECTION_DENSE in sections:
            self.dense, self.norms = self._parse_dense(sections)
        self.sparse = self._parse_sparse(sections[SECTION_SPARSE]) if SECTION_SPARSE in sections else None
        self.postings = (
            self._parse_postings(sections[SECTION_POSTINGS]) if SECTION_POSTINGS in sections else None
        )

    @classmethod
    def open(cls, store: BlobStore, key: str, *, verify: bool = True) -> ClusterFile:
        """Map the cluster file under ``key``.

        Args:
            store: The blob store.
            key: The cluster file's key.
            verify: Check every section's CRC now (reads the whole file once). The header CRC and the
                structure are always checked.

        Raises:
            DataLossError: The object is missing or damaged.
        """
        try:
            view = store.open_mmap(key)
        except BlobNotFoundError:
            raise DataLossError(f"Cluster file {key!r} is missing.") from None
        return cls(key, view, verify=verify)

    def _damaged(self, problem: str) -> DataLossError:
        return DataLossError(f"Cluster file {self.key!r} is damaged: {problem}.")

    def _parse_header(self, verify: bool) -> dict[int, tuple[int, int]]:
        view = self._view
        size = len(view)
        if size < _HEADER.size:
            raise self._damaged(f"{size} bytes is shorter than the header")
        magic, version, _flags, metric, count, dimension, section_count, length = _HEADER.unpack_from(view)
        if magic != CLUSTER_MAGIC:
            raise self._damaged("bad magic")
        if section_count > MAX_SECTIONS or _HEADER.size + _SECTION.size * section_count + _CRC.size > size:
            raise self._damaged("the section table does not fit")
        table_end = _HEADER.size + _SECTION.size * section_count
        (crc,) = _CRC.unpack_from(view, table_end)
        if zlib.crc32(view[:table_end]) != crc:
            raise self._damaged("header CRC mismatch")
        if version != CLUSTER_VERSION:
            raise DataLossError(
                f"Cluster file {self.key!r} has format version {version}; this build reads {CLUSTER_VERSION}."
            )
        if length != size:
            raise self._damaged(f"the header says {length} bytes, the file has {size}")
        if metric not in _METRICS_BY_CODE:
            raise self._damaged(f"unknown metric code {metric}")
        self.count: int = count
        self.metric: str = _METRICS_BY_CODE[metric]
        self.nbytes: int = size
        self._header_dimension: int = dimension
        sections: dict[int, tuple[int, int]] = {}
        for position in range(section_count):
            kind, _, section_crc, offset, section_length = _SECTION.unpack_from(
                view, _HEADER.size + _SECTION.size * position
            )
            name = SECTION_NAMES.get(kind, f"#{kind}")
            if kind in sections:
                raise self._damaged(f"section {name} appears twice")
            if offset < table_end + _CRC.size or offset + section_length > size:
                raise self._damaged(f"section {name} lies outside the file")
            if verify and zlib.crc32(view[offset : offset + section_length]) != section_crc:
                raise self._damaged(f"section {name} failed its CRC check")
            # Unknown kinds are skipped: a later version may add sections older readers can ignore.
            sections[kind] = (offset, section_length)
        for required in (SECTION_IDS, SECTION_METADATA, SECTION_STATS):
            if required not in sections:
                raise self._damaged(f"section {SECTION_NAMES[required]} is missing")
        return sections

    def _array(self, dtype: str, offset: int, count: int) -> npt.NDArray[Any]:
        return np.frombuffer(self._view, dtype=np.dtype(dtype), count=count, offset=offset)

    def _parse_ids(self, where: tuple[int, int]) -> tuple[npt.NDArray[np.uint32], memoryview]:
        offset, length = where
        table = 4 * (self.count + 1)
        if length < table:
            raise self._damaged("section ids is shorter than its offset table")
        offsets = self._array("<u4", offset, self.count + 1)
        blob = self._view[offset + table : offset + length]
        if offsets[0] != 0 or int(offsets[-1]) != len(blob) or np.any(np.diff(offsets.astype(np.int64)) < 0):
            raise self._damaged("section ids has inconsistent offsets")
        return offsets, blob

    def _parse_dense(
        self, sections: dict[int, tuple[int, int]]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        count, dimension = self.count, self._header_dimension
        offset, length = sections[SECTION_DENSE]
        if length != 4 * count * dimension:
            raise self._damaged(f"section dense has {length} bytes for {count} x {dimension} floats")
        if SECTION_NORMS not in sections or sections[SECTION_NORMS][1] != 4 * count:
            raise self._damaged("section norms is missing or has the wrong length")
        dense = self._array("<f4", offset, count * dimension).reshape(count, dimension)
        norms = self._array("<f4", sections[SECTION_NORMS][0], count)
        return dense, norms

    def _parse_sparse(self, where: tuple[int, int]) -> SparseCSR:
        offset, length = where
        count = self.count
        if length < 8 * (count + 1) + count:
            raise self._damaged("section sparse is too short")
        offsets = self._array("<u8", offset, count + 1)
        nnz = int(offsets[-1])
        if (
            offsets[0] != 0
            or length != 8 * (count + 1) + 8 * nnz + count
            or np.any(offsets[1:] < offsets[:-1])
        ):
            raise self._damaged("section sparse has inconsistent offsets")
        position = offset + 8 * (count + 1)
        indices = self._array("<u4", position, nnz)
        values = self._array("<f4", position + 4 * nnz, nnz)
        present = self._array("|b1", position + 8 * nnz, count)
        return SparseCSR(offsets, indices, values, present)

    def _parse_postings(self, where: tuple[int, int]) -> Postings:
        offset, length = where
        if length < 8:
            raise self._damaged("section postings is too short")
        terms_count = int(self._array("<u8", offset, 1)[0])
        terms_at = offset + 8
        offsets_at = terms_at + 4 * terms_count
        if offsets_at + 8 * (terms_count + 1) > offset + length:
            raise self._damaged("section postings is too short for its terms")
        offsets = self._array("<u8", offsets_at, terms_count + 1)
        total = int(offsets[-1]) if terms_count else 0
        rows_at = offsets_at + 8 * (terms_count + 1)
        if rows_at + 8 * total != offset + length or (terms_count and np.any(offsets[1:] < offsets[:-1])):
            raise self._damaged("section postings has inconsistent offsets")
        rows = self._array("<u4", rows_at, total)
        if total and int(rows.max()) >= self.count:
            raise self._damaged("section postings names a row outside the cluster")
        return Postings(
            self._array("<u4", terms_at, terms_count),
            offsets,
            rows,
            self._array("<f4", rows_at + 4 * total, total),
        )

    @property
    def dimension(self) -> int | None:
        """Dense dimension, or None when the file has no dense section."""
        return self._header_dimension if self.dense is not None else None

    @property
    def ids(self) -> list[str]:
        """Every record's id, in row order (decoded on first use; do not modify)."""
        if self._ids is None:
            bounds = self._ids_offsets.tolist()
            blob = bytes(self._ids_blob)
            if blob.isascii():
                # Byte offsets are character offsets: one decode, then cheap str slices.
                text = blob.decode("ascii")
                ids = [text[a:b] for a, b in itertools.pairwise(bounds)]
            else:
                try:
                    ids = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(bounds)]
                except UnicodeDecodeError:
                    raise self._damaged("section ids is not UTF-8") from None
            with self._lock:
                if self._ids is None:
                    self._ids = ids
        return self._ids

    def id_at(self, row: int) -> str:
        """The id of one row, without decoding the others."""
        start, end = int(self._ids_offsets[row]), int(self._ids_offsets[row + 1])
        try:
            return bytes(self._ids_blob[start:end]).decode("utf-8")
        except UnicodeDecodeError:
            raise self._damaged("section ids is not UTF-8") from None

    def row_of(self, record_id: str) -> int | None:
        """The row holding ``record_id``, or None (the id -> row map is built on first use)."""
        if self._row_of is None:
            rows = {record_id: row for row, record_id in enumerate(self.ids)}
            with self._lock:
                if self._row_of is None:
                    self._row_of = rows
        return self._row_of.get(record_id)

    @property
    def metadata(self) -> list[Metadata | None]:
        """Every record's metadata, in row order (decoded on first use; do not modify)."""
        if self._metadata is None:
            offset, length = self._sections[SECTION_METADATA]
            try:
                decoded = orjson.loads(self._view[offset : offset + length])
            except orjson.JSONDecodeError as exc:
                raise self._damaged(f"section metadata is not JSON ({exc})") from None
            if (
                not isinstance(decoded, list)
                or len(decoded) != self.count
                or not all(item is None or isinstance(item, dict) for item in decoded)
            ):
                raise self._damaged("section metadata is not a list of one object or null per record")
            with self._lock:
                if self._metadata is None:
                    self._metadata = decoded
        return self._metadata

    @property
    def stats(self) -> ClusterStats:
        """The metadata statistics written with the file (decoded on first use)."""
        if self._stats is None:
            offset, length = self._sections[SECTION_STATS]
            try:
                stats = ClusterStats.from_json(orjson.loads(self._view[offset : offset + length]))
            except (orjson.JSONDecodeError, ValueError) as exc:
                raise self._damaged(f"section stats is invalid ({exc})") from None
            with self._lock:
                if self._stats is None:
                    self._stats = stats
        return self._stats

    def metadata_columns(self) -> Mapping[str, MetadataColumn]:
        """Each metadata field as arrays (see :class:`MetadataColumn`); built on first use, then cached."""
        if self._columns is None:
            columns = metadata_columns(self.metadata)
            with self._lock:
                if self._columns is None:
                    self._columns = columns
        return self._columns

    def sparse_row(self, row: int) -> SparseVector | None:
        """The sparse vector of one row (views of the mapping), or None when it has none."""
        csr = self.sparse
        if csr is None or not csr.present[row]:
            return None
        start, end = int(csr.offsets[row]), int(csr.offsets[row + 1])
        return SparseVector(csr.indices[start:end], csr.values[start:end])

    def record(self, row: int) -> Record:
        """One row as a :class:`Record` (vectors are read-only views of the mapping)."""
        return Record(
            id=self.id_at(row),
            values=None if self.dense is None else self.dense[row],
            sparse=self.sparse_row(row),
            metadata=self.metadata[row],
        )

    def close(self) -> None:
        """Drop this object's reference to the mapping.

        The mapping itself is unmapped once no array taken from this file is referenced any more. After
        ``close`` only what was already decoded (``ids``, ``metadata``, ``stats``, columns) stays usable.
        """
        self.dense = self.norms = None
        self.sparse = None
        self.postings = None
        self._view = memoryview(b"")
        self._ids_blob = self._view
        self._ids_offsets = np.zeros(0, dtype=np.uint32)

    def __enter__(self) -> ClusterFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.count

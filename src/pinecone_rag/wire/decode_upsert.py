"""The fast decoder of ``UpsertRequest``: the engine's ingest hot path, read straight into columns.

Split from :mod:`pinecone_rag.wire.decode` (the client's response decoders), whose low-level readers it
shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.wire._protowire import F32
from pinecone_rag.wire.decode import (
    DecodedVector,
    _as_bytes,
    _batch_floats,
    _parse_metadata_struct,
    _parse_sparse,
    _parse_vector,
    _read_len,
    _read_tag,
    _skip,
    _text,
)

if TYPE_CHECKING:
    from pinecone_rag.wire._protowire import FloatArray, Ranges, Sparse


@dataclass(frozen=True, slots=True)
class DecodedUpsert:
    """A parsed ``UpsertRequest``: the records in wire order and the namespace."""

    vectors: list[DecodedVector]
    namespace: str


@dataclass(frozen=True, slots=True)
class DecodedUpsertColumns:
    """A parsed ``UpsertRequest`` column by column, as the server consumes it.

    Attributes:
        namespace: The target namespace.
        ids: The record ids, in wire order.
        matrix: The dense values as one ``(len(ids), dimension)`` float32 matrix when every record has
            values of the same non-zero length, else None (see ``values``).
        sparse: Per record ``(indices, values)`` or None.
        metadata: Per record the metadata dict (``{}`` when present but empty) or None when absent.
        rows: Per record its dense values or None, when there is no ``matrix``; else None.
    """

    namespace: str
    ids: list[str]
    matrix: FloatArray | None
    sparse: list[Sparse | None]
    metadata: list[dict[str, Any] | None]
    rows: list[FloatArray | None] | None = None

    @property
    def values(self) -> list[FloatArray | None]:
        """Per record its dense values or None (the rows of ``matrix`` when there is one)."""
        if self.matrix is not None:
            return list(self.matrix)
        return self.rows if self.rows is not None else [None] * len(self.ids)


def decode_upsert_columns(data: bytes | bytearray | memoryview) -> DecodedUpsertColumns:
    """Parse a serialized ``UpsertRequest`` into columns (the server's hot path).

    The dense values of all records are gathered with one copy into one writable buffer, a matrix when
    they all have the same length; metadata map entries that repeat across records are parsed once.
    Records laid out as encoders write them (id, packed values, metadata, sparse values, once each and in
    that order) are read inline, straight into the columns; any other record takes the general parser.

    Args:
        data: The serialized message.

    Returns:
        The namespace, and the ids, values, sparse values and metadata of the records in wire order.

    Raises:
        ValueError: If the message is truncated or malformed.
    """
    data = _as_bytes(data)
    end = len(data)
    pos = 0
    ids: list[str] = []
    starts: list[int] = []  # the byte range of each record's packed values; -1 when it has none
    stops: list[int] = []
    general: dict[int, Ranges] = {}  # the value ranges of records read by the general parser
    sparse: list[Sparse | None] = []
    metadata: list[dict[str, Any] | None] = []
    namespace = ""
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x0A:  # vectors = 1
            size, pos = _read_len(data, pos, end)
            stop = pos + size
            record = _read_upsert_vector(data, pos, stop)
            if record is None:
                record_id, ranges, pair, fields = _parse_vector(data, pos, stop)
                if ranges is not None:
                    general[len(ids)] = ranges
                record = (record_id, -1, -1, pair, fields)
            ids.append(record[0])
            starts.append(record[1])
            stops.append(record[2])
            sparse.append(record[3])
            metadata.append(record[4])
            pos = stop
        elif tag == 0x12:  # namespace = 2
            size, pos = _read_len(data, pos, end)
            namespace = _text(data, pos, size)
            pos += size
        else:
            pos = _skip(data, pos, end, tag)
    matrix = None if general else _uniform_matrix(data, starts, stops)
    rows = None
    if matrix is None:  # values split over several runs, or of different lengths
        items: list[Ranges | FloatArray | None] = [
            [(start, stop)] if start >= 0 else general.get(i)
            for i, (start, stop) in enumerate(zip(starts, stops, strict=True))
        ]
        rows = _batch_floats(data, items)
        sizes = {0 if row is None else row.size for row in rows}
        if rows and len(sizes) == 1 and 0 not in sizes:
            matrix = np.stack(rows)  # type: ignore[arg-type]  # no row is None
            rows = None
    return DecodedUpsertColumns(namespace, ids, matrix, sparse, metadata, rows)


def _read_upsert_vector(
    data: bytes, pos: int, end: int
) -> tuple[str, int, int, Sparse | None, dict[str, Any] | None] | None:
    """A ``Vector`` laid out as encoders write it: (id, values start, values stop, sparse, metadata).

    The values are a byte range (-1, -1 without values). None for any other layout, and for malformed
    bytes, whose error :func:`_parse_vector` then reports in wire order.
    """
    try:
        record_id = ""
        start = stop = -1
        metadata: dict[str, Any] | None = None
        sparse: Sparse | None = None
        if pos + 1 < end and data[pos] == 0x0A and data[pos + 1] < 0x80:  # an id below 128 bytes
            size = data[pos + 1]
            pos += 2
            record_id = data[pos : pos + size].decode("utf-8")  # past the end: fails to match below
            pos += size
        elif pos < end and data[pos] == 0x0A:
            size, pos = _read_len(data, pos + 1, end)
            record_id = _text(data, pos, size)
            pos += size
        if pos < end and data[pos] == 0x12:
            size, pos = _read_len(data, pos + 1, end)
            if size & 3:
                return None
            start = pos
            pos = stop = pos + size
        if pos < end and data[pos] == 0x1A:
            size, pos = _read_len(data, pos + 1, end)
            metadata = _parse_metadata_struct(data, pos, pos + size, 3)
            pos += size
        if pos < end and data[pos] == 0x22:
            size, pos = _read_len(data, pos + 1, end)
            sparse = _parse_sparse(data, pos, pos + size)
            pos += size
    except ValueError:
        return None
    if pos != end:
        return None
    return record_id, start, stop, sparse, metadata


def _uniform_matrix(data: bytes, starts: list[int], stops: list[int]) -> FloatArray | None:
    """The values of every record as the rows of one matrix, or None unless all have one non-zero length."""
    if not starts or starts[0] < 0 or min(starts) < 0:
        return None
    width = stops[0] - starts[0]
    if width == 0 or set(map(int.__sub__, stops, starts)) != {width}:
        return None
    view = memoryview(data)
    flat = np.frombuffer(bytearray().join(map(view.__getitem__, map(slice, starts, stops))), dtype=F32)
    if not flat.dtype.isnative:
        flat = flat.astype(np.float32)
    return flat.reshape(len(starts), width >> 2)


def decode_upsert_request(data: bytes | bytearray | memoryview) -> DecodedUpsert:
    """Parse a serialized ``UpsertRequest``: values become float32 arrays at once.

    Records of one dimension share one matrix, so the server can stack them without copying per float.

    Raises:
        ValueError: If the message is truncated or malformed.
    """
    columns = decode_upsert_columns(data)
    vectors = [
        DecodedVector(*record)
        for record in zip(columns.ids, columns.values, columns.sparse, columns.metadata, strict=True)
    ]
    return DecodedUpsert(vectors, columns.namespace)

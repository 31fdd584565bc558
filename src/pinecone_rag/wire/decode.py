"""The fast decoder: data-plane messages read straight into numpy (see :mod:`pinecone_rag.wire.codec`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.wire._protowire import (
    DOUBLE,
    F32,
    FLOAT,
    I32,
    I64,
    LEN,
    MAX_DEPTH,
    UINT32_LIMIT,
    UINT64_MASK,
    VARINT,
)

if TYPE_CHECKING:
    from pinecone_rag.wire._protowire import FloatArray, IndexArray, Ranges, Sparse


# ------------------------------------------------------------------------------------------ decoded types
@dataclass(frozen=True, slots=True)
class DecodedMatch:
    """One ``ScoredVector`` of a query response.

    Attributes:
        id: The record id.
        score: The similarity score (a float32 value widened to a Python float).
        values: The dense values, or None when the response carries none (``include_values`` False).
        sparse: ``(indices, values)`` when the match has ``sparse_values``, else None.
        metadata: The metadata as a dict (``{}`` when present but empty), or None when absent.
    """

    id: str
    score: float
    values: FloatArray | None
    sparse: Sparse | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class DecodedQuery:
    """A decoded ``QueryResponse``.

    Attributes:
        matches: The matches, most similar first (as sent).
        namespace: The namespace queried.
        read_units: ``usage.read_units``, or None when the response has no usage or it has none.
    """

    matches: list[DecodedMatch]
    namespace: str
    read_units: int | None


@dataclass(frozen=True, slots=True)
class DecodedVector:
    """One ``Vector`` of a fetch response.

    Attributes:
        id: The record id (the ``id`` field of the Vector, which the server sets to its map key).
        values: The dense values, or None when the record has none (sparse-only records).
        sparse: ``(indices, values)`` when the record has ``sparse_values``, else None.
        metadata: The metadata as a dict (``{}`` when present but empty), or None when absent.
    """

    id: str
    values: FloatArray | None
    sparse: Sparse | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class DecodedFetch:
    """A decoded ``FetchResponse`` or ``FetchByMetadataResponse``.

    Attributes:
        vectors: The records by map key.
        namespace: The namespace fetched from.
        read_units: ``usage.read_units``, or None when the response has no usage or it has none.
        next_token: The pagination token of the next page (fetch by metadata), or None when there is none.
    """

    vectors: dict[str, DecodedVector]
    namespace: str
    read_units: int | None
    next_token: str | None = None


# ---------------------------------------------------------------------------------------------- decoding
def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` (at most 10 bytes, truncated to 64 bits) and the position after it."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ValueError("truncated message: a varint runs past the end")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & UINT64_MASK, pos
        shift += 7
        if shift >= 70:
            raise ValueError("malformed varint: longer than 10 bytes")


def _read_tag(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The multi-byte tag at ``pos`` (the one-byte case is inlined by the callers): at most 5 bytes."""
    tag, after = _read_varint(data, pos, end)
    if tag >= UINT32_LIMIT or after - pos > 5:
        raise ValueError("malformed tag: wider than 32 bits")
    return tag, after


def _read_len(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The length prefix at ``pos`` and the position after it; ValueError when the body overruns ``end``."""
    if pos + 1 < end:  # the one- and two-byte lengths (below 16 KiB) are inlined
        size = data[pos]
        if size < 0x80:
            pos += 1
        elif data[pos + 1] < 0x80:
            size = (size & 0x7F) | (data[pos + 1] << 7)
            pos += 2
        else:
            size, pos = _read_varint(data, pos, end)
    else:
        size, pos = _read_varint(data, pos, end)
    if pos + size > end:
        raise ValueError("truncated message: a length-delimited field runs past the end")
    return size, pos


def _skip(data: bytes, pos: int, end: int, tag: int) -> int:
    """The position after the value of an unknown (or differently typed) field with ``tag``."""
    if tag >> 3 == 0:
        raise ValueError("malformed message: field number 0")
    wire = tag & 7
    if wire == VARINT:
        return _read_varint(data, pos, end)[1]
    if wire == LEN:
        size, pos = _read_len(data, pos, end)
        return pos + size
    if wire == I64:
        pos += 8
    elif wire == I32:
        pos += 4
    elif wire in (3, 4):
        raise ValueError("unsupported message: groups (wire types 3 and 4) are not part of proto3")
    else:
        raise ValueError(f"malformed message: invalid wire type {wire}")
    if pos > end:
        raise ValueError("truncated message: a fixed-size field runs past the end")
    return pos


def _text(data: bytes, pos: int, size: int) -> str:
    try:
        return data[pos : pos + size].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"malformed message: a string field is not valid UTF-8 ({exc.reason})") from exc


def _joined(data: bytes, ranges: list[tuple[int, int]]) -> tuple[bytes, int, int]:
    """``ranges`` of ``data`` as one buffer: in place for one range, concatenated for several."""
    if len(ranges) == 1:
        start, stop = ranges[0]
        return data, start, stop
    buffer = b"".join(data[start:stop] for start, stop in ranges)
    return buffer, 0, len(buffer)


def _floats(data: bytes, ranges: list[tuple[int, int]]) -> FloatArray:
    """The float32 array in the (packed and unpacked) byte ranges of a repeated float field."""
    buffer, start, stop = _joined(data, ranges)
    return np.frombuffer(buffer, dtype=F32, count=(stop - start) >> 2, offset=start).astype(np.float32)


def _unpack_varints(data: bytes, ranges: list[tuple[int, int]]) -> IndexArray:
    """The uint32 array in the (packed and unpacked) byte ranges of a repeated uint32 field, vectorised."""
    buffer, start, stop = _joined(data, ranges)
    raw = np.frombuffer(buffer, dtype=np.uint8, count=stop - start, offset=start)
    if raw.size == 0:
        return np.empty(0, dtype=np.uint32)
    if raw[-1] >= 0x80:
        raise ValueError("truncated message: a packed varint runs past the end of its field")
    last = raw < 0x80
    if last.all():
        return raw.astype(np.uint32)
    ends = np.flatnonzero(last)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if int(lengths.max()) > 10:
        raise ValueError("malformed varint: longer than 10 bytes")
    position = np.arange(raw.size) - np.repeat(starts, lengths)
    payload = (raw & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    # Like protobuf, a uint32 field keeps the low 32 bits of a wider varint.
    return np.bitwise_or.reduceat(payload, starts).astype(np.uint32)


def _float_run(
    data: bytes, pos: int, end: int, tag: int, ranges: list[tuple[int, int]] | None
) -> tuple[list[tuple[int, int]], int]:
    """Record the bytes of a packed run (wire type 2) or of one unpacked element (5) of a repeated float."""
    if tag & 7 == LEN:
        size, pos = _read_len(data, pos, end)
        if size & 3:
            raise ValueError("malformed message: a packed float field is not a multiple of 4 bytes")
        stop = pos + size
    else:
        stop = pos + 4
        if stop > end:
            raise ValueError("truncated message: a fixed-size field runs past the end")
    if ranges is None:
        return [(pos, stop)], stop
    ranges.append((pos, stop))
    return ranges, stop


def _varint_run(
    data: bytes, pos: int, end: int, tag: int, ranges: list[tuple[int, int]] | None
) -> tuple[list[tuple[int, int]], int]:
    """Record the bytes of a packed run (wire type 2) or of one unpacked element (0) of a repeated uint32.

    An unpacked varint is itself a valid packed run of one element, so both concatenate.
    """
    if tag & 7 == LEN:
        size, pos = _read_len(data, pos, end)
        stop = pos + size
    else:
        stop = _read_varint(data, pos, end)[1]
    if ranges is None:
        return [(pos, stop)], stop
    ranges.append((pos, stop))
    return ranges, stop


def _parse_sparse(data: bytes, pos: int, end: int) -> Sparse:
    """A ``SparseValues`` body: (indices, values)."""
    index_ranges: list[tuple[int, int]] | None = None
    value_ranges: list[tuple[int, int]] | None = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag in {0x0A, 0x08}:  # indices = 1, packed or not
            index_ranges, pos = _varint_run(data, pos, end, tag, index_ranges)
        elif tag in {0x12, 0x15}:  # values = 2, packed or not
            value_ranges, pos = _float_run(data, pos, end, tag, value_ranges)
        else:
            pos = _skip(data, pos, end, tag)
    indices = np.empty(0, dtype=np.uint32) if index_ranges is None else _unpack_varints(data, index_ranges)
    values = np.empty(0, dtype=np.float32) if value_ranges is None else _floats(data, value_ranges)
    return indices, values


def _parse_list(data: bytes, pos: int, end: int, depth: int) -> list[Any]:
    """A ``ListValue`` body at nesting ``depth``: each occurrence of ``values`` (1) is one element."""
    if depth > MAX_DEPTH:
        raise ValueError(f"malformed message: nested deeper than {MAX_DEPTH} levels")
    items: list[Any] = []
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x0A:
            size, pos = _read_len(data, pos, end)
            items.append(_parse_value(data, [(pos, pos + size)], depth + 1))
            pos += size
        else:
            pos = _skip(data, pos, end, tag)
    return items


def _parse_value(data: bytes, ranges: list[tuple[int, int]], depth: int) -> Any:
    """A ``Value`` at nesting ``depth`` made of the merged occurrences in ``ranges``, as a Python object.

    Within the ``kind`` oneof the last member on the wire wins; consecutive struct (or list) members
    merge as protobuf merges messages.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"malformed message: nested deeper than {MAX_DEPTH} levels")
    data, pos, end = _joined(data, ranges)
    result: Any = None
    nested: list[tuple[int, int]] = []  # the ranges of the current struct_value or list_value member
    nested_tag = 0
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x1A:  # string_value = 3
            size, pos = _read_len(data, pos, end)
            result, nested_tag = _text(data, pos, size), 0
            pos += size
        elif tag == 0x11:  # number_value = 2 (double)
            if pos + 8 > end:
                raise ValueError("truncated message: a fixed-size field runs past the end")
            result, nested_tag = DOUBLE.unpack_from(data, pos)[0], 0
            pos += 8
        elif tag == 0x20:  # bool_value = 4
            flag, pos = _read_varint(data, pos, end)
            result, nested_tag = flag != 0, 0
        elif tag == 0x08:  # null_value = 1
            pos = _read_varint(data, pos, end)[1]
            result, nested_tag = None, 0
        elif tag in {0x2A, 0x32}:  # struct_value = 5, list_value = 6
            size, pos = _read_len(data, pos, end)
            if tag != nested_tag:
                nested, nested_tag = [], tag
            nested.append((pos, pos + size))
            pos += size
            result = None
        else:
            pos = _skip(data, pos, end, tag)
    if nested_tag == 0x2A:
        buffer, start, stop = _joined(data, nested)
        return _parse_struct(buffer, start, stop, depth + 1)
    if nested_tag == 0x32:
        buffer, start, stop = _joined(data, nested)
        return _parse_list(buffer, start, stop, depth + 1)
    return result


def _parse_struct(data: bytes, pos: int, end: int, depth: int) -> dict[str, Any]:
    """A ``Struct`` body at nesting ``depth`` as a dict (a repeated key keeps its last value, as in a map).

    ``depth`` counts enclosing messages (the response is 0), as protobuf's parsers do: each map entry is
    a level of its own, its Value the next.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"malformed message: nested deeper than {MAX_DEPTH} levels")
    fields: dict[str, Any] = {}
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag != 0x0A:  # fields = 1 (map entries)
            pos = _skip(data, pos, end, tag)
            continue
        if depth + 1 > MAX_DEPTH:
            raise ValueError(f"malformed message: nested deeper than {MAX_DEPTH} levels")
        size, pos = _read_len(data, pos, end)
        entry_end = pos + size
        key = ""
        value_ranges: list[tuple[int, int]] = []
        while pos < entry_end:
            tag = data[pos]
            pos += 1
            if tag >= 0x80:
                tag, pos = _read_tag(data, pos - 1, entry_end)
            if tag == 0x0A:  # key = 1
                size, pos = _read_len(data, pos, entry_end)
                key = _text(data, pos, size)
                pos += size
            elif tag == 0x12:  # value = 2
                size, pos = _read_len(data, pos, entry_end)
                value_ranges.append((pos, pos + size))
                pos += size
            else:
                pos = _skip(data, pos, entry_end, tag)
        fields[key] = _parse_value(data, value_ranges, depth + 2) if value_ranges else None
    return fields


def _add_range(ranges: list[tuple[int, int]] | None, start: int, stop: int) -> list[tuple[int, int]]:
    """Another occurrence of a singular message field (occurrences merge, so all are kept)."""
    if ranges is None:
        return [(start, stop)]
    ranges.append((start, stop))
    return ranges


_ENTRY_CACHE: dict[bytes, tuple[str, Any]] = {}
_ENTRY_CACHE_SIZE = 1 << 14
_ENTRY_CACHE_BYTES = 256  # longer entries rarely repeat, and the cache must stay small
_SCALARS = (str, float, bool, type(None))


def _parse_entry(data: bytes, pos: int, end: int, depth: int) -> tuple[str, Any]:
    """One map entry of a Struct (its tag included) as ``(key, value)``, memoized when flat.

    Metadata keys and many of their values repeat from record to record (a source, a chunk number, a
    set of tags), so the entry's bytes map to the same pair again and again. Only entries whose value is
    a scalar or a list of strings are memoized, the list as a tuple that callers copy: nothing mutable is
    shared between records.
    """
    entry = data[pos:end]
    hit = _ENTRY_CACHE.get(entry)
    if hit is not None:
        return hit
    ((key, value),) = _parse_struct(data, pos, end, depth).items()
    if len(entry) <= _ENTRY_CACHE_BYTES:
        if isinstance(value, list):
            if all(type(item) is str for item in value):
                if len(_ENTRY_CACHE) >= _ENTRY_CACHE_SIZE:
                    _ENTRY_CACHE.clear()
                _ENTRY_CACHE[entry] = (key, tuple(value))
        elif type(value) in _SCALARS:
            if len(_ENTRY_CACHE) >= _ENTRY_CACHE_SIZE:
                _ENTRY_CACHE.clear()
            _ENTRY_CACHE[entry] = (key, value)
    return key, value


def _parse_metadata_struct(data: bytes, pos: int, end: int, depth: int) -> dict[str, Any]:
    """A record's metadata ``Struct`` body at nesting ``depth``: :func:`_parse_struct`, entry by entry.

    Anything but a plain run of map entries (unknown fields, multi-byte tags) takes the general parser
    over the whole body, so the result is the same in every case.
    """
    start = pos
    fields: dict[str, Any] = {}
    if depth + 1 > MAX_DEPTH:
        return _parse_struct(data, start, end, depth)
    cache = _ENTRY_CACHE
    while pos < end:
        if data[pos] != 0x0A:
            return _parse_struct(data, start, end, depth)
        size = data[pos + 1] if pos + 1 < end else 0x80
        if size < 0x80 and pos + 2 + size <= end:  # the usual one-byte length, inlined
            stop = pos + 2 + size
        else:
            size, body = _read_len(data, pos + 1, end)
            stop = body + size
        key, value = cache.get(data[pos:stop]) or _parse_entry(data, pos, stop, depth)
        fields[key] = list(value) if type(value) is tuple else value
        pos = stop
    return fields


def _parse_metadata(data: bytes, ranges: list[tuple[int, int]], depth: int) -> dict[str, Any]:
    buffer, start, stop = _joined(data, ranges)
    return _parse_metadata_struct(buffer, start, stop, depth)


def _parse_sparse_field(data: bytes, ranges: list[tuple[int, int]]) -> Sparse:
    buffer, start, stop = _joined(data, ranges)
    return _parse_sparse(buffer, start, stop)


def _batch_floats(data: bytes, items: list[Ranges | FloatArray | None]) -> list[FloatArray | None]:
    """The dense values of many records at once, None for a record without any.

    An item is the byte ranges of a record's values in ``data``, an array already decoded, or None. All
    ranges are gathered with a single copy into one writable buffer; equal-length records (the usual
    case) become the rows of one matrix, so each record's array is a view of a row rather than a
    separate allocation.
    """
    view = memoryview(data)
    pieces: list[memoryview] = []
    counts: list[int] = []
    precomputed = False
    for item in items:
        total = 0
        if isinstance(item, list):
            for start, stop in item:
                pieces.append(view[start:stop])
                total += stop - start
        elif item is not None:
            precomputed = True
        counts.append(total >> 2)
    out: list[FloatArray | None]
    if not pieces:
        out = [None] * len(items)
    else:
        flat = np.frombuffer(bytearray().join(pieces), dtype=F32)
        if not flat.dtype.isnative:
            flat = flat.astype(np.float32)
        width = counts[0]
        if width and counts.count(width) == len(counts):
            out = list(flat.reshape(len(counts), width))
        else:
            out = []
            offset = 0
            for count in counts:
                if count:
                    out.append(flat[offset : offset + count])
                    offset += count
                else:
                    out.append(None)
    if precomputed:
        for i, item in enumerate(items):
            if isinstance(item, np.ndarray) and item.size:
                out[i] = item
    return out


def _parse_scored_vector(
    data: bytes, pos: int, end: int
) -> tuple[str, float, Ranges | None, Sparse | None, dict[str, Any] | None]:
    """A ``ScoredVector`` body (id = 1, score = 2, values = 3, metadata = 4, sparse_values = 5).

    The values come back as their byte ranges in ``data``, for :func:`_batch_floats`.
    """
    record_id = ""
    score = 0.0
    values: Ranges | None = None
    metadata: Ranges | None = None
    sparse: Ranges | None = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x1A:  # values, packed (the bulk of a response, so first)
            size, pos = _read_len(data, pos, end)
            if size & 3:
                raise ValueError("malformed message: a packed float field is not a multiple of 4 bytes")
            values = _add_range(values, pos, pos + size)
            pos += size
        elif tag == 0x0A:
            size, pos = _read_len(data, pos, end)
            record_id = _text(data, pos, size)
            pos += size
        elif tag == 0x15:
            if pos + 4 > end:
                raise ValueError("truncated message: a fixed-size field runs past the end")
            score = FLOAT.unpack_from(data, pos)[0]
            pos += 4
        elif tag == 0x1D:  # values, one unpacked element
            values, pos = _float_run(data, pos, end, tag, values)
        elif tag == 0x22:
            size, pos = _read_len(data, pos, end)
            metadata = _add_range(metadata, pos, pos + size)
            pos += size
        elif tag == 0x2A:
            size, pos = _read_len(data, pos, end)
            sparse = _add_range(sparse, pos, pos + size)
            pos += size
        else:
            pos = _skip(data, pos, end, tag)
    return (
        record_id,
        score,
        values,
        None if sparse is None else _parse_sparse_field(data, sparse),
        None if metadata is None else _parse_metadata(data, metadata, 2),
    )


def _parse_vector(
    data: bytes, pos: int, end: int
) -> tuple[str, Ranges | None, Sparse | None, dict[str, Any] | None]:
    """A ``Vector`` body (id = 1, values = 2, metadata = 3, sparse_values = 4); values as byte ranges."""
    record_id = ""
    values: Ranges | None = None
    metadata: Ranges | None = None
    sparse: Ranges | None = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x12:  # values, packed
            size, pos = _read_len(data, pos, end)
            if size & 3:
                raise ValueError("malformed message: a packed float field is not a multiple of 4 bytes")
            values = _add_range(values, pos, pos + size)
            pos += size
        elif tag == 0x0A:
            size, pos = _read_len(data, pos, end)
            record_id = _text(data, pos, size)
            pos += size
        elif tag == 0x15:  # values, one unpacked element
            values, pos = _float_run(data, pos, end, tag, values)
        elif tag == 0x1A:
            size, pos = _read_len(data, pos, end)
            metadata = _add_range(metadata, pos, pos + size)
            pos += size
        elif tag == 0x22:
            size, pos = _read_len(data, pos, end)
            sparse = _add_range(sparse, pos, pos + size)
            pos += size
        else:
            pos = _skip(data, pos, end, tag)
    return (
        record_id,
        values,
        None if sparse is None else _parse_sparse_field(data, sparse),
        None if metadata is None else _parse_metadata(data, metadata, 3),
    )


def _parse_optional_uint32(data: bytes, pos: int, end: int, previous: int | None) -> int | None:
    """Field 1 (uint32) of a ``Usage`` body, or ``previous`` when absent (the merge rule)."""
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x08:
            value, pos = _read_varint(data, pos, end)
            previous = value & 0xFFFFFFFF
        else:
            pos = _skip(data, pos, end, tag)
    return previous


def _parse_optional_string(data: bytes, pos: int, end: int, previous: str | None) -> str | None:
    """Field 1 (string) of a ``Pagination`` body, or ``previous`` when absent (the merge rule)."""
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x0A:
            size, pos = _read_len(data, pos, end)
            previous = _text(data, pos, size)
            pos += size
        else:
            pos = _skip(data, pos, end, tag)
    return previous


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes, not {type(data).__name__}")


def decode_query_response(data: bytes | bytearray | memoryview) -> DecodedQuery:
    """Parse a serialized ``QueryResponse``; packed values become float32 arrays without per-float work.

    The matches' value arrays are views of the rows of one matrix (when they all have the same length),
    writable and independent of ``data``. The deprecated ``results`` field (1) is skipped.

    Args:
        data: The serialized message.

    Returns:
        The matches (in wire order), the namespace and ``usage.read_units``.

    Raises:
        ValueError: If the message is truncated or malformed.
    """
    data = _as_bytes(data)
    end = len(data)
    pos = 0
    parsed: list[tuple[str, float, Ranges | None, Sparse | None, dict[str, Any] | None]] = []
    namespace = ""
    read_units: int | None = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x12:  # matches = 2
            size, pos = _read_len(data, pos, end)
            parsed.append(_parse_scored_vector(data, pos, pos + size))
            pos += size
        elif tag == 0x1A:  # namespace = 3
            size, pos = _read_len(data, pos, end)
            namespace = _text(data, pos, size)
            pos += size
        elif tag == 0x22:  # usage = 4
            size, pos = _read_len(data, pos, end)
            read_units = _parse_optional_uint32(data, pos, pos + size, read_units)
            pos += size
        else:
            pos = _skip(data, pos, end, tag)
    values = _batch_floats(data, [match[2] for match in parsed])
    matches = [
        DecodedMatch(record_id, score, dense, sparse, metadata)
        for (record_id, score, _, sparse, metadata), dense in zip(parsed, values, strict=True)
    ]
    return DecodedQuery(matches, namespace, read_units)


def _parse_vector_entry(
    data: bytes, pos: int, end: int
) -> tuple[str, tuple[str, Ranges | FloatArray | None, Sparse | None, dict[str, Any] | None]]:
    """A ``map<string, Vector>`` entry: (key, (id, values, sparse, metadata)); value occurrences merge.

    The values are byte ranges in ``data`` or, when merged occurrences had to be joined, an array.
    """
    key = ""
    value_ranges: Ranges = []
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x0A:
            size, pos = _read_len(data, pos, end)
            key = _text(data, pos, size)
            pos += size
        elif tag == 0x12:
            size, pos = _read_len(data, pos, end)
            value_ranges.append((pos, pos + size))
            pos += size
        else:
            pos = _skip(data, pos, end, tag)
    if not value_ranges:
        return key, ("", None, None, None)
    if len(value_ranges) == 1:
        return key, _parse_vector(data, *value_ranges[0])
    buffer, start, stop = _joined(data, value_ranges)
    record_id, ranges, sparse, metadata = _parse_vector(buffer, start, stop)
    return key, (record_id, None if ranges is None else _floats(buffer, ranges), sparse, metadata)


def _decode_fetch(data: bytes, *, paginated: bool) -> DecodedFetch:
    """FetchResponse and FetchByMetadataResponse share fields 1-3; the latter adds pagination = 4."""
    end = len(data)
    pos = 0
    entries: dict[str, tuple[str, Ranges | FloatArray | None, Sparse | None, dict[str, Any] | None]] = {}
    namespace = ""
    read_units: int | None = None
    next_token: str | None = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _read_tag(data, pos - 1, end)
        if tag == 0x0A:  # vectors = 1: map<string, Vector> entries (key = 1, value = 2)
            size, pos = _read_len(data, pos, end)
            key, record = _parse_vector_entry(data, pos, pos + size)
            entries[key] = record  # a repeated key replaces the earlier entry, as in a protobuf map
            pos += size
        elif tag == 0x12:  # namespace = 2
            size, pos = _read_len(data, pos, end)
            namespace = _text(data, pos, size)
            pos += size
        elif tag == 0x1A:  # usage = 3
            size, pos = _read_len(data, pos, end)
            read_units = _parse_optional_uint32(data, pos, pos + size, read_units)
            pos += size
        elif tag == 0x22 and paginated:  # pagination = 4
            size, pos = _read_len(data, pos, end)
            next_token = _parse_optional_string(data, pos, pos + size, next_token)
            pos += size
        else:
            pos = _skip(data, pos, end, tag)
    values = _batch_floats(data, [entry[1] for entry in entries.values()])
    vectors = {
        key: DecodedVector(record_id, dense, sparse, metadata)
        for (key, (record_id, _, sparse, metadata)), dense in zip(entries.items(), values, strict=True)
    }
    return DecodedFetch(vectors, namespace, read_units, next_token or None)


def decode_fetch_response(data: bytes | bytearray | memoryview) -> DecodedFetch:
    """Parse a serialized ``FetchResponse``.

    Args:
        data: The serialized message.

    Returns:
        The records by map key, the namespace and ``usage.read_units`` (``next_token`` is None).

    Raises:
        ValueError: If the message is truncated or malformed.
    """
    return _decode_fetch(_as_bytes(data), paginated=False)


def decode_fetch_by_metadata_response(data: bytes | bytearray | memoryview) -> DecodedFetch:
    """Parse a serialized ``FetchByMetadataResponse``.

    Args:
        data: The serialized message.

    Returns:
        The records by map key, the namespace, ``usage.read_units`` and ``pagination.next`` as
        ``next_token`` (None when there is no pagination or its token is empty).

    Raises:
        ValueError: If the message is truncated or malformed.
    """
    return _decode_fetch(_as_bytes(data), paginated=True)

"""The fast decoder of ``UpsertRequest``: the engine's ingest hot path, read straight into columns.

Split from :mod:`pinecone_rag.wire.decode` (the client's response decoders), whose low-level readers it
shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pinecone_rag.wire._protowire import DOUBLE, F32
from pinecone_rag.wire.decode import (
    DecodedVector,
    _as_bytes,
    _batch_floats,
    _parse_entry,
    _parse_metadata_struct,
    _parse_sparse,
    _parse_vector,
    _read_len,
    _read_tag,
    _skip,
    _text,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from pinecone_rag.wire._protowire import FloatArray, Ranges, Sparse

    Positions = NDArray[np.int64]


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


class NormalMetadata(list):  # type: ignore[type-arg]  # of dict[str, Any] | None
    """Per-record metadata that the decoder vouches for: each dict is in Pinecone's normal form.

    That is: field names are non-empty and do not start with ``$``; values are strings, booleans,
    finite numbers (floats) or lists of strings; and the JSON encoding of each record's metadata is
    well within the server's size limit, because its Struct body is at most
    ``_SMALL_STRUCT_BYTES`` and JSON spends at most six bytes per Struct byte (a control character
    escaped as six characters; a double of 9 bytes is at most 24 characters). The upsert validation
    returns such metadata without checking it again; any other list is checked field by field.
    """

    __slots__ = ()


_SMALL_STRUCT_BYTES = 6_800  # 6 x 6,800 + 2 braces < 40,960, the server's limit per record
_NORMAL_ENTRIES: dict[bytes, tuple[str, Any]] = {}
"""Map entries in normal form, by their bytes; lists are held as tuples and copied per record."""
_NORMAL_ENTRIES_SIZE = 1 << 14


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
    regular = _decode_regular(data)
    if regular is not None:
        return regular
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


# ------------------------------------------------------------------------------- the vectorised path
def _decode_regular(data: bytes) -> DecodedUpsertColumns | None:
    """The columns of a request whose records are all laid out alike, worked out for all records at once.

    Encoders (ours, the official SDK's upb) write every record the same way: its id, one packed run of
    values, then its metadata Struct, whose map entries are short. Only finding where each record starts
    is a Python loop; every other field is located with numpy over all records together, the ids,
    metadata entries and value rows are cut out with C-level iteration (``map``), and metadata entries
    come from the decoder's memo of entries seen before. A record's fields are thus never walked one
    by one in Python, which is where the per-record parser spends its time.

    Returns None for anything else (no records, sparse values, records of different dimensions, fields
    in another order, unknown fields, long map entries, malformed bytes, ...): the per-record parser then
    reads the request, and reports what is wrong with it, as before.
    """
    framed = _frame_records(data)
    if framed is None:
        return None
    bodies, stops, namespace = framed
    u8 = np.frombuffer(data, dtype=np.uint8)
    ends = np.asarray(stops, dtype=np.int64)
    at = np.asarray(bodies, dtype=np.int64)
    # The id (field 1), then the packed values (field 2), each with its length prefix.
    id_start, id_stop = _length_delimited(u8, at, ends, 0x0A)
    if id_start is None or id_stop is None:
        return None
    values_start, values_stop = _length_delimited(u8, id_stop, ends, 0x12)
    if values_start is None or values_stop is None:
        return None
    widths = values_stop - values_start
    width = int(widths[0])
    if not width or width & 3 or not (widths == width).all():
        return None
    # Then the metadata (field 3), the last field of the records that have one.
    has_metadata = values_stop < ends
    metadata: list[dict[str, Any] | None]
    if has_metadata.any():
        rows = np.flatnonzero(has_metadata)
        body, body_stop = _length_delimited(u8, values_stop[rows], ends[rows], 0x1A)
        if body is None or body_stop is None or not (body_stop == ends[rows]).all():
            return None
        grouped = _metadata_dicts(data, u8, body, body_stop)
        if grouped is None:
            return None
        dicts, normal = grouped
        if len(rows) == len(bodies):
            metadata = dicts
        else:
            metadata = [None] * len(bodies)
            for row, fields in zip(rows.tolist(), dicts, strict=True):
                metadata[row] = fields
        # Below this size no Struct's JSON encoding can exceed the limit (see NormalMetadata).
        if normal and int((body_stop - body).max()) <= _SMALL_STRUCT_BYTES:
            metadata = NormalMetadata(metadata)
    else:
        metadata = NormalMetadata([None] * len(bodies))
    ids = _texts(data, u8, id_start, id_stop)
    if ids is None:
        return None
    # One fancy-indexing copy gathers every row; the windows are a read-only view, nothing is copied twice.
    matrix = sliding_window_view(u8, width)[values_start].view(F32)
    if not matrix.dtype.isnative:
        matrix = matrix.astype(np.float32)
    return DecodedUpsertColumns(namespace, ids, matrix, [None] * len(ids), metadata)


def _frame_records(data: bytes) -> tuple[list[int], list[int], str] | None:
    """Where each record's body starts and stops, and the namespace.

    None unless the request is its records, then at most the namespace (the layout encoders write).
    """
    end = len(data)
    bodies: list[int] = []
    stops: list[int] = []
    add_body = bodies.append
    add_stop = stops.append
    pos = 0
    try:
        while pos < end and data[pos] == 0x0A:
            size = data[pos + 1]
            if size < 0x80:
                pos += 2
            elif data[pos + 2] < 0x80:  # records below 16 KiB: up to 4,000 dimensions with metadata
                size = (size & 0x7F) | (data[pos + 2] << 7)
                pos += 3
            else:
                size, pos = _read_len(data, pos + 1, end)
            add_body(pos)
            pos += size
            add_stop(pos)
        namespace = ""
        if pos < end and data[pos] == 0x12:
            size, pos = _read_len(data, pos + 1, end)
            namespace = _text(data, pos, size)
            pos += size
    except (IndexError, ValueError):
        return None
    if pos != end or not bodies:
        return None
    return bodies, stops, namespace


def _length_delimited(
    u8: NDArray[np.uint8], at: Positions, limits: Positions, tag: int
) -> tuple[Positions, Positions] | tuple[None, None]:
    """The body ``[start, stop)`` of the field with one-byte ``tag`` at each of ``at`` (before ``limits``).

    Length prefixes of up to three bytes (2 MiB) are read; (None, None) unless every position holds the
    tag and a length whose body fits before its limit.
    """
    last = len(u8) - 1
    if not (at < limits).all() or not (u8[at] == tag).all():
        return None, None
    first = u8[np.minimum(at + 1, last)].astype(np.int64)
    second = u8[np.minimum(at + 2, last)].astype(np.int64)
    third = u8[np.minimum(at + 3, last)].astype(np.int64)
    one = first < 0x80
    two = ~one & (second < 0x80)
    if not (one | two | (third < 0x80)).all():
        return None, None
    low = first & 0x7F
    wide = low | ((second & 0x7F) << 7) | (third << 14)
    size = np.where(one, first, np.where(two, low | (second << 7), wide))
    start = at + np.where(one, 2, np.where(two, 3, 4))
    stop = start + size
    if not (stop <= limits).all():
        return None, None
    return start, stop


def _metadata_dicts(
    data: bytes, u8: NDArray[np.uint8], body: Positions, body_stop: Positions
) -> tuple[list[dict[str, Any] | None], bool] | None:
    """Each metadata Struct body ``[body, body_stop)`` as a dict, its map entries found for all at once.

    The k-th entry of every Struct is located in one numpy step (entries shorter than 128 bytes, the
    usual metadata), so the loop runs as many times as the longest Struct has entries. Entries are then
    looked up in the memo of entries in normal form (:func:`_parse_entry` reads those not seen before)
    and grouped per record.

    Returns:
        The dicts, and whether every entry is in normal form (see :class:`NormalMetadata`); None when an
        entry is not a short map entry or overruns its Struct.
    """
    last = len(u8) - 1
    starts: list[Positions] = []
    owners: list[Positions] = []
    position = body.copy()
    records = np.arange(len(body))
    active = position < body_stop
    while active.any():
        at = position[active]
        size = u8[np.minimum(at + 1, last)]
        after = at + 2 + size
        if not ((u8[at] == 0x0A) & (size < 0x80) & (after <= body_stop[active])).all():
            return None
        starts.append(at)
        owners.append(records[active])
        position[active] = after
        active = position < body_stop
    counts = [0] * len(body)
    pairs: list[Any] = []
    normal = True
    if starts:
        owner = np.concatenate(owners)
        order = np.argsort(owner, kind="stable")  # record by record, entries in wire order
        first = np.concatenate(starts)[order]
        counts = np.bincount(owner, minlength=len(body)).tolist()
        begins = first.tolist()
        finishes = (first + 2 + u8[first + 1]).tolist()
        entries = list(map(data.__getitem__, map(slice, begins, finishes)))
        pairs = list(map(_NORMAL_ENTRIES.get, entries))
        if None in pairs:  # entries not seen before, or not in normal form
            memo = _NORMAL_ENTRIES
            try:
                for i in [i for i, pair in enumerate(pairs) if pair is None]:
                    # Looked up again: an entry new to this request usually repeats within it (a
                    # source shared by a document's chunks), and its first occurrence memoized it.
                    pair = memo.get(entries[i])
                    if pair is None:
                        pair = _read_entry(data, begins[i], finishes[i])
                        normal = _remember_if_normal(entries[i], pair) and normal
                    pairs[i] = pair
            except ValueError:
                return None
    width = counts[0] if counts else 0
    if width and counts.count(width) == len(counts):  # every record has as many entries: columns
        for column in range(width):
            _own_lists(pairs, slice(column, None, width))
        return list(map(dict, zip(*[iter(pairs)] * width, strict=True))), normal
    _own_lists(pairs, slice(None))
    remaining = iter(pairs)
    return [dict(islice(remaining, count)) for count in counts], normal


def _read_entry(data: bytes, pos: int, end: int) -> tuple[str, Any]:
    """A short map entry ``[pos, end)`` (its tag included) of a metadata Struct as ``(key, value)``.

    Values that are unique to a record (a chunk's text, a source name) miss the memo every time, so
    the flat shapes are read here directly: a string, a number, a boolean or a list of strings, key
    first, each field once. Anything else goes to :func:`_parse_entry`, which also reports malformed
    bytes (ValueError).
    """
    try:
        if data[pos + 2] == 0x0A:  # the key, first
            key_end = pos + 4 + data[pos + 3]
            if data[key_end] == 0x12 and key_end + 2 + data[key_end + 1] == end:  # the Value, last
                key = data[pos + 4 : key_end].decode()
                kind = data[key_end + 2]
                body = key_end + 3
                if kind == 0x1A and body + 1 + data[body] == end:  # string_value
                    return key, data[body + 1 : end].decode()
                if kind == 0x11 and body + 8 == end:  # number_value
                    return key, DOUBLE.unpack_from(data, body)[0]
                if kind == 0x20 and body + 1 == end and data[body] < 2:  # bool_value
                    return key, data[body] == 1
                if kind == 0x32 and body + 1 + data[body] == end:  # list_value
                    items = _string_items(data, body + 1, end)
                    if items is not None:
                        return key, items
    except (IndexError, UnicodeDecodeError):
        pass  # malformed: the general parser says how
    return _parse_entry(data, pos, end, 3)


def _string_items(data: bytes, pos: int, end: int) -> list[str] | None:
    """The items of a ListValue body that holds only strings (each a one-field Value); else None."""
    items: list[str] = []
    while pos < end:
        size = data[pos + 3]
        if data[pos] != 0x0A or data[pos + 2] != 0x1A or data[pos + 1] != size + 2:
            return None
        items.append(data[pos + 4 : pos + 4 + size].decode())
        pos += 4 + size
    return items if pos == end else None


def _remember_if_normal(entry: bytes, pair: tuple[str, Any]) -> bool:
    """Memoize a parsed map entry if it is in normal form (see :class:`NormalMetadata`); whether it is."""
    key, value = pair
    kind = type(value)
    if not key or key[0] == "$":
        return False
    if kind is list or kind is tuple:
        if set(map(type, value)) - {str}:
            return False
        value = tuple(value)
    elif kind is float:
        if not math.isfinite(value):
            return False
    elif kind is not str and kind is not bool:
        return False
    if len(_NORMAL_ENTRIES) >= _NORMAL_ENTRIES_SIZE:
        _NORMAL_ENTRIES.clear()
    _NORMAL_ENTRIES[entry] = (key, value)
    return True


def _texts(data: bytes, u8: NDArray[np.uint8], start: Positions, stop: Positions) -> list[str] | None:
    """The UTF-8 strings at ``[start, stop)``, decoded at once; None if one is not valid UTF-8.

    The strings are gathered with one fancy-indexing copy, NUL after each, decoded in one call and split
    at the NULs: NUL is never part of a multi-byte sequence, so the whole decodes if and only if each
    string does. Strings that hold NUL themselves are cut out one by one instead.
    """
    steps = stop - start + 1
    bounds = np.cumsum(steps)
    joined = u8[np.arange(int(bounds[-1])) + np.repeat(start - (bounds - steps), steps)]
    joined[bounds - 1] = 0
    try:
        texts: list[str] = joined.tobytes().decode().split("\0")
    except UnicodeDecodeError:
        return None
    if len(texts) != len(start) + 1:  # a string holds NUL: cut each out of the message
        return list(map(bytes.decode, map(data.__getitem__, map(slice, start.tolist(), stop.tolist()))))
    texts.pop()
    return texts


def _own_lists(pairs: list[Any], where: slice) -> None:
    """Give each record its own list where the memo holds a list value (as a tuple all records share).

    A column of entries that all hold lists (a key's values, when the records share their keys) is
    converted with C-level iteration; a mixed one entry by entry.
    """
    column = pairs[where]
    values = list(map(itemgetter(1), column))
    kinds = set(map(type, values))
    if tuple not in kinds:
        return
    if kinds == {tuple}:
        pairs[where] = list(zip(map(itemgetter(0), column), map(list, values), strict=True))
    else:
        pairs[where] = [(key, list(value)) if type(value) is tuple else (key, value) for key, value in column]


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

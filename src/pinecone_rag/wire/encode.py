"""The fast encoder: data-plane requests written straight from numpy (see :mod:`pinecone_rag.wire.codec`)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from functools import lru_cache
from itertools import chain, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.wire._protowire import (
    DOUBLE,
    F32,
    GROUP_COLUMNS,
    MAX_DEPTH,
    ONE_BYTE,
    UINT32_LIMIT,
    UINT64_MASK,
    VARINT_SHIFTS,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from numpy.typing import NDArray

    from pinecone_rag.wire._protowire import SparseInput


# ---------------------------------------------------------------------------------------------- encoding
def _varint(value: int) -> bytes:
    """The varint encoding of a non-negative integer below 2**64."""
    if value < 0x80:
        if value < 0:
            raise ValueError(f"cannot encode {value} as an unsigned varint")
        return ONE_BYTE[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value > UINT64_MASK:
        raise ValueError(f"{value} does not fit in 64 bits")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: its (one-byte) tag, the varint length and the body."""
    return tag + _varint(len(body)) + body


def _utf8(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    return text.encode("utf-8")


def _pack_varints(indices: NDArray[np.uint32]) -> bytes:
    """The packed varint encoding of uint32 values, vectorised (no per-element Python work)."""
    if indices.size == 0:
        return b""
    if int(indices.max()) < 0x80:
        return indices.astype(np.uint8).tobytes()
    sizes = 1 + (indices >= 1 << 7).astype(np.intp)
    for bound in (1 << 14, 1 << 21, 1 << 28):
        sizes += indices >= bound
    groups = ((indices[:, None] >> VARINT_SHIFTS[None, :]) & 0x7F).astype(np.uint8)
    groups[GROUP_COLUMNS[None, :] < (sizes - 1)[:, None]] |= 0x80
    return groups[GROUP_COLUMNS[None, :] < sizes[:, None]].tobytes()


def _as_indices(indices: Any) -> NDArray[np.uint32]:
    """Sparse indices as a 1-d uint32 array; ValueError for values outside uint32."""
    array = np.asarray(indices)
    if array.ndim != 1:
        array = array.reshape(-1)
    if array.dtype == np.uint32:
        return array
    if array.size == 0:
        return np.empty(0, dtype=np.uint32)
    if array.dtype.kind not in "iu":
        raise TypeError(f"sparse indices must be integers, not {array.dtype}")
    if array.min() < 0 or array.max() >= UINT32_LIMIT:
        raise ValueError("sparse indices must be in [0, 2**32)")
    return array.astype(np.uint32)


def _encode_sparse(sparse: SparseInput) -> bytes:
    """The body of a ``SparseValues`` message."""
    indices, values = sparse
    index_array = _as_indices(indices)
    value_array = np.ascontiguousarray(values, dtype=F32).reshape(-1)
    if index_array.size != value_array.size:
        raise ValueError(
            f"sparse indices and values differ in length ({index_array.size} != {value_array.size})"
        )
    if index_array.size == 0:
        return b""
    packed = _pack_varints(index_array)
    floats = value_array.tobytes()
    return b"\x0a" + _varint(len(packed)) + packed + b"\x12" + _varint(len(floats)) + floats


@lru_cache(maxsize=4096)
def _struct_key(key: str) -> bytes:
    """The ``key`` field (1) of a Struct map entry; metadata keys repeat across records."""
    if not isinstance(key, str):
        raise TypeError(f"Struct keys must be str, not {type(key).__name__}")
    return _len_field(b"\x0a", key.encode("utf-8"))


class _KeyCode:
    """What every map entry of one metadata key starts with, worked out once per key.

    ``number`` is the whole head of an entry holding a double (only the 8 bytes of the value follow);
    ``true`` and ``false`` are whole entries. ``strings`` and ``lists`` memoize whole entries holding a
    short string or a short list of strings: metadata values repeat from record to record (a source, a
    set of tags), and a repeated value then costs one dict lookup. They hold at most
    :data:`_MEMO_ENTRIES` entries each (cleared when full), so values that never repeat cost an insert.
    A list is memoized as a tuple of its strings; an equal tuple holds equal strings, so it encodes the same.
    """

    __slots__ = ("false", "key", "lists", "number", "pack_number", "strings", "true")

    def __init__(self, key: str) -> None:
        self.key = _struct_key(key)
        size = len(self.key)
        self.number = b"\x0a" + _varint(size + 11) + self.key + b"\x12\x09\x11"
        self.pack_number = struct.Struct(f"<{len(self.number)}sd").pack  # (number, value) -> the entry
        self.true = b"\x0a" + _varint(size + 4) + self.key + b"\x12\x02\x20\x01"
        self.false = b"\x0a" + _varint(size + 4) + self.key + b"\x12\x02\x20\x00"
        self.strings: dict[str, bytes] = {}
        self.lists: dict[tuple[str, ...], bytes] = {}

    def string(self, value: str) -> bytes:
        """The entry holding the string ``value`` (memoized when short)."""
        text = value.encode("utf-8")
        entry = _entry(self.key, b"\x1a" + _varint(len(text)) + text)
        if len(text) <= _MEMO_BYTES:
            if len(self.strings) >= _MEMO_ENTRIES:
                self.strings.clear()
            self.strings[value] = entry
        return entry

    def string_list(self, items: tuple[str, ...]) -> bytes | None:
        """The entry holding a list of the strings ``items``, memoized; None unless all are str."""
        parts = []
        for item in items:
            if type(item) is not str:
                return None
            text = item.encode("utf-8")
            parts.append(_ITEM_HEADS[len(text)] + text if len(text) < 0x7E else _list_item(text))
        body = b"".join(parts)
        entry = _entry(self.key, b"\x32" + _varint(len(body)) + body)
        if len(body) <= _MEMO_BYTES:
            if len(self.lists) >= _MEMO_ENTRIES:
                self.lists.clear()
            self.lists[items] = entry
        return entry


_ID_HEADS = [b"\x0a" + ONE_BYTE[size] for size in range(0x80)]
_MEMO_ENTRIES = 1024
_MEMO_BYTES = 128
_KEY_CODES: dict[str, _KeyCode] = {}
_KEY_CODES_SIZE = 1024
_ITEM_HEADS = [b"\x0a" + ONE_BYTE[size + 2] + b"\x1a" + ONE_BYTE[size] for size in range(0x7E)]
"""The head of a ListValue item holding a string of each UTF-8 length whose item still fits in 0x80."""


def _list_item(text: bytes) -> bytes:
    value = b"\x1a" + _varint(len(text)) + text
    return b"\x0a" + _varint(len(value)) + value


def _key_code(key: str) -> _KeyCode:
    code = _KEY_CODES.get(key)
    if code is None:
        if len(_KEY_CODES) >= _KEY_CODES_SIZE:
            _KEY_CODES.clear()
        code = _KEY_CODES[key] = _KeyCode(key)
    return code


def _encode_metadata(fields: Mapping[str, Any]) -> bytes:
    """A record's metadata as the ``metadata`` field (3) of a ``Vector``: tag, length, Struct body.

    The usual metadata is flat: strings, numbers, booleans and short lists of strings under a handful
    of keys that repeat from record to record. Those entries are written from what :class:`_KeyCode`
    worked out for the key; anything else takes :func:`_encode_value`'s path.
    """
    if type(fields) is not dict:
        return _len_field(b"\x1a", _encode_struct(fields, 2))
    parts: list[bytes] = []
    append = parts.append
    codes = _KEY_CODES
    for key, value in fields.items():
        code = codes.get(key) or _key_code(key)
        kind = type(value)
        if kind is str:
            append(code.strings.get(value) or code.string(value))
            continue
        if kind is float or kind is int:
            try:
                append(code.number + DOUBLE.pack(value))
            except (OverflowError, struct.error) as exc:  # an int beyond the range of a double
                raise ValueError(f"metadata number {value} does not fit in a double") from exc
            continue
        if kind is bool:
            append(code.true if value else code.false)
            continue
        if kind is list:
            items = tuple(value)
            try:
                entry = code.lists.get(items) or code.string_list(items)
            except TypeError:  # an unhashable item: not a list of strings
                entry = None
            if entry is not None:
                append(entry)
                continue
        append(_entry(code.key, _encode_value(value, 4)))
    body = b"".join(parts)
    return b"\x1a" + _varint(len(body)) + body


def _entry(key: bytes, value: bytes) -> bytes:
    """A Struct map entry: its tag and length, the key field and the value field."""
    entry = key + b"\x12" + _varint(len(value)) + value
    return b"\x0a" + _varint(len(entry)) + entry


def _encode_value(value: Any, depth: int) -> bytes:
    """The body of a ``google.protobuf.Value`` holding ``value``, the Value being at nesting ``depth``."""
    if isinstance(value, str):
        return _len_field(b"\x1a", value.encode("utf-8"))
    if isinstance(value, (bool, np.bool_)):
        return b"\x20\x01" if value else b"\x20\x00"
    if isinstance(value, (int, float, np.integer, np.floating)):
        try:
            return b"\x11" + DOUBLE.pack(float(value))
        except OverflowError as exc:
            raise ValueError(f"metadata number {value} does not fit in a double") from exc
    if value is None:
        return b"\x08\x00"
    if isinstance(value, Mapping):
        return _len_field(b"\x2a", _encode_struct(value, depth + 1))
    if isinstance(value, (list, tuple)):
        return _encode_list(value, depth)
    raise TypeError(f"cannot encode a {type(value).__name__} as a protobuf Value")


def _encode_list(items: list[Any] | tuple[Any, ...], depth: int) -> bytes:
    """The body of a ``google.protobuf.Value`` holding a ListValue, the Value being at nesting ``depth``.

    Short strings, the usual items (tags), are inlined: a one-byte length for the Value and for the text.
    """
    if depth + 1 > MAX_DEPTH or (items and depth + 2 > MAX_DEPTH):  # the list, then its values
        raise ValueError(f"metadata nested deeper than {MAX_DEPTH} levels")
    parts = []
    for item in items:
        if type(item) is str:
            text = item.encode("utf-8")
            size = len(text)
            if size < 0x7E:  # the Value body (tag, length, text) is under 0x80 bytes too
                parts.append(b"\x0a" + ONE_BYTE[size + 2] + b"\x1a" + ONE_BYTE[size] + text)
                continue
        parts.append(_len_field(b"\x0a", _encode_value(item, depth + 2)))
    return _len_field(b"\x32", b"".join(parts))


def _encode_struct(fields: Mapping[str, Any], depth: int) -> bytes:
    """The body of a ``google.protobuf.Struct`` (entries in the mapping's order) at nesting ``depth``.

    ``depth`` counts enclosing messages (the request is 0), as protobuf's parsers do: a map entry, a
    Value, a Struct and a ListValue are one level each, and nothing may lie deeper than ``MAX_DEPTH``.
    Strings and numbers, the bulk of metadata, are inlined, and so are one-byte lengths.
    """
    if depth > MAX_DEPTH or (fields and depth + 2 > MAX_DEPTH):
        raise ValueError(f"metadata nested deeper than {MAX_DEPTH} levels")
    depth += 2  # the depth of the values, each in a map entry
    entries = []
    for key, value in fields.items():
        kind = type(value)
        if kind is str:
            text = value.encode("utf-8")
            size = len(text)
            body = (b"\x1a" + ONE_BYTE[size] + text) if size < 0x80 else (b"\x1a" + _varint(size) + text)
        elif kind is float or kind is int:
            try:
                body = b"\x11" + DOUBLE.pack(value)
            except (OverflowError, struct.error) as exc:  # an int beyond the range of a double
                raise ValueError(f"metadata number {value} does not fit in a double") from exc
        elif kind is list:
            body = _encode_list(value, depth)
        else:
            body = _encode_value(value, depth)
        size = len(body)
        entry = _struct_key(key) + b"\x12" + (ONE_BYTE[size] if size < 0x80 else _varint(size)) + body
        size = len(entry)
        entries.append(b"\x0a" + (ONE_BYTE[size] if size < 0x80 else _varint(size)) + entry)
    return b"".join(entries)


def _metadata_columns(metadata: Sequence[Any]) -> list[list[bytes]] | None:
    """The map entries of every record's metadata, worked out key by key rather than record by record.

    A batch's metadata usually has the same keys in every record (one document schema); then each
    key's values are encoded as one column (entries follow the first record's key order), with the
    iteration in C (``map`` over the memoized entries of :class:`_KeyCode`) and Python only for values
    not seen before. Returns one list of entries per key, or None for anything else (a record without
    metadata, differing keys, a column of mixed or unusual types), and the caller encodes record by
    record.
    """
    if not metadata or set(map(type, metadata)) != {dict}:
        return None
    keys = tuple(metadata[0])
    if set(map(len, metadata)) != {len(keys)}:  # with every key of the first in each: the same keys
        return None
    columns: list[list[bytes]] = []
    for key in keys:
        if type(key) is not str:
            return None
        code = _key_code(key)
        try:
            values = list(map(itemgetter(key), metadata))
        except KeyError:
            return None
        kinds = set(map(type, values))
        entries: list[Any]
        if kinds == {str}:
            entries = list(map(code.strings.get, values))
            if None in entries:
                # Looked up again: a value new to this batch usually repeats within it (a source shared
                # by a document's chunks), and its first occurrence memoized it.
                strings = code.strings
                entries = [
                    entry or strings.get(value) or code.string(value)
                    for entry, value in zip(entries, values, strict=True)
                ]
        elif kinds <= {float, int}:
            try:
                entries = list(map(code.pack_number, repeat(code.number), values))
            except (OverflowError, struct.error):  # the record-by-record path says which value
                return None
        elif kinds == {bool}:
            entries = list(map((code.false, code.true).__getitem__, values))
        elif kinds == {list}:
            items = list(map(tuple, values))
            try:
                entries = list(map(code.lists.get, items))
            except TypeError:  # an unhashable item: not a list of strings
                return None
            if None in entries:
                lists = code.lists
                entries = [
                    entry or lists.get(item) or code.string_list(item)
                    for entry, item in zip(entries, items, strict=True)
                ]
                if None in entries:
                    return None
        else:
            return None
        columns.append(entries)
    return columns


def _varint_sizes(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """The varint length of each non-negative value below 2**63, vectorised."""
    sizes = np.ones(len(values), dtype=np.int64)
    for bits in range(7, 63, 7):
        sizes += values >= 1 << bits
    return sizes


def _sizes_of(parts: Iterable[bytes]) -> NDArray[np.int64]:
    return np.fromiter(map(len, parts), dtype=np.int64)


def _columnar_records(
    ids: Sequence[str],
    rows: memoryview | None,
    row_bytes: int,
    values_head: bytes,
    metadata: list[list[bytes]] | None,
) -> list[bytes | memoryview] | None:
    """The records of ids, dense values and metadata entry columns, assembled with C iteration.

    Each record is written as its parts (heads, id, values, entries), all joined once by the caller:
    no bytes object is built per record. Returns None unless every id is a plain str (the per-record
    loop then reports the bad one).
    """
    if set(map(type, ids)) != {str}:
        return None
    id_bytes = list(map(str.encode, ids))
    id_sizes = _sizes_of(id_bytes)
    id_head_sizes = np.where(id_sizes > 0, 1 + _varint_sizes(id_sizes), 0)
    sizes = id_head_sizes + id_sizes + (len(values_head) + row_bytes)
    metadata_heads: list[bytes] = []
    if metadata is not None:  # an empty list of columns: every record has an empty Struct
        body_sizes = sum(map(_sizes_of, metadata), np.zeros(len(ids), dtype=np.int64))
        sizes += 1 + _varint_sizes(body_sizes) + body_sizes
        heads = {size: b"\x1a" + _varint(size) for size in set(body_sizes.tolist())}
        metadata_heads = list(map(heads.__getitem__, body_sizes.tolist()))
    id_heads = {size: (b"\x0a" + _varint(size)) if size else b"" for size in set(id_sizes.tolist())}
    record_heads = {size: b"\x0a" + _varint(size) for size in set(sizes.tolist())}
    columns: list[Iterable[bytes | memoryview]] = [
        map(record_heads.__getitem__, sizes.tolist()),
        map(id_heads.__getitem__, id_sizes.tolist()),
        id_bytes,
    ]
    if rows is not None:
        stops = range(row_bytes, row_bytes * len(ids) + 1, row_bytes)
        columns += [
            repeat(values_head),
            map(rows.__getitem__, map(slice, range(0, stops.stop, row_bytes), stops)),
        ]
    if metadata is not None:
        columns += [metadata_heads, *metadata]
    return list(chain.from_iterable(zip(*columns, strict=False)))  # repeat() is endless


def _dense_rows(dense: Any, count: int) -> tuple[memoryview | None, int]:
    """The raw little-endian float32 bytes of an (n, d) matrix, and the bytes per row."""
    matrix = np.ascontiguousarray(dense, dtype=F32)
    if matrix.ndim != 2 or matrix.shape[0] != count:
        raise ValueError(f"dense must have shape ({count}, dimension), not {matrix.shape}")
    row_bytes = int(matrix.shape[1]) * 4
    if row_bytes == 0:
        return None, 0
    # A uint8 view exports the plain 'B' buffer format whatever the byte order of the float dtype.
    return matrix.reshape(-1).view(np.uint8).data, row_bytes


def _append_dense_records(
    parts: list[bytes | memoryview], ids: Sequence[str], rows: memoryview, row_bytes: int, values_head: bytes
) -> None:
    """The records of a batch of ids and dense values only (the hot path): one header per id length."""
    heads: dict[int, bytes] = {}
    values_size = len(values_head) + row_bytes
    extend = parts.extend
    offset = 0
    for record_id in ids:
        try:
            id_bytes = record_id.encode("utf-8")
        except AttributeError:
            raise TypeError(f"ids must be str, not {type(record_id).__name__}") from None
        head = heads.get(len(id_bytes))
        if head is None:
            id_size = len(id_bytes)
            id_head = (b"\x0a" + _varint(id_size)) if id_size else b""
            head = heads[id_size] = b"\x0a" + _varint(len(id_head) + id_size + values_size) + id_head
        stop = offset + row_bytes
        extend((head, id_bytes, values_head, rows[offset:stop]))
        offset = stop


def encode_upsert_request(
    ids: Sequence[str],
    dense: NDArray[np.floating[Any]] | None,
    sparse: Sequence[SparseInput | None] | None,
    metadata: Sequence[Mapping[str, Any] | None] | None,
    namespace: str = "",
) -> bytes:
    """Serialize an ``UpsertRequest`` from numpy arrays, without per-float Python work.

    Args:
        ids: The record ids; record ``i`` is ``ids[i]``.
        dense: An ``(len(ids), dimension)`` array of any float dtype and layout (converted once to
            little-endian float32), or None for sparse-only records. Dimension 0 writes no values.
        sparse: Per record None or ``(indices, values)`` (uint32-compatible integers and floats of the
            same length), or None for no sparse values at all.
        metadata: Per record None or a dict of str to str, number, bool, None, list or nested dict,
            written as ``google.protobuf.Struct`` (numbers become doubles); or None for no metadata.
        namespace: The target namespace ("" is the default namespace and is not written).

    Returns:
        The serialized message: byte-identical to ``SerializeToString()`` of the same message built with
        the generated classes, except for the order of entries within metadata Structs.

    Raises:
        ValueError: If the shapes or lengths disagree, or a value cannot be represented on the wire.
        TypeError: If an id is not a str or metadata holds a value protobuf's Struct cannot hold.
    """
    count = len(ids)
    if sparse is not None and len(sparse) != count:
        raise ValueError(f"sparse has {len(sparse)} entries for {count} ids")
    if metadata is not None and len(metadata) != count:
        raise ValueError(f"metadata has {len(metadata)} entries for {count} ids")
    rows, row_bytes = (None, 0) if dense is None else _dense_rows(dense, count)
    values_head = b"\x12" + _varint(row_bytes) if row_bytes else b""
    values_size = len(values_head) + row_bytes
    parts: list[bytes | memoryview] = []
    if rows is not None and sparse is None and metadata is None:
        _append_dense_records(parts, ids, rows, row_bytes, values_head)
        if namespace:
            parts.append(_len_field(b"\x12", _utf8(namespace, "namespace")))
        return b"".join(parts)
    if sparse is None and metadata is not None:
        entries = _metadata_columns(metadata)
        records = None if entries is None else _columnar_records(ids, rows, row_bytes, values_head, entries)
        if records is not None:
            if namespace:
                records.append(_len_field(b"\x12", _utf8(namespace, "namespace")))
            return b"".join(records)
    extend = parts.extend
    heads: dict[int, bytes] = {}
    offset = 0
    all_metadata = repeat(None) if metadata is None else metadata
    all_sparse = repeat(None) if sparse is None else sparse
    for record_id, fields, pair in zip(ids, all_metadata, all_sparse, strict=False):  # lengths checked
        if not isinstance(record_id, str):
            raise TypeError(f"ids must be a str, not {type(record_id).__name__}")
        id_bytes = record_id.encode("utf-8")
        id_size = len(id_bytes)
        id_head = (_ID_HEADS[id_size] if id_size < 0x80 else b"\x0a" + _varint(id_size)) if id_size else b""
        extra = b"" if fields is None else _encode_metadata(fields)
        if pair is not None:
            extra += _len_field(b"\x22", _encode_sparse(pair))
        size = len(id_head) + id_size + values_size + len(extra)
        head = heads.get(size)
        if head is None:
            head = heads[size] = b"\x0a" + _varint(size)
        if rows is None:
            extend((head, id_head, id_bytes, extra))
        else:
            stop = offset + row_bytes
            extend((head, id_head, id_bytes, values_head, rows[offset:stop], extra))
            offset = stop
    append = parts.append
    if namespace:
        append(_len_field(b"\x12", _utf8(namespace, "namespace")))
    return b"".join(parts)


def encode_query_request(
    vector: NDArray[np.floating[Any]] | None,
    top_k: int,
    namespace: str = "",
    *,
    filter: Mapping[str, Any] | None = None,  # noqa: A002  (the wire and SDK name)
    include_values: bool = False,
    include_metadata: bool = False,
    sparse: SparseInput | None = None,
    record_id: str | None = None,
    scan_factor: float | None = None,
    max_candidates: int | None = None,
) -> bytes:
    """Serialize a ``QueryRequest`` (by vector, by sparse vector, or by record id).

    Args:
        vector: The dense query vector (any float dtype; flattened), or None. An empty vector is not
            written.
        top_k: How many matches to return (uint32; 0 is not written).
        namespace: The namespace to query ("" is not written).
        filter: A metadata filter, written as a ``google.protobuf.Struct`` when not None.
        include_values: Ask for the matches' values.
        include_metadata: Ask for the matches' metadata.
        sparse: The sparse query vector ``(indices, values)``, written when not None.
        record_id: Query by the stored record with this id ("" or None is not written).
        scan_factor: How much more than the default to scan (optional float, written when not None).
        max_candidates: A cap on the records scanned (optional uint32, written when not None).

    Returns:
        The serialized message, byte-identical to ``SerializeToString()`` of the generated class except
        for the order of entries within the filter Struct.

    Raises:
        ValueError: If ``top_k`` is outside uint32 or a value cannot be represented on the wire.
        TypeError: If the filter holds a value protobuf's Struct cannot hold.
    """
    if not 0 <= top_k < UINT32_LIMIT:
        raise ValueError(f"top_k must be in [0, 2**32), not {top_k}")
    parts: list[bytes] = []
    if namespace:
        parts.append(_len_field(b"\x0a", _utf8(namespace, "namespace")))
    if top_k:
        parts.append(b"\x10" + _varint(top_k))
    if filter is not None:
        parts.append(_len_field(b"\x1a", _encode_struct(filter, 1)))
    if include_values:
        parts.append(b"\x20\x01")
    if include_metadata:
        parts.append(b"\x28\x01")
    if vector is not None:
        floats = np.ascontiguousarray(vector, dtype=F32).reshape(-1).tobytes()
        if floats:
            parts.append(_len_field(b"\x3a", floats))
    if record_id:
        parts.append(_len_field(b"\x42", _utf8(record_id, "record_id")))
    if sparse is not None:
        parts.append(_len_field(b"\x4a", _encode_sparse(sparse)))
    if scan_factor is not None:
        parts.append(b"\x55" + struct.pack("<f", scan_factor))  # field 10, fixed32
    if max_candidates is not None:
        if not 0 <= max_candidates < UINT32_LIMIT:
            raise ValueError(f"max_candidates must be in [0, 2**32), not {max_candidates}")
        parts.append(b"\x58" + _varint(max_candidates))  # field 11, varint
    return b"".join(parts)


def encode_fetch_request(ids: Sequence[str], namespace: str = "") -> bytes:
    """Serialize a ``FetchRequest``.

    Args:
        ids: The ids to fetch (every element is written, empty strings included, as protobuf does).
        namespace: The namespace to fetch from ("" is not written).

    Returns:
        The serialized message, byte-identical to ``SerializeToString()`` of the generated class.

    Raises:
        TypeError: If an id is not a str.
    """
    parts = [_len_field(b"\x0a", _utf8(record_id, "ids")) for record_id in ids]
    if namespace:
        parts.append(_len_field(b"\x12", _utf8(namespace, "namespace")))
    return b"".join(parts)

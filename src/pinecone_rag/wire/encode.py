"""The fast encoder: data-plane requests written straight from numpy (see :mod:`pinecone_rag.wire.codec`)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from functools import lru_cache
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
    from collections.abc import Sequence

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
    append = parts.append
    offset = 0
    for i, record_id in enumerate(ids):
        id_bytes = _utf8(record_id, "ids")
        id_size = len(id_bytes)
        id_head = (b"\x0a" + _varint(id_size)) if id_size else b""
        extra = b""
        if metadata is not None and (fields := metadata[i]) is not None:
            extra = _len_field(b"\x1a", _encode_struct(fields, 2))
        if sparse is not None and (pair := sparse[i]) is not None:
            extra += _len_field(b"\x22", _encode_sparse(pair))
        append(b"\x0a" + _varint(len(id_head) + id_size + values_size + len(extra)) + id_head)
        append(id_bytes)
        if rows is not None:
            append(values_head)
            append(rows[offset : offset + row_bytes])
            offset += row_bytes
        if extra:
            append(extra)
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

"""Write operations as the WAL stores them, and their payload codec (format in FORMAT.md).

The log holds *logical* operations: a delete by filter is logged as its filter, not as the ids it hit.
Applying an operation is a deterministic function of the namespace state, and the state at replay is the
state at write time, so replay reproduces exactly what was acknowledged.

Payload: ``op (u8) | json length (u32) | json (UTF-8) | binary blob``. The JSON carries ids, metadata and
counts; the blob carries float32/uint32 arrays little-endian, back to back, in the order FORMAT.md lists.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from pinecone_rag.errors import DataLossError
from pinecone_rag.server.records import FloatArray, Metadata, SparseVector, UpsertBatch

_HEAD = struct.Struct("<BI")

OP_UPSERT = 1
OP_DELETE_IDS = 2
OP_DELETE_FILTER = 3
OP_DELETE_ALL = 4
OP_UPDATE = 5
OP_UPDATE_FILTER = 6

_F32 = np.dtype("<f4")
_U32 = np.dtype("<u4")

Buffer = bytes | memoryview
"""A piece of a payload: bytes, or a flat byte view of an array (its length is its size in bytes)."""


@dataclass(frozen=True, slots=True)
class UpsertOp:
    """Insert or overwrite records."""

    batch: UpsertBatch


@dataclass(frozen=True, slots=True)
class DeleteIdsOp:
    """Delete records by id; missing ids are ignored."""

    ids: list[str]


@dataclass(frozen=True, slots=True)
class DeleteFilterOp:
    """Delete every record whose metadata matches ``filter`` (the raw, already validated JSON)."""

    filter: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteAllOp:
    """Delete every record of the namespace."""


@dataclass(frozen=True, slots=True)
class UpdateOp:
    """Update one record: replace values and/or sparse values, merge metadata."""

    id: str
    values: FloatArray | None
    sparse: SparseVector | None
    set_metadata: Metadata | None


@dataclass(frozen=True, slots=True)
class UpdateFilterOp:
    """Merge ``set_metadata`` into every record whose metadata matches ``filter``."""

    filter: dict[str, Any]
    set_metadata: Metadata


Op = UpsertOp | DeleteIdsOp | DeleteFilterOp | DeleteAllOp | UpdateOp | UpdateFilterOp


def _frame(code: int, header: dict[str, Any], blobs: list[Buffer]) -> list[Buffer]:
    """The payload's pieces: head, JSON header, then the blobs (bytes, or byte views of arrays)."""
    text = orjson.dumps(header)
    return [_HEAD.pack(code, len(text)), text, *blobs]


def _bytes_of(array: npt.NDArray[Any], dtype: np.dtype[Any]) -> Buffer:
    """A flat byte view of ``array`` as ``dtype`` (a copy only when it is not that already)."""
    return np.ascontiguousarray(array, dtype=dtype).reshape(-1).view(np.uint8).data


def encode_op(op: Op) -> bytes:
    """Serialise an operation into a WAL payload."""
    return b"".join(encode_op_parts(op))


def encode_op_parts(op: Op) -> list[Buffer]:
    """The WAL payload of an operation as pieces to write back to back (what :func:`encode_op` joins).

    A batch's arrays are views, not copies: the log writes them straight from the request's buffers.
    """
    if isinstance(op, UpsertOp):
        batch = op.batch
        blobs: list[Buffer] = []
        dim = 0
        if batch.dense is not None:
            dim = int(batch.dense.shape[1])
            blobs.append(_bytes_of(batch.dense, _F32))
        sparse = batch.sparse
        if sparse.count(None) == len(sparse):  # dense records (the usual upsert): no per-record work
            nnz = [-1] * len(sparse)
        else:
            nnz = [-1 if s is None else len(s.indices) for s in sparse]
            present = [s for s in sparse if s is not None]
            blobs.append(_bytes_of(np.concatenate([s.indices for s in present]), _U32))
            blobs.append(_bytes_of(np.concatenate([s.values for s in present]), _F32))
        return _frame(OP_UPSERT, {"ids": batch.ids, "dim": dim, "nnz": nnz, "md": batch.metadata}, blobs)
    if isinstance(op, DeleteIdsOp):
        return _frame(OP_DELETE_IDS, {"ids": op.ids}, [])
    if isinstance(op, DeleteFilterOp):
        return _frame(OP_DELETE_FILTER, {"filter": op.filter}, [])
    if isinstance(op, DeleteAllOp):
        return _frame(OP_DELETE_ALL, {}, [])
    if isinstance(op, UpdateOp):
        blobs = []
        if op.values is not None:
            blobs.append(np.ascontiguousarray(op.values, dtype=_F32).tobytes())
        one_nnz = -1
        if op.sparse is not None:
            one_nnz = len(op.sparse.indices)
            blobs.append(op.sparse.indices.astype(_U32, copy=False).tobytes())
            blobs.append(op.sparse.values.astype(_F32, copy=False).tobytes())
        dim = -1 if op.values is None else len(op.values)
        return _frame(OP_UPDATE, {"id": op.id, "dim": dim, "nnz": one_nnz, "md": op.set_metadata}, blobs)
    return _frame(OP_UPDATE_FILTER, {"filter": op.filter, "md": op.set_metadata}, [])


class _Reader:
    def __init__(self, blob: memoryview) -> None:
        self._blob = blob
        self._offset = 0

    def take(self, dtype: np.dtype[Any], count: int) -> Any:
        size = dtype.itemsize * count
        if self._offset + size > len(self._blob):
            raise DataLossError("WAL payload is shorter than its header says.")
        out = np.frombuffer(self._blob, dtype=dtype, count=count, offset=self._offset).copy()
        self._offset += size
        return out


def decode_op(payload: bytes) -> Op:
    """Parse a WAL payload written by :func:`encode_op`."""
    if len(payload) < _HEAD.size:
        raise DataLossError("WAL payload is too short.")
    code, text_len = _HEAD.unpack_from(payload)
    if _HEAD.size + text_len > len(payload):
        raise DataLossError("WAL payload is shorter than its header says.")
    try:
        header = orjson.loads(payload[_HEAD.size : _HEAD.size + text_len])
    except orjson.JSONDecodeError as exc:
        raise DataLossError(f"WAL payload has a malformed header: {exc}") from exc
    reader = _Reader(memoryview(payload)[_HEAD.size + text_len :])
    if code == OP_UPSERT:
        ids: list[str] = header["ids"]
        dim: int = header["dim"]
        dense = reader.take(_F32, len(ids) * dim).reshape(len(ids), dim) if dim else None
        nnz: list[int] = header["nnz"]
        total = sum(n for n in nnz if n > 0)
        indices = reader.take(_U32, total) if any(n >= 0 for n in nnz) else None
        values = reader.take(_F32, total) if indices is not None else None
        sparse: list[SparseVector | None] = []
        start = 0
        for n in nnz:
            if n < 0 or indices is None or values is None:
                sparse.append(None)
                continue
            sparse.append(SparseVector(indices[start : start + n], values[start : start + n]))
            start += n
        return UpsertOp(UpsertBatch(ids, dense, sparse, header["md"]))
    if code == OP_DELETE_IDS:
        return DeleteIdsOp(header["ids"])
    if code == OP_DELETE_FILTER:
        return DeleteFilterOp(header["filter"])
    if code == OP_DELETE_ALL:
        return DeleteAllOp()
    if code == OP_UPDATE:
        values_arr = reader.take(_F32, header["dim"]) if header["dim"] >= 0 else None
        sparse_one = None
        if header["nnz"] >= 0:
            sparse_one = SparseVector(reader.take(_U32, header["nnz"]), reader.take(_F32, header["nnz"]))
        return UpdateOp(header["id"], values_arr, sparse_one, header["md"])
    if code == OP_UPDATE_FILTER:
        return UpdateFilterOp(header["filter"], header["md"])
    raise DataLossError(f"WAL payload has unknown operation code {code}.")

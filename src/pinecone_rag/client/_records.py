"""Turn whatever a caller passes to ``upsert`` into columnar batches, before any I/O.

A record may be a :class:`~pinecone_rag.models.Vector`, a tuple ``(id, values[, metadata[, sparse]])`` or a
dict ``{"id", "values", "sparse_values", "metadata"}``; a numpy matrix with a list of ids takes a faster
path (:func:`batches_from_matrix`). Every problem is a :class:`~pinecone_rag.errors.RecordError` whose
message names the record's 0-based position in the input (``records[3]`` is ``Record #3``).

Batches respect Pinecone's upsert limits (1000 records and 2 MB per request). Their size is estimated
from the protobuf encoding without serialising anything but metadata (see :class:`RecordBatch`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from operator import is_, is_not, itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import orjson

from pinecone_rag.client._record_checks import (
    MAX_ID_LENGTH,
    REAL_KINDS,
    check_id,
    clean_metadata,
    dense_float32,
    dense_source,
    not_finite,
    record_error,
    sparse_pair,
    type_name,
)
from pinecone_rag.errors import ConfigurationError, RecordError
from pinecone_rag.models import SparseValues, Vector

if TYPE_CHECKING:
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]
    IndexArray = npt.NDArray[np.uint32]
    SparsePair = tuple[IndexArray, FloatArray]

MAX_BATCH_RECORDS = 1000
"""Pinecone accepts at most this many records per upsert request."""
DEFAULT_MAX_BATCH_BYTES = 2_000_000 - 64 * 1024
"""The 2 MB request limit less headroom for the namespace, framing and estimate error."""

# Per-record protobuf framing: the Vector's tag and length, plus the tags and lengths of its fields.
_RECORD_OVERHEAD = 16
# A packed sparse entry: a uint32 index as a varint (up to 5 bytes) and a 4-byte float.
_BYTES_PER_SPARSE_ENTRY = 9
# A Struct entry costs more than its JSON text: map-entry, key and Value framing (6 bytes, more for long
# strings), and a number is always a 9-byte double where JSON may spell it in one character.
_BYTES_PER_METADATA_KEY = 12
# A list item is a Value message (tag, length, string tag and length) where JSON spends quotes and a comma.
_BYTES_PER_LIST_ITEM = 3
_RECORD_KEYS = frozenset({"id", "values", "sparse_values", "sparseValues", "metadata"})
_DATAFRAME_COLUMNS = ("id", "values", "sparse_values", "metadata")
# Rows per finiteness check of a matrix: bounds the temporary boolean array to a few MB.
_FINITE_CHECK_ELEMENTS = 4_000_000


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records of one upsert request, in columns.

    Attributes:
        ids: The record ids, in input order.
        dense: An (n, d) C-contiguous float32 matrix, or None when no record has dense values.
        sparse: Per record ``(indices uint32, values float32)`` or None; None when no record has any.
        metadata: Per record a metadata dict or None; None when no record has metadata.
        estimated_bytes: An estimate of the protobuf-encoded size: per record about
            ``16 + len(id) + 4 * d + 9 * nnz`` plus the metadata's JSON size, 12 bytes per key and 3 per
            list item. 0 when the batch was not built by this module.
        start: The 0-based position of the first record in the whole input (for messages).
    """

    ids: list[str]
    dense: FloatArray | None
    sparse: list[SparsePair | None] | None
    metadata: list[dict[str, Any] | None] | None
    estimated_bytes: int = 0
    start: int = 0

    def __len__(self) -> int:
        return len(self.ids)


class NormalizedRecord(NamedTuple):
    """One validated record.

    Attributes:
        id: The record id.
        values: Dense values (float32, 1-D), or None for a sparse-only record.
        sparse: ``(indices uint32, values float32)``, or None.
        metadata: Metadata without its None-valued keys, or None when nothing is left.
        estimated_bytes: The record's estimated protobuf size (see :class:`RecordBatch`).
    """

    id: str
    values: FloatArray | None
    sparse: SparsePair | None
    metadata: dict[str, Any] | None
    estimated_bytes: int


def _metadata_bytes(metadata: dict[str, Any] | None) -> int:
    if not metadata:
        return 0
    try:
        # orjson takes about half a microsecond for typical metadata, faster than walking it in Python.
        text_size = len(orjson.dumps(metadata, default=str, option=orjson.OPT_SERIALIZE_NUMPY))
    except orjson.JSONEncodeError:  # non-string nested keys, integers beyond 64 bits: rare, so approximate
        text_size = len(repr(metadata))
    list_items = 0
    for value in metadata.values():
        if isinstance(value, list | tuple):
            list_items += len(value)
    return text_size + _BYTES_PER_METADATA_KEY * len(metadata) + _BYTES_PER_LIST_ITEM * list_items


def _record_bytes(record_id: str, dimension: int, nnz: int, metadata_bytes: int) -> int:
    id_bytes = len(record_id) if record_id.isascii() else len(record_id.encode("utf-8"))
    return _RECORD_OVERHEAD + id_bytes + 4 * dimension + _BYTES_PER_SPARSE_ENTRY * nnz + metadata_bytes


# ------------------------------------------------------------------------------------------- records
def _fields(record: object, position: int) -> tuple[object, object, object, object]:
    """(id, values, sparse, metadata) of any accepted record form, unvalidated."""
    if isinstance(record, tuple):
        if not 2 <= len(record) <= 4:
            raise record_error(
                position,
                None,
                "a tuple record must be (id, values), (id, values, metadata) or "
                f"(id, values, metadata, sparse_values), got {len(record)} items",
            )
        metadata = record[2] if len(record) > 2 else None
        return record[0], record[1], record[3] if len(record) == 4 else None, metadata
    if isinstance(record, Vector):
        return record.id, record.values, record.sparse_values, record.metadata
    if isinstance(record, Mapping):
        unknown = record.keys() - _RECORD_KEYS
        if unknown:
            raise record_error(
                position,
                record.get("id"),
                f"unknown keys {sorted(map(str, unknown))}; "
                "a record dict has id, values, sparse_values, metadata",
            )
        if "id" not in record:
            raise record_error(position, None, "the record dict has no 'id'")
        if "sparse_values" in record and "sparseValues" in record:
            raise record_error(position, record["id"], "give sparse_values or sparseValues, not both")
        sparse = record["sparse_values"] if "sparse_values" in record else record.get("sparseValues")
        return record["id"], record.get("values"), sparse, record.get("metadata")
    hint = " (to upsert a matrix, pass ids=[...] with it)" if isinstance(record, np.ndarray) else ""
    raise record_error(
        position,
        None,
        "expected a Vector, a dict or a tuple (id, values[, metadata[, sparse_values]]), "
        f"got {type_name(record)}{hint}",
    )


def _normalize(record: object, position: int) -> NormalizedRecord:
    """Validate a record; dense values stay in their real dtype (cast and checked per batch)."""
    raw_id, raw_values, raw_sparse, raw_metadata = _fields(record, position)
    record_id = check_id(raw_id, position)
    values = dense_source(raw_values, position, record_id)
    sparse = sparse_pair(raw_sparse, position, record_id)
    metadata = clean_metadata(raw_metadata, position, record_id)
    if values is None and sparse is None:
        raise record_error(position, record_id, "has neither dense values nor sparse values")
    size = _record_bytes(
        record_id,
        0 if values is None else len(values),
        0 if sparse is None else len(sparse[0]),
        _metadata_bytes(metadata),
    )
    return NormalizedRecord(record_id, values, sparse, metadata, size)


def normalize_record(record: object, position: int) -> NormalizedRecord:
    """Validate one record of any accepted form.

    Accepted forms: a :class:`~pinecone_rag.models.Vector`; a tuple ``(id, values)``,
    ``(id, values, metadata)`` or ``(id, values, metadata, sparse_values)``; a dict with keys ``id``,
    ``values``, ``sparse_values`` (or ``sparseValues``) and ``metadata``. Values may be a list, tuple,
    ``array.array`` or 1-D numpy array of any real dtype; sparse values a
    :class:`~pinecone_rag.models.SparseValues` or ``{"indices": [...], "values": [...]}``. Metadata keys
    whose value is None are dropped (the way LangChain-style callers mean "no value"); metadata values
    are otherwise left for the service to check.

    Args:
        record: The record as the caller gave it.
        position: Its 0-based position in the input, for error messages.

    Returns:
        The validated record with float32 values.

    Raises:
        RecordError: The record is malformed; the message names the position and the problem.
    """
    normalized = _normalize(record, position)
    if normalized.values is None:
        return normalized
    return normalized._replace(values=dense_float32(normalized.values, position, normalized.id))


def _dimension(record: NormalizedRecord) -> int:
    return 0 if record.values is None else len(record.values)


def _dimension_error(record: NormalizedRecord, position: int, first: NormalizedRecord) -> RecordError:
    mine, theirs = _dimension(record), _dimension(first)
    has = f"{mine} dense values" if mine else "no dense values"
    if not theirs:
        first_has = "no dense values"
    elif mine:
        first_has = str(theirs)
    else:
        first_has = f"{theirs} dense values"
    return record_error(
        position,
        record.id,
        f"has {has}, but record #0 ({first.id!r}) has {first_has}; "
        "every record of an upsert must have the same dimension",
    )


def _none_if_all_none(items: list[Any]) -> list[Any] | None:
    # Identity, not equality (items may be arrays), with C-level iteration: this runs for every record.
    return None if not any(map(is_not, items, repeat(None))) else items


def _assemble(records: list[NormalizedRecord], start: int) -> RecordBatch:
    """One batch from validated records; dense rows are cast and checked for finiteness all at once."""
    ids = [record.id for record in records]
    dense: FloatArray | None = None
    if records[0].values is not None:
        rows = [record.values for record in records if record.values is not None]
        with np.errstate(over="ignore"):  # overflow becomes inf, reported below
            dense = np.concatenate(rows, dtype=np.float32, casting="unsafe").reshape(len(rows), -1)
        finite = np.isfinite(dense)
        if not finite.all():
            row = int(np.argmin(finite.all(axis=1)))
            column = int(np.argmin(finite[row]))
            raise record_error(start + row, ids[row], not_finite("values", rows[row], column))
    return RecordBatch(
        ids=ids,
        dense=dense,
        sparse=_none_if_all_none([record.sparse for record in records]),
        metadata=_none_if_all_none([record.metadata for record in records]),
        estimated_bytes=sum(record.estimated_bytes for record in records),
        start=start,
    )


def _records_per_batch(batch_size: int | None, max_batch_bytes: int, max_batch_records: int) -> int:
    if max_batch_records < 1:
        raise ConfigurationError(f"max_batch_records must be at least 1, got {max_batch_records}.")
    if max_batch_bytes < 1:
        raise ConfigurationError(f"max_batch_bytes must be positive, got {max_batch_bytes}.")
    if batch_size is None:
        return max_batch_records
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return min(batch_size, max_batch_records)


def _too_big(position: int, record_id: str, size: int, max_batch_bytes: int) -> RecordError:
    return record_error(
        position,
        record_id,
        f"is about {size:,} bytes encoded, more than the {max_batch_bytes:,}-byte request budget; "
        "shrink its metadata or values",
    )


def iter_batches(
    records: Iterable[object],
    *,
    batch_size: int | None = None,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    max_batch_records: int = MAX_BATCH_RECORDS,
) -> Iterator[RecordBatch]:
    """Validate records and group them into batches, lazily.

    The input is consumed one record at a time: a batch is produced as soon as it holds ``batch_size``
    records, or when the next record would push it over ``max_batch_bytes`` (that record then starts the
    next batch). A generator of millions of records is therefore batched in constant memory. Records
    before a malformed one may already have been sent by the time the error is raised.

    Args:
        records: Records in any form :func:`normalize_record` accepts.
        batch_size: Records per batch (default and cap: ``max_batch_records``).
        max_batch_bytes: Budget for one batch's estimated encoded size.
        max_batch_records: The most records one batch may hold.

    Returns:
        An iterator of batches.

    Raises:
        ConfigurationError: A size argument is not positive (raised at once).
        RecordError: While iterating: a record is malformed, is bigger than ``max_batch_bytes`` on its
            own, or its dense dimension differs from the first record's.
    """
    limit = _records_per_batch(batch_size, max_batch_bytes, max_batch_records)
    return _iter_batches(records, limit, max_batch_bytes)


def _iter_batches(records: Iterable[object], limit: int, max_batch_bytes: int) -> Iterator[RecordBatch]:
    pending: list[NormalizedRecord] = []
    pending_bytes = 0
    start = 0
    first: NormalizedRecord | None = None
    for position, item in enumerate(records):
        record = _normalize(item, position)
        if record.estimated_bytes > max_batch_bytes:
            raise _too_big(position, record.id, record.estimated_bytes, max_batch_bytes)
        if first is None:
            first = record
        elif _dimension(record) != _dimension(first):
            raise _dimension_error(record, position, first)
        if pending and pending_bytes + record.estimated_bytes > max_batch_bytes:
            yield _assemble(pending, start)
            pending, pending_bytes, start = [], 0, position
        pending.append(record)
        pending_bytes += record.estimated_bytes
        if len(pending) == limit:  # cut now rather than on the next record: nothing is read ahead
            yield _assemble(pending, start)
            pending, pending_bytes, start = [], 0, position + 1
    if pending:
        yield _assemble(pending, start)


# ---------------------------------------------------------------------------------------- matrix path
def _as_matrix(matrix: object) -> FloatArray:
    try:
        # Infer the dtype first (free for arrays): with dtype=float32 numpy would turn None into NaN and
        # parse strings.
        array = np.asarray(matrix)
    except (TypeError, ValueError):
        raise RecordError("The matrix must be a 2-D array of numbers, with rows of equal length.") from None
    if array.dtype.kind not in REAL_KINDS:
        raise RecordError(f"The matrix must hold real numbers, got dtype {array.dtype}.")
    with np.errstate(over="ignore"):  # overflow becomes inf, reported by the finiteness check
        dense = np.ascontiguousarray(array, dtype=np.float32)
    if dense.ndim != 2:
        raise RecordError(f"The matrix must be 2-D (records, dimension), got shape {dense.shape}.")
    return dense


def _check_length(name: str, items: Sized, rows: int) -> None:
    if len(items) != rows:
        raise RecordError(f"{name} has {len(items)} entries but the matrix has {rows} rows.")


def _check_finite_rows(dense: FloatArray, source: Any, ids: list[str]) -> None:
    rows, dimension = dense.shape
    step = max(1, _FINITE_CHECK_ELEMENTS // max(dimension, 1))
    for begin in range(0, rows, step):
        finite = np.isfinite(dense[begin : begin + step])
        finite_rows = finite.all(axis=1)
        if not finite_rows.all():
            row = int(np.argmin(finite_rows))
            column = int(np.argmin(finite[row]))
            position = begin + row
            raise record_error(position, ids[position], not_finite("values", source[position], column))


def batches_from_matrix(
    ids: Sequence[str],
    matrix: Any,
    metadata: Sequence[Mapping[str, Any] | None] | None = None,
    sparse: Sequence[SparseValues | Mapping[str, Any] | None] | None = None,
    *,
    batch_size: int | None = None,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    max_batch_records: int = MAX_BATCH_RECORDS,
) -> Iterator[RecordBatch]:
    """Batches from an (n, d) matrix and n ids: the fast path for embeddings already in numpy.

    The matrix is converted once (no copy when it is already C-contiguous float32) and every row,
    id, metadata dict and sparse vector is validated before the first batch is returned, so a
    RecordError means nothing was sent. Batches are row slices, cut by the same rule as
    :func:`iter_batches` (the two give identical batches for the same records). Duplicate ids are
    allowed: Pinecone keeps the last.

    Args:
        ids: One id per row.
        matrix: The dense values, (n, d), any real dtype.
        metadata: One metadata dict (or None) per row.
        sparse: One SparseValues or ``{"indices", "values"}`` dict (or None) per row.
        batch_size: Records per batch (default and cap: ``max_batch_records``).
        max_batch_bytes: Budget for one batch's estimated encoded size.
        max_batch_records: The most records one batch may hold.

    Returns:
        An iterator of batches (row slices of the converted matrix).

    Raises:
        ConfigurationError: A size argument is not positive.
        RecordError: Lengths differ, or a row, id, metadata or sparse vector is malformed.
    """
    limit = _records_per_batch(batch_size, max_batch_bytes, max_batch_records)
    dense = _as_matrix(matrix)
    rows, dimension = dense.shape
    _check_length("ids", ids, rows)
    if metadata is not None:
        _check_length("metadata", metadata, rows)
    if sparse is not None:
        _check_length("sparse", sparse, rows)
    id_list, id_sizes = _checked_ids(ids)
    _check_finite_rows(dense, matrix, id_list)
    metadata_list = None if metadata is None else _clean_metadata_column(metadata, id_list)
    sparse_list = (
        None
        if sparse is None
        else [sparse_pair(item, position, id_list[position]) for position, item in enumerate(sparse)]
    )
    # Every record's estimated size (see RecordBatch), as one array: this runs for every record.
    sizes = np.asarray(id_sizes, dtype=np.int64) + (_RECORD_OVERHEAD + 4 * dimension)
    if metadata_list is not None:
        sizes += np.asarray(_metadata_sizes(metadata_list), dtype=np.int64)
    missing: list[int] = []
    if sparse_list is not None:
        nnz = [0 if pair is None else len(pair[0]) for pair in sparse_list]
        sizes += _BYTES_PER_SPARSE_ENTRY * np.asarray(nnz, dtype=np.int64)
        if not dimension:
            missing = [position for position, pair in enumerate(sparse_list) if pair is None]
    elif not dimension and rows:
        missing = [0]
    too_big = np.flatnonzero(sizes > max_batch_bytes)
    if missing and (not len(too_big) or missing[0] <= too_big[0]):  # the first problem in input order
        raise record_error(missing[0], id_list[missing[0]], "has neither dense values nor sparse values")
    if len(too_big):
        position = int(too_big[0])
        raise _too_big(position, id_list[position], int(sizes[position]), max_batch_bytes)
    return _slice_matrix(
        dense if dimension else None,
        id_list,
        sparse=sparse_list,
        metadata=metadata_list,
        sizes=sizes,
        limit=limit,
        max_batch_bytes=max_batch_bytes,
    )


def _checked_ids(ids: Sequence[str]) -> tuple[list[str], list[int]]:
    """The ids, checked as :func:`check_id` checks each, and their UTF-8 sizes.

    Plain ``str`` ids within the limits (the usual input) are checked with C-level iteration; otherwise
    each id goes through :func:`check_id`, which names the first bad one.
    """
    id_list = list(ids)
    lengths = list(map(len, id_list)) if set(map(type, id_list)) == {str} else []
    if not lengths or min(lengths) == 0 or max(lengths) > MAX_ID_LENGTH:
        id_list = [check_id(record_id, position) for position, record_id in enumerate(id_list)]
        lengths = list(map(len, id_list))
    if "".join(id_list).isascii():
        return id_list, lengths
    return id_list, [len(record_id.encode("utf-8")) for record_id in id_list]


def _clean_metadata_column(metadata: Sequence[object], ids: list[str]) -> list[dict[str, Any] | None]:
    """Every record's metadata as :func:`clean_metadata` returns it, worked out key by key if possible.

    When every record's metadata is a dict with the same string keys and no None values (one document
    schema, the usual input), the dicts are returned as they are after a check per key over a column of
    values; anything else is cleaned record by record.
    """
    items: list[Any] = list(metadata)
    if items and set(map(type, items)) == {dict}:
        keys = list(items[0])
        if set(map(len, items)) == {len(keys)} and set(map(type, keys)) <= {str}:
            try:
                if not any(any(map(is_, map(itemgetter(key), items), repeat(None))) for key in keys):
                    return items if keys else [None] * len(items)
            except KeyError:  # the records have different keys
                pass
    return [clean_metadata(item, position, ids[position]) for position, item in enumerate(items)]


_dumps_metadata = partial(orjson.dumps, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


def _metadata_sizes(metadata: list[dict[str, Any] | None]) -> npt.NDArray[np.int64]:
    """What :func:`_metadata_bytes` returns for each record, worked out with C-level iteration.

    The JSON text is encoded record by record (``map`` over orjson); keys and list items are counted
    key by key when the records share their keys, else record by record.
    """
    try:
        text = np.fromiter(map(len, map(_dumps_metadata, metadata)), dtype=np.int64, count=len(metadata))
    except orjson.JSONEncodeError:  # rare values (see _metadata_bytes): record by record
        return np.fromiter(map(_metadata_bytes, metadata), dtype=np.int64, count=len(metadata))
    extra = _shared_key_extras(metadata)
    if extra is None:
        extra = np.zeros(len(metadata), dtype=np.int64)
        for position, fields in enumerate(metadata):
            if fields:
                listed = sum(len(value) for value in fields.values() if isinstance(value, list | tuple))
                extra[position] = _BYTES_PER_METADATA_KEY * len(fields) + _BYTES_PER_LIST_ITEM * listed
    text[extra == 0] = 0  # no metadata (None serialises as "null"), or empty
    return text + extra


def _shared_key_extras(metadata: list[dict[str, Any] | None]) -> npt.NDArray[np.int64] | None:
    """Per record the key and list-item bytes of the estimate, when every record has the same keys."""
    if not metadata or set(map(type, metadata)) != {dict}:
        return None
    keys = list(metadata[0])  # type: ignore[arg-type]  # a dict
    if not keys or set(map(len, metadata)) != {len(keys)}:  # type: ignore[arg-type]
        return None
    extra = np.full(len(metadata), _BYTES_PER_METADATA_KEY * len(keys), dtype=np.int64)
    try:
        for key in keys:
            column = list(map(itemgetter(key), metadata))  # type: ignore[arg-type]
            kinds = set(map(type, column))
            if kinds <= {list, tuple}:
                counts = np.fromiter(map(len, column), dtype=np.int64, count=len(column))
                extra += _BYTES_PER_LIST_ITEM * counts
            elif any(issubclass(kind, list | tuple) for kind in kinds):  # lists mixed with other values
                return None
    except KeyError:  # the records have different keys
        return None
    return extra


def _slice_matrix(
    dense: FloatArray | None,
    ids: list[str],
    *,
    sparse: list[SparsePair | None] | None,
    metadata: list[dict[str, Any] | None] | None,
    sizes: npt.NDArray[np.int64],
    limit: int,
    max_batch_bytes: int,
) -> Iterator[RecordBatch]:
    # Running totals find each cut with a binary search: a batch takes records while its estimated
    # bytes stay within the budget (at least one, at most ``limit``), the rule of _iter_batches.
    totals = np.concatenate(([0], np.cumsum(sizes)))
    start = 0
    while start < len(ids):
        fits = int(np.searchsorted(totals, totals[start] + max_batch_bytes, side="right")) - 1
        stop = min(max(fits, start + 1), start + limit, len(ids))
        yield RecordBatch(
            ids=ids[start:stop],
            dense=None if dense is None else dense[start:stop],
            sparse=None if sparse is None else _none_if_all_none(sparse[start:stop]),
            metadata=None if metadata is None else _none_if_all_none(metadata[start:stop]),
            estimated_bytes=int(totals[stop] - totals[start]),
            start=start,
        )
        start = stop


# ------------------------------------------------------------------------------------------ dataframes
def _missing(value: object) -> bool:
    """True for the ways pandas spells a missing cell: None, NaN, pd.NA, NaT."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in {"NAType", "NaTType"}


def records_from_dataframe(df: Any) -> Iterator[object]:
    """Record dicts from a pandas DataFrame, one per row, lazily.

    Columns: ``id`` and ``values`` (either may be replaced by ``sparse_values`` for a sparse index), and
    optionally ``sparse_values`` and ``metadata``. Missing cells (None, NaN) in the optional columns
    mean "absent". pandas itself is not imported: any object with ``columns`` and column indexing works.

    Args:
        df: The DataFrame.

    Returns:
        An iterator of dicts for :func:`iter_batches`.

    Raises:
        RecordError: ``df`` is not a DataFrame, a required column is missing or a column is unknown.
    """
    columns = getattr(df, "columns", None)
    if columns is None:
        raise RecordError(f"Expected a pandas DataFrame, got {type_name(df)}.")
    names = list(columns)
    unknown = [name for name in names if name not in _DATAFRAME_COLUMNS]
    if unknown:
        raise RecordError(
            f"The DataFrame has unknown columns {unknown}; the accepted columns are id, values, "
            "sparse_values and metadata (drop or rename the others)."
        )
    if "id" not in names or ("values" not in names and "sparse_values" not in names):
        raise RecordError(
            f"The DataFrame needs an 'id' column and a 'values' or 'sparse_values' column; it has {names}."
        )
    present = [name for name in _DATAFRAME_COLUMNS if name in names]
    return _dataframe_rows([df[name] for name in present], present)


def _dataframe_rows(columns: list[Any], names: list[str]) -> Iterator[object]:
    for cells in zip(*columns, strict=True):
        yield {
            name: None if name != "id" and _missing(cell) else cell
            for name, cell in zip(names, cells, strict=True)
        }


__all__ = [
    "DEFAULT_MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_ID_LENGTH",
    "NormalizedRecord",
    "RecordBatch",
    "batches_from_matrix",
    "iter_batches",
    "normalize_record",
    "records_from_dataframe",
]

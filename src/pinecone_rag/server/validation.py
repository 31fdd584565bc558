"""Pinecone's operation limits and the checks both transports share.

REST and gRPC decode requests differently, but every record, vector and id passes through these
functions, so a limit is enforced in one place with one message. Messages say what was wrong and where.
"""

from __future__ import annotations

import math
from itertools import repeat
from operator import is_not
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.server.metadata import validate_metadata_batch
from pinecone_rag.server.records import (
    FloatArray,
    IndexSpec,
    SparseVector,
    UpsertBatch,
    canonical_namespace,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

MAX_DIMENSION = 20_000
MAX_UPSERT_RECORDS = 1000
MAX_UPSERT_BYTES = 2 * 1024 * 1024
MAX_ID_LENGTH = 512
MAX_NAMESPACE_LENGTH = 512
MAX_TOP_K = 10_000
MAX_TOP_K_SPARSE_INDEX = 1000
MAX_TOP_K_WITH_DATA = 1000
MAX_IDS_PER_REQUEST = 1000
MAX_SPARSE_NON_ZEROS = 2048
MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100
MAX_FETCH_BY_METADATA_LIMIT = 10_000
MAX_NAMESPACES_PAGE = 1000


def _plain_ascii(text: str) -> bool:
    return text.isascii() and "\x00" not in text


def check_id(value: object, where: str) -> str:
    """A record id: a string of 1-512 ASCII characters without NUL."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{where}: the id must be a string, got {type(value).__name__}.")
    if not value:
        raise InvalidArgumentError(f"{where}: the id must not be empty.")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgumentError(
            f"{where}: the id has {len(value)} characters; the limit is {MAX_ID_LENGTH}."
        )
    if not _plain_ascii(value):
        raise InvalidArgumentError(f"{where}: the id {value[:64]!r} must be ASCII without NUL characters.")
    return value


def _plain_ids(ids: Sequence[object]) -> bool:
    """Whether every id passes :func:`check_id`, checked for all at once (the usual case)."""
    try:
        joined = "".join(ids)  # type: ignore[arg-type]  # a TypeError answers the question
    except TypeError:
        return False
    lengths = [len(record_id) for record_id in ids]  # type: ignore[arg-type]
    return min(lengths) > 0 and max(lengths) <= MAX_ID_LENGTH and _plain_ascii(joined)


def check_ids(values: Sequence[object], what: str) -> list[str]:
    """A list of 1-1000 record ids."""
    if len(values) > MAX_IDS_PER_REQUEST:
        raise InvalidArgumentError(
            f"{what} accepts at most {MAX_IDS_PER_REQUEST} ids per request, got {len(values)}."
        )
    return [check_id(value, f"{what} id #{i}") for i, value in enumerate(values)]


def check_namespace(value: object) -> str:
    """A namespace name (``""`` and ``__default__`` both mean the default namespace)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"The namespace must be a string, got {type(value).__name__}.")
    if len(value) > MAX_NAMESPACE_LENGTH:
        raise InvalidArgumentError(
            f"The namespace name has {len(value)} characters; the limit is {MAX_NAMESPACE_LENGTH}."
        )
    if not _plain_ascii(value):
        raise InvalidArgumentError("The namespace name must be ASCII without NUL characters.")
    return canonical_namespace(value)


def _not_finite_message(where: str, array: FloatArray) -> str:
    bad = int(np.flatnonzero(~np.isfinite(array))[0])
    return f"{where}: value at position {bad} is {array[bad]}; NaN and infinity are not allowed."


def check_dense(values: Any, dimension: int, where: str) -> FloatArray:
    """One dense vector of exactly ``dimension`` finite floats."""
    try:
        with np.errstate(over="ignore"):  # beyond float32's range: infinity, refused below
            array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{where}: values must be a list of numbers.") from exc
    if array.ndim != 1:
        raise InvalidArgumentError(f"{where}: values must be a flat list of numbers.")
    if len(array) != dimension:
        raise InvalidArgumentError(
            f"{where}: vector dimension {len(array)} does not match the dimension of the index {dimension}."
        )
    if not np.isfinite(array).all():
        raise InvalidArgumentError(_not_finite_message(where, array))
    _check_magnitude(array.reshape(1, -1), [where])
    return array


def check_dense_block(
    rows: Sequence[Any] | FloatArray, ids: Sequence[str], dimension: int
) -> tuple[FloatArray, FloatArray | None]:
    """The dense values of an upsert, as one ``(n, dimension)`` float32 block, and its rows' squared norms.

    The squared norms are None when values near float32's limit sent the block through the exact checks.
    """
    block: FloatArray
    if isinstance(rows, np.ndarray) and rows.dtype == np.float32 and rows.shape == (len(ids), dimension):
        block = rows  # the gRPC decoder's matrix: no per-row work, no copy
    else:
        for record_id, row in zip(ids, rows, strict=True):
            if len(row) != dimension:
                raise InvalidArgumentError(
                    f"Vector dimension {len(row)} does not match the dimension of the index {dimension} "
                    f"(record {record_id!r})."
                )
        try:
            with np.errstate(over="ignore"):  # beyond float32's range: infinity, refused as not finite
                block = np.asarray(rows, dtype=np.float32).reshape(len(rows), dimension)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError("Vector values must be lists of numbers.") from exc
    # One pass over the block checks it and gives the norms the freshness layer needs: a NaN or an
    # infinity makes its row's sum NaN or infinite, and the comparison is False for both. (Separate max,
    # min and zero-row passes cost three more reads of 1.5 MB per request, on a write path that is bound
    # by memory traffic.) Sums near float32's limit take the exact check.
    squares = np.einsum("ij,ij->i", block, block)
    if block.size == 0 or float(squares.max()) < _FAST_SQUARED_MAX:
        return block, squares
    return _checked_block(block, ids), None


def _checked_block(block: FloatArray, ids: Sequence[str]) -> FloatArray:
    finite = np.isfinite(block).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InvalidArgumentError(_not_finite_message(f"Record {ids[row]!r}", block[row]))
    _check_magnitude(block, ids)
    return block


# Below this no vector of <= 20,000 dimensions can overflow float32 in a dot product or a squared norm.
_SAFE_ABS = 1e17
# A float32 squared norm below this is well clear of float32's limit (rounding cannot carry it over).
_FAST_SQUARED_MAX = float(np.finfo(np.float32).max) / 2


def _check_magnitude(block: FloatArray, ids: Sequence[str]) -> None:
    """Reject vectors whose squared norm overflows float32 (their scores would be inf or NaN)."""
    if block.size == 0 or float(np.abs(block).max()) < _SAFE_ABS:
        return
    squared = np.einsum("ij,ij->i", block.astype(np.float64), block.astype(np.float64))
    too_big = squared > float(np.finfo(np.float32).max)
    if too_big.any():
        row = int(np.flatnonzero(too_big)[0])
        raise InvalidArgumentError(
            f"Record {ids[row]!r}: values are too large; the vector's squared length overflows float32."
        )


def check_sparse(indices: Any, values: Any, where: str) -> SparseVector:
    """A sparse vector: equal-length uint32 indices (unique) and finite float values."""
    if len(indices) != len(values):
        raise InvalidArgumentError(
            f"{where}: sparse vector has {len(indices)} indices but {len(values)} values; "
            "they must have the same length."
        )
    if len(indices) > MAX_SPARSE_NON_ZEROS:
        raise InvalidArgumentError(
            f"{where}: sparse vector has {len(indices)} non-zero values; the limit is {MAX_SPARSE_NON_ZEROS}."
        )
    try:
        raw_indices = np.asarray(indices, dtype=np.int64)
        with np.errstate(over="ignore"):
            vals = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(f"{where}: sparse indices must be integers and values numbers.") from exc
    if raw_indices.ndim != 1 or vals.ndim != 1:
        raise InvalidArgumentError(f"{where}: sparse indices and values must be flat lists.")
    if len(raw_indices) and (raw_indices.min() < 0 or raw_indices.max() > 0xFFFFFFFF):
        raise InvalidArgumentError(f"{where}: sparse indices must be between 0 and 4294967295.")
    if len(np.unique(raw_indices)) != len(raw_indices):
        raise InvalidArgumentError(f"{where}: sparse indices must be unique.")
    if not np.isfinite(vals).all():
        raise InvalidArgumentError(_not_finite_message(f"{where} sparse values", vals))
    return SparseVector(raw_indices.astype(np.uint32), vals)


def check_upsert(
    spec: IndexSpec,
    ids: list[str],
    dense_rows: Sequence[Any] | FloatArray | None,
    sparse: list[SparseVector | None],
    metadata: Sequence[object],
) -> UpsertBatch:
    """Validate a decoded upsert against the index and Pinecone's limits.

    Args:
        spec: The index's dimension, metric and vector type.
        ids: Record ids (already type-checked by the transport).
        dense_rows: Per-record dense values (or an ``(n, dimension)`` float32 matrix), or None when no
            record has any.
        sparse: Per-record sparse vectors (already checked with :func:`check_sparse`).
        metadata: Per-record raw metadata objects.
    """
    if not ids:
        raise InvalidArgumentError("Upsert requires at least one vector.")
    if len(ids) > MAX_UPSERT_RECORDS:
        raise InvalidArgumentError(
            f"Upsert accepts at most {MAX_UPSERT_RECORDS} vectors per request, got {len(ids)}."
        )
    if not _plain_ids(ids):
        for i, record_id in enumerate(ids):
            check_id(record_id, f"Vector #{i}")
    checked_metadata = validate_metadata_batch(metadata, ids)
    if spec.is_sparse:
        rows = [[]] * len(ids) if dense_rows is None else dense_rows
        for record_id, row, vec in zip(ids, rows, sparse, strict=True):
            if len(row):
                raise InvalidArgumentError(
                    f"Record {record_id!r}: sparse indexes do not accept dense values; "
                    "send sparse values (indices and values) only."
                )
            if vec is None or len(vec.indices) == 0:
                raise InvalidArgumentError(
                    f"Record {record_id!r}: sparse indexes need sparse values with at least one entry."
                )
        return UpsertBatch(ids, None, sparse, checked_metadata)
    assert spec.dimension is not None
    if dense_rows is None:
        raise InvalidArgumentError(
            f"Record {ids[0]!r}: dense indexes need values of dimension {spec.dimension}."
        )
    block, squares = check_dense_block(dense_rows, ids, spec.dimension)
    if spec.metric == "cosine":
        if squares is None:
            zero = np.flatnonzero(~block.any(axis=1))
        else:  # a zero squared norm is a zero row, or one of values so small that their squares vanish
            maybe = np.flatnonzero(squares == 0)
            zero = maybe[~block[maybe].any(axis=1)]
        if len(zero):
            record_id = ids[int(zero[0])]
            raise InvalidArgumentError(
                f"Record {record_id!r}: dense vectors must contain at least one non-zero value "
                "(a zero vector has no cosine similarity)."
            )
    if spec.metric != "dotproduct" and any(map(is_not, sparse, repeat(None))):  # C-level: every record
        raise InvalidArgumentError(
            "Sparse values are supported only by indexes with the dotproduct metric; "
            f"this index uses {spec.metric}."
        )
    return UpsertBatch(ids, block, sparse, checked_metadata, squares)


def check_top_k(spec: IndexSpec, top_k: object, *, include_data: bool) -> int:
    """``top_k`` within 1-10,000 (1,000 for sparse indexes or when values/metadata are returned)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise InvalidArgumentError("topK must be an integer.")
    limit = MAX_TOP_K_SPARSE_INDEX if spec.is_sparse else MAX_TOP_K
    if not 1 <= top_k <= limit:
        raise InvalidArgumentError(f"topK must be between 1 and {limit}, got {top_k}.")
    if include_data and top_k > MAX_TOP_K_WITH_DATA:
        raise InvalidArgumentError(
            f"topK must be at most {MAX_TOP_K_WITH_DATA} when includeValues or includeMetadata is true, "
            f"got {top_k}."
        )
    return top_k


def check_limit(value: object, *, default: int, maximum: int, what: str) -> int:
    """An optional page size within 1..maximum."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{what} must be an integer.")
    if not 1 <= value <= maximum:
        raise InvalidArgumentError(f"{what} must be between 1 and {maximum}, got {value}.")
    return value


def check_finite_number(value: object, what: str) -> float:
    """A finite number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgumentError(f"{what} must be a finite number.")
    return float(value)

"""Checks of one upsert record's fields, and the messages that name what is wrong.

Every problem is a :class:`~pinecone_rag.errors.RecordError` naming the record's 0-based position in the
caller's input (and its id when known), e.g. ``Record #3 ('doc-1'): values[7] is nan (NaN and infinity
are not allowed).`` Used by :mod:`pinecone_rag.client._records`, which turns records into batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.errors import RecordError
from pinecone_rag.models import SparseValues

if TYPE_CHECKING:
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]
    IndexArray = npt.NDArray[np.uint32]
    SparsePair = tuple[IndexArray, FloatArray]

MAX_ID_LENGTH = 512
REAL_KINDS = "fiu"
_F32_MAX = float(np.finfo(np.float32).max)
_UINT32_LIMIT = 2**32
_NUMBER_TYPES = (int, float, np.integer, np.floating)
_SPARSE_KEYS = frozenset({"indices", "values"})
_SHOWN_ID_CHARS = 60


# --------------------------------------------------------------------------------------------- messages
def record_label(position: int, record_id: object) -> str:
    if isinstance(record_id, str) and record_id:
        shown = record_id if len(record_id) <= _SHOWN_ID_CHARS else record_id[: _SHOWN_ID_CHARS - 3] + "..."
        return f"Record #{position} ({shown!r})"
    return f"Record #{position}"


def record_error(position: int, record_id: object, problem: str) -> RecordError:
    return RecordError(f"{record_label(position, record_id)}: {problem}.")


def type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


def describe(value: object) -> str:
    if value is None:
        return "None"
    text = repr(value)
    if len(text) > 40:
        return f"a {type_name(value)}"
    return f"{text} ({type_name(value)})"


def not_numbers(field: str, source: object, array: npt.NDArray[Any]) -> str:
    """Why ``source`` (converted to ``array``) is not a sequence of real numbers."""
    problem = f"{field} must be a flat sequence of numbers"
    if isinstance(source, np.ndarray):
        return f"{problem}, got an array of dtype {source.dtype}"
    if not isinstance(source, Sequence):
        return f"{problem}, got {type_name(source)}"
    for i, item in enumerate(source):
        if isinstance(item, bool | np.bool_) or not isinstance(item, _NUMBER_TYPES):
            return f"{problem}; {field}[{i}] is {describe(item)}"
    return f"{problem}, got elements of type {array.dtype}"


def not_finite(field: str, source: Any, index: int) -> str:
    """Why element ``index`` of ``source`` is not a finite float32."""
    item = source[index]
    try:
        number = float(item)
    except (TypeError, ValueError):
        return f"{field}[{index}] is {describe(item)}, not a number"
    if math.isfinite(number):
        return f"{field}[{index}] = {number!r} is outside the float32 range"
    return f"{field}[{index}] is {number} (NaN and infinity are not allowed)"


# ------------------------------------------------------------------------------------------ validation
def check_id(value: object, position: int) -> str:
    if not isinstance(value, str):
        raise record_error(position, None, f"id must be a non-empty string, got {type_name(value)}")
    if not value:
        raise record_error(position, None, "id must be a non-empty string, got ''")
    if len(value) > MAX_ID_LENGTH:
        raise record_error(
            position, value, f"id is {len(value)} characters long; the limit is {MAX_ID_LENGTH}"
        )
    return value


def real_vector(source: object, field: str, position: int, record_id: str) -> npt.NDArray[Any]:
    """``source`` as a 1-D array of a real dtype (not yet float32); may be empty."""
    if isinstance(source, str | bytes | bytearray):
        got = type_name(source)
        raise record_error(position, record_id, f"{field} must be a flat sequence of numbers, got {got}")
    try:
        array = np.asarray(source)
    except (TypeError, ValueError):
        raise record_error(
            position, record_id, not_numbers(field, source, np.empty(0, dtype=object))
        ) from None
    if array.ndim != 1:
        if array.ndim == 0:
            got = type_name(source)
        else:
            what = "an array" if isinstance(source, np.ndarray) else "nested sequences"
            got = f"{what} of shape {array.shape}"
        raise record_error(position, record_id, f"{field} must be a flat sequence of numbers, got {got}")
    if array.dtype.kind not in REAL_KINDS and array.size:
        raise record_error(position, record_id, not_numbers(field, source, array))
    return array


def dense_source(values: object, position: int, record_id: str) -> npt.NDArray[Any] | None:
    if values is None:
        return None
    array = real_vector(values, "values", position, record_id)
    return array if array.size else None


def as_float32(array: npt.NDArray[Any]) -> FloatArray:
    if array.dtype == np.float32:
        return array
    with np.errstate(over="ignore"):  # overflow becomes inf, which the caller reports
        return array.astype(np.float32)


def dense_float32(source: npt.NDArray[Any], position: int, record_id: str) -> FloatArray:
    values = np.ascontiguousarray(as_float32(source))
    finite = np.isfinite(values)
    if not finite.all():
        raise record_error(position, record_id, not_finite("values", source, int(np.argmin(finite))))
    return values


def sparse_pair(sparse: object, position: int, record_id: str) -> SparsePair | None:
    if sparse is None:
        return None
    if isinstance(sparse, SparseValues):
        raw_indices: object = sparse.indices
        raw_values: object = sparse.values
    elif isinstance(sparse, Mapping):
        keys = set(sparse)
        if keys != _SPARSE_KEYS:
            unknown = sorted(map(str, keys - _SPARSE_KEYS))
            problem = f"unknown keys {unknown}" if unknown else f"missing {sorted(_SPARSE_KEYS - keys)}"
            raise record_error(
                position, record_id, f"sparse_values must have 'indices' and 'values' ({problem})"
            )
        raw_indices, raw_values = sparse["indices"], sparse["values"]
    else:
        raise record_error(
            position,
            record_id,
            "sparse_values must be a SparseValues or a dict with 'indices' and 'values', "
            f"got {type_name(sparse)}",
        )
    indices = sparse_index_array(raw_indices, position, record_id)
    values = real_vector(raw_values, "sparse_values.values", position, record_id)
    if len(indices) != len(values):
        raise record_error(
            position, record_id, f"sparse_values has {len(indices)} indices but {len(values)} values"
        )
    if not len(values):
        return None
    return indices, sparse_value_array(values, position, record_id)


def sparse_index_array(source: object, position: int, record_id: str) -> IndexArray:
    field = "sparse_values.indices"
    array = real_vector(source, field, position, record_id)
    if not array.size:
        return np.empty(0, dtype=np.uint32)
    if array.dtype.kind not in "iu":
        raise record_error(position, record_id, f"{field} must be integers, got {array.dtype}")
    if array.dtype.kind == "i" and array.min() < 0:
        bad = int(np.argmax(array < 0))
        raise record_error(position, record_id, f"{field}[{bad}] = {int(array[bad])} is negative")
    if array.dtype.itemsize > 4 and array.max() >= _UINT32_LIMIT:
        bad = int(np.argmax(array >= _UINT32_LIMIT))
        problem = f"{field}[{bad}] = {int(array[bad])} does not fit in 32 bits (max {_UINT32_LIMIT - 1})"
        raise record_error(position, record_id, problem)
    return array.astype(np.uint32, copy=False)


def sparse_value_array(array: npt.NDArray[Any], position: int, record_id: str) -> FloatArray:
    if array.dtype.kind == "f":
        # One comparison rejects NaN, infinity and values float32 cannot hold, so the cast cannot overflow.
        valid = np.abs(array) <= _F32_MAX
        if not valid.all():
            problem = not_finite("sparse_values.values", array, int(np.argmin(valid)))
            raise record_error(position, record_id, problem)
    return array.astype(np.float32, copy=False)


def clean_metadata(metadata: object, position: int, record_id: str) -> dict[str, Any] | None:
    """The metadata without None-valued keys (copied only when something is dropped), or None if empty."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise record_error(position, record_id, f"metadata must be a dict, got {type_name(metadata)}")
    has_none = False
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise record_error(position, record_id, f"metadata keys must be strings, got {describe(key)}")
        if value is None:
            has_none = True
    if isinstance(metadata, dict) and not has_none:
        return metadata or None
    return {key: value for key, value in metadata.items() if value is not None} or None

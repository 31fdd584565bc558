"""Validation of record metadata, as Pinecone accepts it on upsert and update.

Metadata is a flat JSON object. Values are strings, numbers (stored as floats), booleans, or lists of
strings; nulls, nested objects, lists of anything but strings and non-finite numbers are rejected. The
JSON encoding of one record's metadata may take at most :data:`MAX_METADATA_BYTES` bytes.
"""

from __future__ import annotations

import math
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

import orjson

from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.wire.decode_upsert import NormalMetadata

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pinecone_rag.server.records import Metadata, MetadataValue

MAX_METADATA_BYTES: Final = 40960
"""The largest UTF-8 JSON encoding of one record's metadata, in bytes."""

_ALLOWED: Final = "metadata values must be strings, numbers, booleans or lists of strings"
_MAX_SHOWN_CHARS: Final = 64


def validate_metadata(raw: object, *, record_id: str, field: str = "metadata") -> Metadata | None:
    """Validate and normalise one record's metadata.

    Integers become floats, booleans stay booleans, lists are copied; the input is not modified.

    Args:
        raw: The metadata as decoded from JSON or from a protobuf ``Struct``.
        record_id: The record's id, for error messages.
        field: What the request calls the metadata (e.g. ``"metadata"`` or ``"setMetadata"``), for error
            messages.

    Returns:
        A new metadata dict, or None when ``raw`` is None or empty.

    Raises:
        InvalidArgumentError: The metadata is not a flat object of supported values, or is too large.
    """
    if raw is None:
        return None
    prefix = f"Invalid {field} for record '{record_id}': "
    if not isinstance(raw, dict):
        raise InvalidArgumentError(
            f"{prefix}expected an object mapping field names to values, got {_kind(raw)}."
        )
    if not raw:
        return None
    metadata: Metadata = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise InvalidArgumentError(f"{prefix}field names must be strings, got {_kind(key)}.")
        if not key:
            raise InvalidArgumentError(f"{prefix}field names must not be empty.")
        if key[0] == "$":
            raise InvalidArgumentError(
                f"{prefix}field {_show(key)} starts with '$', which is reserved for filter operators."
            )
        metadata[key] = _value(value, prefix, key)
    check_metadata_size(metadata, record_id=record_id, field=field)
    return metadata


def validate_metadata_batch(
    raws: Sequence[object], record_ids: Sequence[str], *, field: str = "metadata"
) -> list[Metadata | None]:
    """Validate the metadata of the records of one request, as :func:`validate_metadata` does each.

    Metadata that is already in normal form (string keys; string, float, boolean or list-of-string
    values; finite numbers), the form the protobuf decoder produces, is checked in one pass and returned
    as it is, without a copy: the transports hand over freshly decoded objects that nothing else holds.
    A :class:`~pinecone_rag.wire.decode_upsert.NormalMetadata` list, which the decoder returns when it
    found every entry in that form, is not checked again.
    Anything else, including every invalid record, goes through :func:`validate_metadata`, so results
    and error messages are exactly its own.

    Args:
        raws: Per record the metadata as decoded from JSON or from a protobuf ``Struct``.
        record_ids: The records' ids, for error messages.
        field: What the request calls the metadata, for error messages.

    Returns:
        Per record the metadata, or None when it is None or empty.

    Raises:
        InvalidArgumentError: A record's metadata is invalid (the first such record in order).
    """
    if type(raws) is NormalMetadata:  # the protobuf decoder already checked all of it (see there)
        return [raw or None for raw in raws] if {} in raws else list(raws)
    if _all_normal(raws) and _fits(raws):  # if all of them fit in the limit, each one does
        return list(raws)  # type: ignore[arg-type]  # dicts of metadata values
    normal = [raw is None or (type(raw) is dict and _is_normal(raw)) for raw in raws]
    sized = all(normal) and _fits(raws)
    out: list[Metadata | None] = []
    append = out.append
    for record_id, raw, is_normal in zip(record_ids, raws, normal, strict=True):
        if raw is None:
            append(None)
        elif is_normal and (sized or _fits(raw)):
            append(raw or None)  # type: ignore[arg-type]  # a dict of metadata values
        else:
            append(validate_metadata(raw, record_id=record_id, field=field))
    return out


_NORMAL_KINDS: Final = frozenset({str, bool, float, list})


def _all_normal(raws: Sequence[object]) -> bool:
    """Whether every record's metadata is a non-empty dict in normal form, all with the same keys.

    A request's records usually share their keys (one document schema), so the checks run key by key
    over columns of values, iterating in C; False sends the request through the per-record checks.
    """
    if not raws or set(map(type, raws)) != {dict}:
        return False
    keys = list(raws[0])  # type: ignore[call-overload]  # a dict
    if not keys or set(map(len, raws)) != {len(keys)}:  # type: ignore[arg-type]
        return False
    for key in keys:
        if type(key) is not str or not key or key[0] == "$":
            return False
        try:
            column = list(map(itemgetter(key), raws))  # type: ignore[arg-type]
        except KeyError:  # the records have different keys
            return False
        kinds = set(map(type, column))
        if not kinds <= _NORMAL_KINDS or (len(kinds) > 1 and list in kinds):
            return False
        if float in kinds:
            numbers = column if kinds == {float} else [value for value in column if type(value) is float]
            try:
                if not math.isfinite(math.fsum(numbers)):  # NaN and infinity make the sum so
                    return False
            except OverflowError:  # finite numbers whose sum overflows: check them one by one
                if not all(map(math.isfinite, numbers)):
                    return False
        if list in kinds and set(map(type, chain.from_iterable(column))) - {str}:
            return False
    return True


def _fits(value: object) -> bool:
    """Whether the JSON encoding of ``value`` fits in :data:`MAX_METADATA_BYTES` (False if it has none)."""
    try:
        return len(orjson.dumps(value)) <= MAX_METADATA_BYTES
    except orjson.JSONEncodeError:  # an unpaired surrogate, among others
        return False


def _is_normal(raw: dict[Any, Any]) -> bool:
    """Whether ``raw`` is metadata in normal form (its size aside), which validation would return as is."""
    for key, value in raw.items():
        if type(key) is not str or not key or key[0] == "$":
            return False
        kind = type(value)
        if kind is str or kind is bool:
            continue
        if kind is float:
            if value - value != 0.0:  # NaN or infinity
                return False
            continue
        if kind is not list:
            return False
        for item in value:
            if type(item) is not str:
                return False
    return True


def check_metadata_size(metadata: Metadata, *, record_id: str, field: str = "metadata") -> None:
    """Check that metadata's JSON encoding fits within :data:`MAX_METADATA_BYTES`.

    :func:`validate_metadata` calls this; call it again after :func:`merge_metadata`, since a merge can
    grow the metadata past the limit.

    Args:
        metadata: Validated metadata.
        record_id: The record's id, for error messages.
        field: What the request calls the metadata, for error messages.

    Raises:
        InvalidArgumentError: The metadata is too large, or holds a string that is not valid UTF-8.
    """
    try:
        size = len(orjson.dumps(metadata))
    except orjson.JSONEncodeError:
        raise InvalidArgumentError(
            f"Invalid {field} for record '{record_id}': {_find_bad_unicode(metadata)} is not valid UTF-8 "
            "(it contains an unpaired surrogate)."
        ) from None
    if size > MAX_METADATA_BYTES:
        raise InvalidArgumentError(
            f"Metadata size is {size} bytes, which exceeds the limit of {MAX_METADATA_BYTES} bytes "
            f"per vector (record '{record_id}')."
        )


def merge_metadata(old: Metadata | None, patch: Metadata) -> Metadata | None:
    """Apply an update's ``setMetadata`` to stored metadata.

    Keys in ``patch`` are added or overwritten; other keys of ``old`` are kept. Neither input is modified,
    and the result shares no lists with them.

    Args:
        old: The stored metadata, or None.
        patch: The validated fields to set.

    Returns:
        The merged metadata, or None when it is empty.
    """
    merged: Metadata = {}
    for source in (old or {}, patch):
        for key, value in source.items():
            merged[key] = list(value) if isinstance(value, list) else value
    return merged or None


def _value(value: object, prefix: str, key: str) -> MetadataValue:
    """Normalise one metadata value, or raise with a message naming the field."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return _finite(value, prefix, key)
    shown = _show(key)
    if value is None:
        raise InvalidArgumentError(f"{prefix}field {shown} is null; {_ALLOWED}.")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise InvalidArgumentError(
                    f"{prefix}field {shown} is a list containing {_kind(item)} at index {index}; "
                    f"lists may only contain strings."
                )
        return list(value)
    if isinstance(value, dict):
        raise InvalidArgumentError(
            f"{prefix}field {shown} is an object; nested objects are not supported; {_ALLOWED}."
        )
    raise InvalidArgumentError(f"{prefix}field {shown} is {_kind(value)}; {_ALLOWED}.")


def _finite(value: float, prefix: str, key: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InvalidArgumentError(
            f"{prefix}field {_show(key)} is {_show_number(value)}; metadata numbers must be finite "
            "and fit in a 64-bit float."
        )
    return number


def _find_bad_unicode(metadata: Metadata) -> str:
    """Name the first key or string value that cannot be encoded as UTF-8."""

    def bad(text: str) -> bool:
        try:
            text.encode()
        except UnicodeEncodeError:
            return True
        return False

    for key, value in metadata.items():
        if bad(key):
            return "a field name"
        if isinstance(value, str) and bad(value):
            return f"the value of field {_show(key)}"
        if isinstance(value, list) and any(bad(item) for item in value):
            return f"a string in the list of field {_show(key)}"
    return "a string"


def _kind(value: object) -> str:
    """The JSON name of a value's type, with an article, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a value of type {type(value).__name__}"


def _show(key: str) -> str:
    """A field name in quotes, shortened so one long key cannot flood the message."""
    if len(key) > _MAX_SHOWN_CHARS:
        key = key[: _MAX_SHOWN_CHARS - 3] + "..."
    # Keep surrogates from making the message itself unencodable.
    return "'" + key.encode("utf-8", "backslashreplace").decode("utf-8") + "'"


def _show_number(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    # repr() of an int with more than ~4300 digits raises ValueError.
    return "an integer too large for a 64-bit float"


__all__ = [
    "MAX_METADATA_BYTES",
    "check_metadata_size",
    "merge_metadata",
    "validate_metadata",
    "validate_metadata_batch",
]

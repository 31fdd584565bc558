"""Conversions between LangChain ``Document`` objects and Pinecone records.

The page content travels in the metadata under ``text_key``; everything here copies, so the caller's
documents and metadata dicts are never modified (langchain-ai/langchain#3800).
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from pinecone_rag import Vector

_ALLOWED = "metadata values must be strings, finite numbers, booleans or lists of strings"


def new_id() -> str:
    """A fresh random record id."""
    return str(uuid.uuid4())


def fill_ids(ids: Sequence[str | None] | None, count: int) -> list[str]:
    """``ids`` with every missing (None or empty) entry replaced by a fresh id.

    ``VectorStore.add_documents`` passes ``[doc.id for doc in documents]`` when any document has an id, so
    the list can mix ids and None.

    Raises:
        ValueError: ``ids`` does not have one entry per text.
    """
    if ids is None:
        return [new_id() for _ in range(count)]
    if len(ids) != count:
        raise ValueError(f"Got {len(ids)} ids for {count} texts; pass one id (or None) per text.")
    return [str(record_id) if record_id else new_id() for record_id in ids]


def _check_value(key: str, value: object) -> None:
    if isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if math.isfinite(value):
            return
        raise ValueError(f"Metadata field {key!r} is {value}; {_ALLOWED}.")
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return
    raise ValueError(f"Metadata field {key!r} has type {type(value).__name__}; {_ALLOWED}.")


def record_metadata(metadata: Mapping[str, Any] | None, text: str, text_key: str) -> dict[str, Any]:
    """A new metadata dict for Pinecone: the document's metadata without None values, plus the text.

    Raises:
        ValueError: a value Pinecone cannot store (nested dicts, lists of numbers ...) or a metadata key
            equal to ``text_key`` (it would be overwritten by the page content).
    """
    result: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        if value is None:
            continue  # Pinecone has no null; dropping keeps the rest of the record writable.
        if key == text_key:
            raise ValueError(
                f"Metadata key {key!r} is the text_key that holds the page content; rename the field "
                "or choose another text_key."
            )
        _check_value(key, value)
        result[key] = list(value) if isinstance(value, tuple) else value
    result[text_key] = text
    return result


def to_document(record: Vector, text_key: str) -> Document:
    """A ``Document`` with ``id``, page content from ``text_key`` and the remaining metadata.

    Records written by other tools may lack ``text_key``; they come back with empty page content instead
    of being skipped (langchain-ai/langchain#3460).
    """
    metadata = dict(record.metadata or {})
    text = metadata.pop(text_key, "")
    return Document(id=record.id, page_content=str(text), metadata=metadata)


def split_documents(
    documents: Iterable[Document],
) -> tuple[list[str], list[dict[str, Any]], list[str | None]]:
    """Texts, metadata dicts and ids of ``documents`` (ids None where a document has none)."""
    texts: list[str] = []
    metadatas: list[dict[str, Any]] = []
    ids: list[str | None] = []
    for document in documents:
        texts.append(document.page_content)
        metadatas.append(document.metadata)
        ids.append(document.id)
    return texts, metadatas, ids

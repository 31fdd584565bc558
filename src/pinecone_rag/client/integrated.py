"""Integrated indexes: ``create_index_for_model`` and the records API (upsert text, search by text).

Everything here is I/O-free: request builders, operations for the REST data plane (the records API has
no gRPC form) and parsers. :class:`~pinecone_rag.client.index.Index`, its async twin and the clients send
them.

Example:
    >>> call = create_index_for_model_call("docs", "aws", "us-east-1", {"model": "all-minilm-l6-v2",
    ...     "field_map": {"text": "chunk_text"}})
    >>> call.path, call.json["embed"]["model"]
    ('/indexes/create-for-model', 'all-minilm-l6-v2')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from pinecone_rag.client._http import HttpCall
from pinecone_rag.client._ops import DataOp, RestCall
from pinecone_rag.client.control import check_index_name, parse_grpc_port
from pinecone_rag.errors import ApiError, ConfigurationError
from pinecone_rag.models import IntegratedIndexModel, SearchHit, SearchRecordsResponse

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pinecone_rag.models import DeletionProtection

__all__ = [
    "MAX_RECORDS_PER_REQUEST",
    "SearchRecordsOp",
    "UpsertRecordsOp",
    "create_index_for_model_call",
    "parse_integrated_index_model",
    "parse_search_response",
    "record_batches",
]

MAX_RECORDS_PER_REQUEST = 96
"""Records per integrated upsert request, as Pinecone documents it."""
NDJSON = "application/x-ndjson"


def create_index_for_model_call(
    name: str,
    cloud: str,
    region: str,
    embed: Mapping[str, Any],
    *,
    tags: Mapping[str, str] | None = None,
    deletion_protection: DeletionProtection = "disabled",
) -> HttpCall:
    """``POST /indexes/create-for-model``.

    Raises:
        ConfigurationError: a bad name, or ``embed`` without ``model`` and ``field_map``.
    """
    if not hasattr(embed, "get") or not embed.get("model") or not embed.get("field_map"):
        raise ConfigurationError(
            "embed needs a model and a field_map, e.g. {'model': 'all-minilm-l6-v2', "
            "'field_map': {'text': 'chunk_text'}}."
        )
    if deletion_protection not in ("enabled", "disabled"):
        raise ConfigurationError(
            f"deletion_protection must be 'enabled' or 'disabled', got {deletion_protection!r}."
        )
    body: dict[str, Any] = {
        "name": check_index_name(name),
        "cloud": cloud,
        "region": region,
        "embed": {key: value for key, value in embed.items() if value is not None},
        "deletion_protection": deletion_protection,
    }
    if tags:
        body["tags"] = dict(tags)
    return HttpCall("POST", "/indexes/create-for-model", json=body)


def parse_integrated_index_model(body: Any, headers: Mapping[str, str] | None = None) -> IntegratedIndexModel:
    """An :class:`IntegratedIndexModel` from an IndexModel JSON body (with the engine's gRPC port, if sent).

    Raises:
        ApiError: the body is not an IndexModel.
    """
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("name"), str)
        or not isinstance(body.get("host"), str)
    ):
        raise ApiError("Expected an IndexModel object with a name and a host.")
    return IntegratedIndexModel.from_json(body, grpc_port=parse_grpc_port(headers or {}))


def _records_path(namespace: str, action: str) -> str:
    if not isinstance(namespace, str):
        raise ConfigurationError(f"namespace must be a string, got {type(namespace).__name__}.")
    # Pinecone names the default namespace "__default__" in paths; "" would leave an empty segment.
    return f"/records/namespaces/{quote(namespace or '__default__', safe='')}/{action}"


def record_batches(records: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """``records`` checked (each needs an ``_id`` or ``id``) and split into requests of 96.

    Raises:
        ConfigurationError: no records, or a record without an id.

    Example:
        >>> [len(batch) for batch in record_batches([{"_id": str(i), "text": "x"} for i in range(100)])]
        [96, 4]
    """
    checked: list[dict[str, Any]] = []
    for position, record in enumerate(records):
        if not hasattr(record, "items") or not (record.get("_id") or record.get("id")):
            raise ConfigurationError(f"Record {position} needs an '_id' or 'id'.")
        checked.append(dict(record))
    if not checked:
        raise ConfigurationError("upsert_records needs at least one record.")
    return [
        checked[start : start + MAX_RECORDS_PER_REQUEST]
        for start in range(0, len(checked), MAX_RECORDS_PER_REQUEST)
    ]


class _RestOnly:
    """The records API is REST only: these operations have no gRPC encoding."""

    def grpc_payload(self) -> bytes:
        """Never: there is no gRPC form."""
        raise ConfigurationError("The records API is REST only.")

    def parse_grpc(self, data: bytes) -> Any:  # noqa: ARG002 - the DataOp interface
        """Never: there is no gRPC form."""
        raise ConfigurationError("The records API is REST only.")


@dataclass(frozen=True)
class UpsertRecordsOp(_RestOnly, DataOp[None]):
    """Upsert one batch of records (NDJSON) into an integrated index; the index embeds them."""

    namespace: str
    records: list[dict[str, Any]]
    method = "UpsertRecords"
    idempotent = True

    def rest_call(self) -> RestCall:
        """One NDJSON line per record."""
        body = b"\n".join(orjson.dumps(record) for record in self.records) + b"\n"
        return RestCall("POST", _records_path(self.namespace, "upsert"), body=body, content_type=NDJSON)

    def parse_rest(self, body: Any) -> None:  # noqa: ARG002 - the answer is an empty 201
        """Nothing: the answer is an empty 201."""
        return


@dataclass(frozen=True)
class SearchRecordsOp(_RestOnly, DataOp[SearchRecordsResponse]):
    """Search an integrated index by text (or vector or id), optionally reranking the hits."""

    namespace: str
    query: Mapping[str, Any]
    fields: Sequence[str] | None = None
    rerank: Mapping[str, Any] | None = None
    method = "SearchRecords"

    def rest_call(self) -> RestCall:
        """The search request (``top_k`` is required)."""
        if not hasattr(self.query, "get") or self.query.get("top_k") is None:
            raise ConfigurationError("query needs top_k, e.g. {'top_k': 5, 'inputs': {'text': '...'}}.")
        body: dict[str, Any] = {"query": dict(self.query)}
        if self.fields is not None:
            body["fields"] = list(self.fields)
        if self.rerank is not None:
            body["rerank"] = dict(self.rerank)
        return RestCall("POST", _records_path(self.namespace, "search"), body=orjson.dumps(body))

    def parse_rest(self, body: Any) -> SearchRecordsResponse:
        """The hits, best first."""
        return parse_search_response(body)


def parse_search_response(body: Any) -> SearchRecordsResponse:
    """A :class:`SearchRecordsResponse` from a records search answer.

    Example:
        >>> hit = {"_id": "a", "_score": 0.5, "fields": {}}
        >>> body = {"result": {"hits": [hit]}, "usage": {"read_units": 1}}
        >>> parse_search_response(body).hits[0]
        SearchHit(id='a', score=0.5, fields={})
    """
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict) or not isinstance(result.get("hits"), list):
        raise ApiError("Expected {'result': {'hits': [...]}} from a records search.")
    hits = [
        SearchHit(id=str(hit["_id"]), score=float(hit["_score"]), fields=dict(hit.get("fields") or {}))
        for hit in result["hits"]
    ]
    usage = body.get("usage") or {}

    def count(key: str) -> int | None:
        value = usage.get(key)
        return None if value is None else int(value)

    return SearchRecordsResponse(
        hits=hits,
        read_units=count("read_units"),
        embed_total_tokens=count("embed_total_tokens"),
        rerank_units=count("rerank_units"),
    )

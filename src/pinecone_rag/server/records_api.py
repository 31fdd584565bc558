"""The records API of integrated indexes: upsert text as NDJSON, search by text, optionally rerank.

An index created with ``POST /indexes/create-for-model`` stores its embedding config (model, field map,
read and write parameters). Upsert embeds each record's mapped text field with the write parameters and
stores every other field, the text included, as metadata; search embeds the query text with the read
parameters, queries the index, and can rerank the hits with a rerank model. Shapes are Pinecone's
(snake_case, ``_id``/``_score`` hits); the engine's own validation applies to ids, metadata and limits.

Example:
    ``POST /records/namespaces/docs/upsert`` with ``{"_id": "a", "chunk_text": "..."}`` per line, then
    ``POST /records/namespaces/docs/search`` with ``{"query": {"top_k": 3, "inputs": {"text": "..."}}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from pinecone_rag.errors import InvalidArgumentError, UnimplementedError
from pinecone_rag.server.data_service import DataService, QueryInput, UpsertInput
from pinecone_rag.server.inference_api import parse_json_object, rank_documents
from pinecone_rag.server.json_input import as_list, float32_vector

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request

    from pinecone_rag.server.embedding_models import EmbedResult, ModelRegistry
    from pinecone_rag.server.records import ScoredRecord

    Handler = Callable[["Request", str], Awaitable[Response]]
    """A data-plane handler: (request, API version) -> response."""

__all__ = ["MAX_RECORDS_PER_UPSERT", "parse_ndjson", "records_routes"]

MAX_RECORDS_PER_UPSERT = 96
"""Records per integrated upsert request, as Pinecone documents it."""
_ID_KEYS = ("_id", "id")
_ALL_FIELDS = "*"


def parse_ndjson(raw: bytes) -> list[dict[str, Any]]:
    r"""The JSON objects of an NDJSON body, one per non-blank line.

    Example:
        >>> parse_ndjson(b'{"_id": "a"}\n\n{"_id": "b"}\n')
        [{'_id': 'a'}, {'_id': 'b'}]
    """
    records = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgumentError(f"Line {number} of the NDJSON body is not valid JSON: {exc}") from exc
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"Line {number} of the NDJSON body must be a JSON object.")
        records.append(item)
    return records


def _require_embed(embed: dict[str, Any] | None) -> dict[str, Any]:
    if embed is None:
        raise InvalidArgumentError(
            "This index has no integrated embedding: create it with create_index_for_model "
            "(POST /indexes/create-for-model) to upsert and search text."
        )
    return embed


def _vector_parts(result: EmbedResult, row: int) -> tuple[Any, tuple[Any, Any] | None]:
    """Dense values and a sparse (indices, values) pair of one embedding, as DataService takes them."""
    if result.dense is not None:
        return result.dense[row], None
    sparse = result.sparse[row]
    return None, (sparse.indices, sparse.values)


def _upsert(
    service: DataService, models: ModelRegistry, embed: dict[str, Any], namespace: str, raw: bytes
) -> None:
    records = parse_ndjson(raw)
    if not records:
        raise InvalidArgumentError("The request has no records: send one JSON object per line.")
    if len(records) > MAX_RECORDS_PER_UPSERT:
        raise InvalidArgumentError(
            f"Too many records ({len(records)}) in one request; the limit is {MAX_RECORDS_PER_UPSERT}."
        )
    text_field = embed["field_map"]["text"]
    ids: list[str] = []
    texts: list[str] = []
    metadata: list[dict[str, Any]] = []
    for position, record in enumerate(records):
        record_id = next((record[key] for key in _ID_KEYS if key in record), None)
        if not isinstance(record_id, str):
            raise InvalidArgumentError(f"Record {position} needs a string '_id' (or 'id').")
        text = record.get(text_field)
        if not isinstance(text, str):
            raise InvalidArgumentError(
                f"Record {record_id!r} needs a string field {text_field!r}: the index embeds it "
                f"(field_map text -> {text_field})."
            )
        ids.append(record_id)
        texts.append(text)
        metadata.append({key: value for key, value in record.items() if key not in _ID_KEYS})
    result = models.embed(embed["model"], texts, embed.get("write_parameters"))
    parts = [_vector_parts(result, row) for row in range(len(ids))]
    dense = [values for values, _ in parts] if result.dense is not None else None
    service.upsert(
        UpsertInput(
            namespace=namespace,
            ids=ids,
            dense=dense,
            sparse=[pair for _, pair in parts],
            metadata=metadata,
            request_bytes=len(raw),
        )
    )


def _query_vector(body: dict[str, Any]) -> tuple[Any, tuple[Any, Any] | None]:
    vector = body.get("vector")
    if vector is None:
        return None, None
    if not isinstance(vector, dict):
        raise InvalidArgumentError("query.vector must be an object with values and/or sparse values.")
    dense = float32_vector(vector.get("values"), "query.vector.values")
    indices = vector.get("sparse_indices")
    if indices is None:
        return dense, None
    return dense, (
        as_list(indices, "query.vector.sparse_indices"),
        as_list(vector.get("sparse_values"), "query.vector.sparse_values"),
    )


def _selected(metadata: dict[str, Any] | None, fields: list[str] | None) -> dict[str, Any]:
    stored = metadata or {}
    if fields is None or _ALL_FIELDS in fields:
        return dict(stored)
    return {name: stored[name] for name in fields if name in stored}


def _fields(raw: object) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise InvalidArgumentError("fields must be a list of field names (or ['*'] for all).")
    return raw


def _search(
    service: DataService,
    models: ModelRegistry,
    embed: dict[str, Any] | None,
    namespace: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    query = body.get("query")
    if not isinstance(query, dict):
        raise InvalidArgumentError("The search needs a query object with top_k.")
    if "top_k" not in query:
        raise InvalidArgumentError("query.top_k is required.")
    if query.get("match_terms") is not None:
        raise UnimplementedError("match_terms is not supported by the local engine.")
    fields = _fields(body.get("fields"))
    dense, sparse = _query_vector(query)
    inputs = query.get("inputs")
    text: str | None = None
    usage: dict[str, Any] = {}
    if inputs is not None:
        text = inputs.get("text") if isinstance(inputs, dict) else None
        if not isinstance(text, str):
            raise InvalidArgumentError("query.inputs must be an object with a string 'text'.")
        config = _require_embed(embed)
        result = models.embed(config["model"], [text], config.get("read_parameters"))
        dense, sparse = _vector_parts(result, 0)
        usage["embed_total_tokens"] = result.total_tokens
    record_id = query.get("id")
    if dense is None and sparse is None and record_id is None:
        raise InvalidArgumentError("The query needs inputs, a vector, or an id.")
    _, matches, _ = service.query(
        QueryInput(
            namespace=namespace,
            top_k=query["top_k"],
            vector=dense,
            sparse=sparse,
            record_id=record_id if isinstance(record_id, str) else None,
            filter=query.get("filter"),
            include_values=False,
            include_metadata=True,
        )
    )
    hits = [(match, match.score) for match in matches]
    rerank = body.get("rerank")
    if rerank is not None:
        hits = _reranked(models, rerank, text, matches, query["top_k"])
        usage["rerank_units"] = 1
    return {
        "result": {
            "hits": [
                {"_id": match.record.id, "_score": score, "fields": _selected(match.record.metadata, fields)}
                for match, score in hits
            ]
        },
        "usage": {"read_units": max(1, len(matches) // 100), **usage},
    }


def _reranked(
    models: ModelRegistry, rerank: object, text: str | None, matches: list[ScoredRecord], top_k: int
) -> list[tuple[ScoredRecord, float]]:
    if not isinstance(rerank, dict) or "model" not in rerank or "rank_fields" not in rerank:
        raise InvalidArgumentError("rerank needs a model and rank_fields.")
    query = rerank.get("query", text)
    if query is None:
        raise InvalidArgumentError("rerank.query is required when the search is not by text inputs.")
    ranked = rank_documents(
        models,
        rerank["model"],
        query,
        [match.record.metadata or {} for match in matches],
        rank_fields=rerank["rank_fields"],
        top_n=rerank.get("top_n", top_k),
        parameters=rerank.get("parameters"),
    )
    return [(matches[position], score) for position, score in ranked]


def records_routes(
    service: DataService,
    embed: dict[str, Any] | None,
    models: ModelRegistry,
    endpoint: Callable[[Handler], Any],
    read_body: Callable[[Request], Awaitable[bytes]],
) -> list[Route]:
    """The records routes of one index, wrapped by the data plane's ``endpoint`` (auth, errors)."""

    @endpoint
    async def upsert_records(request: Request, version: str) -> Response:
        raw = await read_body(request)
        config = _require_embed(embed)
        namespace = request.path_params["namespace"]
        await run_in_threadpool(_upsert, service, models, config, namespace, raw)
        return Response(status_code=201)

    @endpoint
    async def search_records(request: Request, version: str) -> Response:
        body = parse_json_object(await read_body(request))
        namespace = request.path_params["namespace"]
        out = await run_in_threadpool(_search, service, models, embed, namespace, body)
        return Response(orjson.dumps(out), media_type="application/json")

    return [
        Route("/records/namespaces/{namespace}/upsert", upsert_records, methods=["POST"]),
        Route("/records/namespaces/{namespace}/search", search_records, methods=["POST"]),
    ]

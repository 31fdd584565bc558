"""The data plane over REST (HTTP/1.1, camelCase JSON), one Starlette app per index.

Bodies follow the proto JSON names (``topK``, ``sparseValues``, ``setMetadata`` ...); snake_case input is
accepted too, as protojson does. Vector endpoints answer camelCase, namespace endpoints snake_case, and
errors the google.rpc.Status shape ``{"code", "message", "details"}``. Engine calls run in worker threads
so the event loop keeps serving other connections.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Route

from pinecone_rag.errors import ApiError, InvalidArgumentError, NotFoundError, PayloadTooLargeError
from pinecone_rag.server.data_service import DataService, QueryInput, UpdateInput, UpsertInput
from pinecone_rag.server.embedding_models import shared_registry
from pinecone_rag.server.engine import display_namespace
from pinecone_rag.server.http_limits import BodyLimitMiddleware
from pinecone_rag.server.index_model import V2025_04, V2026_07, negotiate_version
from pinecone_rag.server.json_input import as_list, float32_vector, number_array
from pinecone_rag.server.records_api import records_routes

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request

    from pinecone_rag.server.auth import KeyRing
    from pinecone_rag.server.embedding_models import ModelRegistry
    from pinecone_rag.server.engine import NamespaceSummary
    from pinecone_rag.server.namespace import WriteResult
    from pinecone_rag.server.records import Record

MAX_BODY_BYTES = 64 * 1024 * 1024
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=_JSON_OPTIONS),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def data_error(error: ApiError, version: str) -> Response:
    """An error in the data-plane shape (2026-07 answers 401 as plain text)."""
    if error.status == 401 and version >= V2026_07:
        return Response(error.message, status_code=401, media_type="text/plain")
    headers = {"retry-after": f"{error.retry_after:g}"} if error.retry_after is not None else None
    return _response(error.data_plane_body(), error.status, headers)


def _field(body: dict[str, Any], camel: str, snake: str | None = None) -> Any:
    if camel in body:
        return body[camel]
    return body.get(snake) if snake else None


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{what} must be an object.")
    return value


def _parse_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgumentError(f"The request body is not valid JSON: {exc}") from exc
    return _as_dict(body, "The request body")


def _upsert_input(raw: bytes) -> UpsertInput:
    """Decode an upsert body (run in a worker thread: a 2 MB body is milliseconds of parsing)."""
    body = _parse_json(raw)
    vectors = as_list(body.get("vectors"), "vectors")
    ids: list[Any] = []
    dense: list[Any] = []
    sparse: list[tuple[Any, Any] | None] = []
    metadata: list[Any] = []
    for i, item in enumerate(vectors):
        vector = _as_dict(item, f"vectors[{i}]")
        record_id = vector.get("id")
        if not isinstance(record_id, str):
            raise InvalidArgumentError(f"vectors[{i}].id must be a string.")
        ids.append(record_id)
        dense.append(number_array(vector.get("values"), f"vectors[{i}].values"))
        sparse.append(_sparse(_field(vector, "sparseValues", "sparse_values"), f"vectors[{i}].sparseValues"))
        metadata.append(vector.get("metadata"))
    return UpsertInput(
        namespace=body.get("namespace"),
        ids=ids,
        dense=dense if any(len(row) for row in dense) else None,
        sparse=sparse,
        metadata=metadata,
        request_bytes=len(raw) if vectors else 0,
    )


def _sparse(value: Any, what: str) -> tuple[Any, Any] | None:
    if value is None:
        return None
    body = _as_dict(value, what)
    indices = as_list(body.get("indices"), f"{what}.indices")
    if any(isinstance(i, bool) or not isinstance(i, int) for i in indices):
        raise InvalidArgumentError(f"{what}.indices must be a list of non-negative integers.")
    return indices, number_array(body.get("values"), f"{what}.values")


def _bool(value: Any, what: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be true or false.")
    return value


def _optional_str(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a string.")
    return value


def _int_param(value: str | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidArgumentError(f"{what} must be an integer.") from exc


def _vector_json(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"id": record.id, "values": record.values if record.values is not None else []}
    if record.sparse is not None:
        out["sparseValues"] = {"indices": record.sparse.indices, "values": record.sparse.values}
    if record.metadata:
        out["metadata"] = record.metadata
    return out


def _namespace_json(summary: NamespaceSummary) -> dict[str, Any]:
    out: dict[str, Any] = {"name": display_namespace(summary.name), "record_count": summary.record_count}
    if summary.schema is not None:
        out["schema"] = summary.schema
        out["indexed_fields"] = {"fields": summary.indexed_fields or []}
    return out


def _run_upsert(service: DataService, raw: bytes) -> tuple[WriteResult, int]:
    decoded = _upsert_input(raw)
    return service.upsert(decoded), len(decoded.ids)


def build_data_app(
    service: DataService,
    keyring: KeyRing,
    project_id: str,
    *,
    embed: dict[str, Any] | None = None,
    models: ModelRegistry | None = None,
) -> Starlette:
    """The REST data-plane app of one index (``embed``: its integrated-embedding config, if any)."""

    def endpoint(
        fn: Callable[[Request, str], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            version = negotiate_version(request.headers.get("x-pinecone-api-version"))
            try:
                if keyring.project_for(request.headers.get("api-key")) != project_id:
                    raise NotFoundError("Index not found.")
                response = await fn(request, version)
            except ApiError as error:
                return data_error(error, version)
            response.headers["x-pinecone-request-id"] = uuid.uuid4().hex
            return response

        return run

    async def raw_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"The request body is {length} bytes; the limit is {MAX_BODY_BYTES}.")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(
                f"The request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}."
            )
        return raw

    async def json_body(request: Request) -> dict[str, Any]:
        return _parse_json(await raw_body(request))

    @endpoint
    async def upsert(request: Request, version: str) -> Response:
        raw = await raw_body(request)
        result, count = await run_in_threadpool(lambda: _run_upsert(service, raw))
        return _response({"upsertedCount": count}, headers={"x-pinecone-request-lsn": str(result.lsn)})

    @endpoint
    async def query(request: Request, version: str) -> Response:
        body = await json_body(request)
        vector = float32_vector(body.get("vector"), "vector")
        decoded = QueryInput(
            namespace=body.get("namespace"),
            top_k=_field(body, "topK", "top_k"),
            vector=vector,
            sparse=_sparse(_field(body, "sparseVector", "sparse_vector"), "sparseVector"),
            record_id=_optional_str(body.get("id"), "id"),
            filter=body.get("filter"),
            include_values=_bool(_field(body, "includeValues", "include_values"), "includeValues"),
            include_metadata=_bool(_field(body, "includeMetadata", "include_metadata"), "includeMetadata"),
            has_queries=bool(body.get("queries")),
            scan_factor=_field(body, "scanFactor", "scan_factor"),
            max_candidates=_field(body, "maxCandidates", "max_candidates"),
        )
        namespace, matches, lsn = await run_in_threadpool(service.query, decoded)
        out = []
        for match in matches:
            item = _vector_json(match.record)
            item["score"] = match.score
            out.append(item)
        return _response(
            {
                "results": [],
                "matches": out,
                "namespace": namespace,
                "usage": {"readUnits": max(1, len(out) // 100)},
            },
            headers={"x-pinecone-max-indexed-lsn": str(lsn)},
        )

    @endpoint
    async def fetch(request: Request, version: str) -> Response:
        params = request.query_params
        ids = params.getlist("ids")
        namespace, records, lsn = await run_in_threadpool(service.fetch, params.get("namespace"), ids)
        return _response(
            {
                "vectors": {record.id: _vector_json(record) for record in records},
                "namespace": namespace,
                "usage": {"readUnits": 1},
            },
            headers={"x-pinecone-max-indexed-lsn": str(lsn)},
        )

    @endpoint
    async def fetch_by_metadata(request: Request, version: str) -> Response:
        body = await json_body(request)
        namespace, records, token, lsn = await run_in_threadpool(
            service.fetch_by_metadata,
            body.get("namespace"),
            body.get("filter"),
            body.get("limit"),
            _optional_str(_field(body, "paginationToken", "pagination_token"), "paginationToken"),
        )
        out: dict[str, Any] = {
            "vectors": {record.id: _vector_json(record) for record in records},
            "namespace": namespace,
            "usage": {"readUnits": 1},
        }
        if token:
            out["pagination"] = {"next": token}
        return _response(out, headers={"x-pinecone-max-indexed-lsn": str(lsn)})

    @endpoint
    async def update(request: Request, version: str) -> Response:
        body = await json_body(request)
        values = float32_vector(body.get("values"), "values")
        decoded = UpdateInput(
            namespace=body.get("namespace"),
            record_id=_optional_str(body.get("id"), "id"),
            values=values,
            sparse=_sparse(_field(body, "sparseValues", "sparse_values"), "sparseValues"),
            set_metadata=_field(body, "setMetadata", "set_metadata"),
            filter=body.get("filter"),
            dry_run=_bool(_field(body, "dryRun", "dry_run"), "dryRun"),
        )
        result, matched = await run_in_threadpool(service.update, decoded)
        out = {} if matched is None else {"matchedRecords": matched}
        return _response(out, headers={"x-pinecone-request-lsn": str(result.lsn)})

    @endpoint
    async def delete(request: Request, version: str) -> Response:
        body = await json_body(request)
        result = await run_in_threadpool(
            service.delete,
            body.get("namespace"),
            as_list(body.get("ids"), "ids"),
            _bool(_field(body, "deleteAll", "delete_all"), "deleteAll"),
            body.get("filter"),
        )
        return _response({}, headers={"x-pinecone-request-lsn": str(result.lsn)})

    @endpoint
    async def list_ids(request: Request, version: str) -> Response:
        params = request.query_params
        namespace, page = await run_in_threadpool(
            service.list_ids,
            params.get("namespace"),
            params.get("prefix"),
            _int_param(params.get("limit"), "limit"),
            params.get("paginationToken") or params.get("pagination_token"),
        )
        out: dict[str, Any] = {
            "vectors": [{"id": i} for i in page.ids],
            "namespace": namespace,
            "usage": {"readUnits": 1},
        }
        if page.next_token:
            out["pagination"] = {"next": page.next_token}
        return _response(out)

    @endpoint
    async def stats(request: Request, version: str) -> Response:
        body = await json_body(request) if request.method == "POST" else {}
        counts = await run_in_threadpool(service.stats, body.get("filter"))
        spec = service.engine.spec
        default_name = "" if version < V2025_04 else "__default__"
        out: dict[str, Any] = {
            "namespaces": {(name or default_name): {"vectorCount": n} for name, n in counts.items()},
            "indexFullness": 0.0,
            "totalVectorCount": sum(counts.values()),
            "metric": spec.metric,
            "vectorType": spec.vector_type,
        }
        if spec.dimension is not None:
            out["dimension"] = spec.dimension
        return _response(out)

    @endpoint
    async def list_namespaces(request: Request, version: str) -> Response:
        params = request.query_params
        summaries, token, total = await run_in_threadpool(
            service.list_namespaces,
            params.get("prefix"),
            _int_param(params.get("limit"), "limit"),
            params.get("paginationToken") or params.get("pagination_token"),
        )
        out: dict[str, Any] = {"namespaces": [_namespace_json(s) for s in summaries], "total_count": total}
        if token:
            out["pagination"] = {"next": token}
        return _response(out)

    @endpoint
    async def create_namespace(request: Request, version: str) -> Response:
        body = await json_body(request)
        summary = await run_in_threadpool(service.create_namespace, body.get("name"), body.get("schema"))
        return _response(_namespace_json(summary), 201 if version >= V2026_07 else 200)

    @endpoint
    async def describe_namespace(request: Request, version: str) -> Response:
        summary = await run_in_threadpool(service.describe_namespace, request.path_params["namespace"])
        return _response(_namespace_json(summary))

    @endpoint
    async def delete_namespace(request: Request, version: str) -> Response:
        await run_in_threadpool(service.delete_namespace, request.path_params["namespace"])
        return _response({}, 202 if version >= V2026_07 else 200)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _response(
            NotFoundError(f"No route for {request.method} {request.url.path}.").data_plane_body(), 404
        )

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _response(
            {"code": 12, "message": f"{request.method} is not allowed here.", "details": []}, 405
        )

    routes = [
        Route("/vectors/upsert", upsert, methods=["POST"]),
        Route("/query", query, methods=["POST"]),
        Route("/vectors/fetch", fetch, methods=["GET"]),
        Route("/vectors/fetch_by_metadata", fetch_by_metadata, methods=["POST"]),
        Route("/vectors/update", update, methods=["POST"]),
        Route("/vectors/delete", delete, methods=["POST", "DELETE"]),
        Route("/vectors/list", list_ids, methods=["GET"]),
        Route("/describe_index_stats", stats, methods=["GET", "POST"]),
        Route("/namespaces", list_namespaces, methods=["GET"]),
        Route("/namespaces", create_namespace, methods=["POST"]),
        Route("/namespaces/{namespace:path}", describe_namespace, methods=["GET"]),
        Route("/namespaces/{namespace:path}", delete_namespace, methods=["DELETE"]),
        *records_routes(service, embed, models or shared_registry(), endpoint, raw_body),
    ]
    # Refuses oversized bodies by Content-Length before reading them, and caps streamed ones.
    limit = Middleware(
        BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES, error_body=lambda e: e.data_plane_body()
    )
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed}, middleware=[limit])

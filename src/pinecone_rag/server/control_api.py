"""The control plane over HTTP: index lifecycle, ``/actions/whoami``, and a health check.

Errors use the control-plane shape ``{"error": {"code", "message"}, "status"}``. Request bodies are
checked here (names, dimensions, metrics, specs); the index manager does the lifecycle work.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Route

from pinecone_rag._version import __version__
from pinecone_rag.errors import (
    ApiError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    UnimplementedError,
    UnprocessableEntityError,
)
from pinecone_rag.server.control_db import IndexRecord
from pinecone_rag.server.embedding_models import shared_registry
from pinecone_rag.server.http_limits import BodyLimitMiddleware
from pinecone_rag.server.index_model import V2026_07, index_host, index_json, negotiate_version
from pinecone_rag.server.inference_api import inference_routes
from pinecone_rag.server.validation import MAX_DIMENSION

if TYPE_CHECKING:
    from starlette.requests import Request

    from pinecone_rag.server.auth import KeyRing
    from pinecone_rag.server.embedding_models import ModelRegistry
    from pinecone_rag.server.indexes import IndexManager
    from pinecone_rag.server.settings import ServerSettings

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_METRICS = ("cosine", "euclidean", "dotproduct")
_CLOUDS = ("aws", "gcp", "azure")
MAX_TAGS = 20
# Index bodies are tiny; /embed and /rerank carry at most a few MB of text.
MAX_CONTROL_BODY_BYTES = 16 * 1024 * 1024


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded with orjson."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def control_error(error: ApiError, version: str) -> Response:
    """An error in the control-plane shape (2026-07 answers 401 as plain text, as Pinecone does)."""
    if error.status == 401 and version >= V2026_07:
        return Response(error.message, status_code=401, media_type="text/plain")
    return json_response(error.control_plane_body(), error.status)


def check_index_name(name: object) -> str:
    """1-45 characters of ``a-z0-9-``, starting and ending with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            "Name must be 1-45 characters long, consist of lower case alphanumeric characters or '-', "
            "and start and end with an alphanumeric character."
        )
    return name


def _missing(field: str) -> UnprocessableEntityError:
    return UnprocessableEntityError(
        f"Failed to deserialize the JSON body into the target type: missing field `{field}`"
    )


def check_tags(raw: object, current: dict[str, str] | None = None) -> dict[str, str]:
    """Tags merged onto ``current``; an empty value removes a tag."""
    tags = dict(current or {})
    if raw is None:
        return tags
    if not isinstance(raw, dict):
        raise UnprocessableEntityError("Failed to deserialize the JSON body: `tags` must be an object.")
    for key, value in raw.items():
        if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
            raise InvalidArgumentError(
                f"Tag key {key!r} is not valid: keys are 1-80 characters of letters, digits, '_' or '-'."
            )
        if not isinstance(value, str) or len(value) > 120:
            raise InvalidArgumentError(f"Tag {key!r} must have a string value of at most 120 characters.")
        if value:
            tags[key] = value
        else:
            tags.pop(key, None)
    if len(tags) > MAX_TAGS:
        raise InvalidArgumentError(f"An index can have at most {MAX_TAGS} tags, got {len(tags)}.")
    return tags


def _deletion_protection(raw: object, default: str) -> str:
    if raw is None:
        return default
    if raw not in ("enabled", "disabled"):
        raise InvalidArgumentError("deletion_protection must be 'enabled' or 'disabled'.")
    return str(raw)


def _check_spec(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise UnprocessableEntityError(
            "Failed to deserialize the JSON body into the target type: spec: expected exactly one of "
            "`serverless`, `pod` or `byoc`"
        )
    kind, body = next(iter(raw.items()))
    if kind not in ("serverless", "pod", "byoc") or not isinstance(body, dict):
        raise UnprocessableEntityError(
            f"Failed to deserialize the JSON body into the target type: spec: unknown variant `{kind}`, "
            "expected one of `serverless`, `pod`, `byoc`"
        )
    if kind == "serverless":
        for field in ("cloud", "region"):
            if field not in body:
                raise _missing(field)
        if body["cloud"] not in _CLOUDS or not isinstance(body["region"], str) or not body["region"]:
            raise NotFoundError(f"Resource cloud: {body['cloud']} region: {body['region']} not found.")
    elif "environment" not in body:
        raise _missing("environment")
    return {kind: dict(body)}


def parse_create_2025(body: dict[str, Any], project_id: str) -> IndexRecord:
    """An IndexRecord from a 2025-xx CreateIndexRequest."""
    if "name" not in body:
        raise _missing("name")
    if "spec" not in body:
        raise _missing("spec")
    name = check_index_name(body["name"])
    vector_type = body.get("vector_type") or "dense"
    if vector_type not in ("dense", "sparse"):
        raise InvalidArgumentError("vector_type must be 'dense' or 'sparse'.")
    metric = body.get("metric")
    dimension = body.get("dimension")
    if vector_type == "sparse":
        if dimension is not None:
            raise InvalidArgumentError("Sparse indexes must not have a dimension.")
        metric = metric or "dotproduct"
        if metric != "dotproduct":
            raise InvalidArgumentError("Sparse indexes must use the dotproduct metric.")
    else:
        if dimension is None:
            raise _missing("dimension")
        if (
            isinstance(dimension, bool)
            or not isinstance(dimension, int)
            or not 1 <= dimension <= MAX_DIMENSION
        ):
            raise InvalidArgumentError(f"Dimension must be an integer between 1 and {MAX_DIMENSION}.")
        metric = metric or "cosine"
    if metric not in _METRICS:
        raise InvalidArgumentError(f"Metric must be one of {', '.join(_METRICS)}; got {metric!r}.")
    return IndexRecord(
        id=uuid.uuid4().hex,
        project_id=project_id,
        name=name,
        dimension=dimension,
        metric=metric,  # type: ignore[arg-type]  # checked against _METRICS above
        vector_type=vector_type,  # type: ignore[arg-type]
        spec=_check_spec(body["spec"]),
        tags=check_tags(body.get("tags")),
        deletion_protection=_deletion_protection(body.get("deletion_protection"), "disabled"),
        created_at=time.time(),
    )


def parse_create_2026(body: dict[str, Any], project_id: str) -> IndexRecord:
    """An IndexRecord from a 2026-07 CreateIndexRequest (classic vector schemas only)."""
    schema = body.get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("fields"), dict) or not schema["fields"]:
        raise _missing("schema")
    fields: dict[str, Any] = schema["fields"]
    dense = fields.get("_values")
    for field in ("_values", "_sparse_values"):
        if fields.get(field) is not None and not isinstance(fields[field], dict):
            raise InvalidArgumentError(f"schema.fields.{field} must be an object.")
    extra = set(fields) - {"_values", "_sparse_values"}
    if extra:
        raise UnimplementedError(
            f"Schema fields {sorted(extra)} need the documents API, which the local engine does not serve; "
            "use `_values` (dense) and/or `_sparse_values` (sparse)."
        )
    name = check_index_name(body.get("name") or f"index-{uuid.uuid4().hex[:8]}")
    if dense is not None:
        metric = dense.get("metric") or "cosine"
        converted: dict[str, Any] = {
            "vector_type": "dense",
            "dimension": dense.get("dimension"),
            "metric": metric,
        }
    else:
        converted = {"vector_type": "sparse", "metric": "dotproduct"}
    deployment = body.get("deployment") or {
        "deployment_type": "managed",
        "cloud": "aws",
        "region": "us-east-1",
    }
    if not isinstance(deployment, dict):
        raise InvalidArgumentError("deployment must be an object.")
    kind = deployment.get("deployment_type", "managed")
    if kind == "pod":
        spec = {"pod": {k: v for k, v in deployment.items() if k != "deployment_type"}}
    elif kind == "byoc":
        spec = {"byoc": {"environment": deployment.get("environment")}}
    else:
        spec = {
            "serverless": {
                "cloud": deployment.get("cloud", "aws"),
                "region": deployment.get("region", "us-east-1"),
            }
        }
    converted.update(
        name=name, spec=spec, tags=body.get("tags"), deletion_protection=body.get("deletion_protection")
    )
    return parse_create_2025(converted, project_id)


def parse_create_for_model(body: dict[str, Any], project_id: str, models: ModelRegistry) -> IndexRecord:
    """An IndexRecord (with its ``embed`` config) from a CreateIndexForModelRequest.

    The index takes the model's dimension and vector type; the metric defaults to the model's first
    supported one. Read and write parameters are checked against the model and stored with defaults
    filled in (``input_type`` query for reads, passage for writes).
    """
    for key in ("name", "cloud", "region", "embed"):
        if key not in body:
            raise _missing(key)
    embed = body["embed"]
    if not isinstance(embed, dict):
        raise UnprocessableEntityError("Failed to deserialize the JSON body: `embed` must be an object.")
    for key in ("model", "field_map"):
        if key not in embed:
            raise _missing(key)
    field_map = embed["field_map"]
    if not isinstance(field_map, dict) or not isinstance(field_map.get("text"), str) or not field_map["text"]:
        raise InvalidArgumentError("field_map must map 'text' to the name of the record field to embed.")
    info = models.usable(embed["model"], "embed")
    metric = embed.get("metric") or info.default_metric
    if metric not in info.metrics:
        raise InvalidArgumentError(
            f"Model '{info.name}' supports the metrics {', '.join(info.metrics)}; got {metric!r}."
        )
    dimension = embed.get("dimension")
    if dimension is not None and dimension != info.dimension:
        raise InvalidArgumentError(
            f"Model '{info.name}' has "
            + (f"dimension {info.dimension}" if info.dimension else "no dimension (sparse)")
            + f"; got {dimension!r}."
        )
    read = {"input_type": "query", **(embed.get("read_parameters") or {})}
    write = {"input_type": "passage", **(embed.get("write_parameters") or {})}
    config: dict[str, Any] = {
        "model": info.name,
        "metric": metric,
        "vector_type": info.vector_type,
        "field_map": {"text": field_map["text"]},
        "read_parameters": models.check_parameters(info.name, "embed", read),
        "write_parameters": models.check_parameters(info.name, "embed", write),
    }
    if info.dimension is not None:
        config["dimension"] = info.dimension
    record = parse_create_2025(
        {
            "name": body["name"],
            "dimension": info.dimension,
            "metric": metric,
            "vector_type": info.vector_type,
            "spec": {"serverless": {"cloud": body["cloud"], "region": body["region"]}},
            "tags": body.get("tags"),
            "deletion_protection": body.get("deletion_protection"),
        },
        project_id,
    )
    return replace(record, embed=config)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise UnprocessableEntityError(f"Failed to parse the request body as JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise UnprocessableEntityError("Failed to deserialize the JSON body: expected an object.")
    return body


def build_control_app(
    settings: ServerSettings, keyring: KeyRing, manager: IndexManager, models: ModelRegistry | None = None
) -> Starlette:
    """The Starlette app of the control-plane port (``models``: the Inference API's, default shared)."""
    registry = models or shared_registry()

    def describe(record: IndexRecord, version: str) -> dict[str, Any]:
        handle = manager.get(record.project_id, record.name)
        host = index_host(version, settings.public_host, handle.port, settings.host_format, tls=settings.tls)
        return index_json(handle.record, version, host)

    def grpc_headers(project_id: str, name: str) -> dict[str, str]:
        handle = manager.get(project_id, name)
        return {"x-pinecone-rag-grpc-port": str(handle.grpc_port)}

    def endpoint(fn: Any) -> Any:
        async def run(request: Request) -> Response:
            version = negotiate_version(request.headers.get("x-pinecone-api-version"))
            try:
                project_id = keyring.project_for(request.headers.get("api-key"))
                result: Response = await fn(request, project_id, version)
            except ApiError as error:
                return control_error(error, version)
            return result

        return run

    @endpoint
    async def list_indexes(request: Request, project_id: str, version: str) -> Response:
        return json_response({"indexes": [describe(h.record, version) for h in manager.list(project_id)]})

    @endpoint
    async def create_index(request: Request, project_id: str, version: str) -> Response:
        body = await _json_body(request)
        parse = parse_create_2026 if version >= V2026_07 else parse_create_2025
        record = parse(body, project_id)
        handle = await manager.create(record)
        return json_response(describe(handle.record, version), 201, grpc_headers(project_id, record.name))

    @endpoint
    async def create_index_for_model(request: Request, project_id: str, version: str) -> Response:
        body = await _json_body(request)
        record = parse_create_for_model(body, project_id, registry)
        handle = await manager.create(record)
        return json_response(describe(handle.record, version), 201, grpc_headers(project_id, record.name))

    @endpoint
    async def describe_index(request: Request, project_id: str, version: str) -> Response:
        handle = manager.get(project_id, request.path_params["name"])
        return json_response(
            describe(handle.record, version), headers=grpc_headers(project_id, handle.record.name)
        )

    @endpoint
    async def configure_index(request: Request, project_id: str, version: str) -> Response:
        body = await _json_body(request)
        handle = manager.get(project_id, request.path_params["name"])
        record = handle.record
        spec = {key: dict(value) for key, value in record.spec.items()}
        raw_spec = body.get("spec")
        if version >= V2026_07 and isinstance(body.get("deployment"), dict) and "pod" in spec:
            raw_spec = {"pod": {k: v for k, v in body["deployment"].items() if k in ("replicas", "pod_type")}}
        if raw_spec is not None:
            if not isinstance(raw_spec, dict) or len(raw_spec) != 1:
                raise UnprocessableEntityError("Failed to deserialize the JSON body: `spec` has one key.")
            kind, changes = next(iter(raw_spec.items()))
            if kind not in spec or not isinstance(changes, dict):
                raise InvalidArgumentError(f"This index has no {kind} spec to configure.")
            spec[kind].update(changes)
        if version >= V2026_07 and isinstance(body.get("read_capacity"), dict):
            for kind in ("serverless", "byoc"):
                if kind in spec:
                    spec[kind]["read_capacity"] = body["read_capacity"]
        updated = manager.configure(
            handle,
            spec=spec,
            tags=check_tags(body.get("tags"), record.tags),
            deletion_protection=_deletion_protection(
                body.get("deletion_protection"), record.deletion_protection
            ),
        )
        return json_response(describe(updated, version), 202)

    @endpoint
    async def delete_index(request: Request, project_id: str, version: str) -> Response:
        handle = manager.get(project_id, request.path_params["name"])
        if handle.record.deletion_protection == "enabled":
            raise ForbiddenError(
                "Deletion protection is enabled for this index. Disable deletion protection before retrying."
            )
        await manager.delete(handle)
        return Response(status_code=202)

    @endpoint
    async def unsupported(request: Request, project_id: str, version: str) -> Response:
        raise UnimplementedError(f"{request.method} {request.url.path} is not supported by the local engine.")

    @endpoint
    async def whoami(request: Request, project_id: str, version: str) -> Response:
        return json_response({"project_name": project_id, "user_label": "local", "user_name": "pinecone-rag"})

    async def health(request: Request) -> Response:
        return json_response({"status": "ok", "version": __version__})

    async def not_found(request: Request, exc: Exception) -> Response:
        version = negotiate_version(request.headers.get("x-pinecone-api-version"))
        return control_error(NotFoundError(f"No route for {request.method} {request.url.path}."), version)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return json_response(
            {
                "error": {"code": "METHOD_NOT_ALLOWED", "message": f"{request.method} is not allowed here."},
                "status": 405,
            },
            405,
        )

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/indexes", list_indexes, methods=["GET"]),
        Route("/indexes", create_index, methods=["POST"]),
        Route("/indexes/create-for-model", create_index_for_model, methods=["POST"]),
        Route("/indexes/{name}", describe_index, methods=["GET"]),
        Route("/indexes/{name}", configure_index, methods=["PATCH"]),
        Route("/indexes/{name}", delete_index, methods=["DELETE"]),
        Route("/indexes/{name}/backups", unsupported, methods=["GET", "POST"]),
        Route("/collections", unsupported, methods=["GET", "POST"]),
        Route("/collections/{name}", unsupported, methods=["GET", "DELETE"]),
        Route("/backups", unsupported, methods=["GET"]),
        Route("/backups/{backup_id}", unsupported, methods=["GET", "DELETE"]),
        Route("/restore-jobs", unsupported, methods=["GET"]),
        Route("/actions/whoami", whoami, methods=["GET"]),
        *inference_routes(registry, endpoint),
    ]
    limit = Middleware(
        BodyLimitMiddleware, max_bytes=MAX_CONTROL_BODY_BYTES, error_body=lambda e: e.control_plane_body()
    )
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed}, middleware=[limit])

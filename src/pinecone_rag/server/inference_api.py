"""Pinecone's Inference API on the control-plane port: ``POST /embed``, ``POST /rerank``, ``GET /models``.

Request and response shapes are Pinecone's (2025-xx); the models are the local ones of
:mod:`pinecone_rag.server.embedding_models`. Errors use the control-plane shape, and an unknown model is
a 400 that lists the models of that kind (``GET /models/{name}`` answers 404).

Example:
    ``curl -X POST localhost:5080/embed -H 'Api-Key: x' -d '{"model": "all-minilm-l6-v2",
    "inputs": [{"text": "hello"}], "parameters": {"input_type": "passage"}}'``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from pinecone_rag.errors import InvalidArgumentError, UnprocessableEntityError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from starlette.requests import Request

    from pinecone_rag.server.embedding_models import ModelRegistry

    Handler = Callable[["Request", str, str], Awaitable[Response]]
    """A control-plane handler: (request, project id, API version) -> response."""

__all__ = ["inference_routes", "parse_json_object", "rank_documents"]

RERANK_UNITS_PER_REQUEST = 1
"""Pinecone bills one rerank unit per request of up to 100 documents."""


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (422 otherwise, as the control plane answers)."""
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise UnprocessableEntityError(f"Failed to parse the request body as JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise UnprocessableEntityError("Failed to deserialize the JSON body: expected an object.")
    return body


def _parameters(raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgumentError("parameters must be an object.")
    return raw


def _embed_texts(raw: object) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise InvalidArgumentError("inputs must be a non-empty list of objects such as {'text': '...'}.")
    texts = []
    for position, item in enumerate(raw):
        text = item.get("text") if isinstance(item, dict) else None
        if not isinstance(text, str):
            raise InvalidArgumentError(f"Input {position} must be an object with a string 'text'.")
        texts.append(text)
    return texts


def rank_documents(
    models: ModelRegistry,
    model: object,
    query: object,
    documents: Sequence[Mapping[str, Any]],
    *,
    rank_fields: object,
    top_n: object,
    parameters: object,
) -> list[tuple[int, float]]:
    """``(position, score)`` of the best ``top_n`` documents for ``query``, best first.

    The text ranked is each document's ``rank_fields``, joined by newlines.

    Raises:
        InvalidArgumentError: a bad model, query, field list, ``top_n``, parameter, or a document
            without one of the rank fields.
    """
    if not isinstance(query, str) or not query:
        raise InvalidArgumentError("query must be a non-empty string.")
    fields = ["text"] if rank_fields is None else rank_fields
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise InvalidArgumentError("rank_fields must be a non-empty list of field names.")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise InvalidArgumentError(f"top_n must be a positive integer, got {top_n!r}.")
    texts = []
    for position, document in enumerate(documents):
        values = []
        for name in fields:
            value = document.get(name)
            if not isinstance(value, str):
                raise InvalidArgumentError(
                    f"Document {position} has no string field {name!r} to rank by (rank_fields: {fields})."
                )
            values.append(value)
        texts.append("\n".join(values))
    scores = models.rerank(model, query, texts, _parameters(parameters))
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    if top_n is not None:
        order = order[:top_n]
    return [(i, scores[i]) for i in order]


def _documents(raw: object) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidArgumentError("documents must be a list of strings or objects.")
    documents = []
    for position, item in enumerate(raw):
        if isinstance(item, str):
            documents.append({"text": item})
        elif isinstance(item, dict):
            documents.append(item)
        else:
            raise InvalidArgumentError(f"Document {position} must be a string or an object.")
    return documents


def inference_routes(models: ModelRegistry, endpoint: Callable[[Handler], Any]) -> list[Route]:
    """The inference routes, each wrapped by the control plane's ``endpoint`` (auth, version, errors)."""

    @endpoint
    async def embed(request: Request, project_id: str, version: str) -> Response:
        body = parse_json_object(await request.body())
        if "model" not in body:
            raise InvalidArgumentError("The request needs a model.")
        texts = _embed_texts(body.get("inputs"))
        parameters = _parameters(body.get("parameters"))
        result = await run_in_threadpool(models.embed, body["model"], texts, parameters)
        return _json(result.to_json())

    @endpoint
    async def rerank(request: Request, project_id: str, version: str) -> Response:
        body = parse_json_object(await request.body())
        if "model" not in body:
            raise InvalidArgumentError("The request needs a model.")
        documents = _documents(body.get("documents"))
        return_documents = body.get("return_documents", True)
        if not isinstance(return_documents, bool):
            raise InvalidArgumentError("return_documents must be true or false.")
        ranked = await run_in_threadpool(
            lambda: rank_documents(
                models,
                body["model"],
                body.get("query"),
                documents,
                rank_fields=body.get("rank_fields"),
                top_n=body.get("top_n"),
                parameters=body.get("parameters"),
            )
        )
        data = []
        for position, score in ranked:
            item: dict[str, Any] = {"index": position, "score": score}
            if return_documents:
                item["document"] = documents[position]
            data.append(item)
        return _json(
            {"model": body["model"], "data": data, "usage": {"rerank_units": RERANK_UNITS_PER_REQUEST}}
        )

    @endpoint
    async def list_models(request: Request, project_id: str, version: str) -> Response:
        params = request.query_params
        listed = models.list_json(type=params.get("type"), vector_type=params.get("vector_type"))
        return _json({"models": listed})

    @endpoint
    async def describe_model(request: Request, project_id: str, version: str) -> Response:
        info = models.info(request.path_params["model_name"])
        return _json(info.to_json(available=models.available(info)))

    return [
        Route("/embed", embed, methods=["POST"]),
        Route("/rerank", rerank, methods=["POST"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/models/{model_name}", describe_model, methods=["GET"]),
    ]

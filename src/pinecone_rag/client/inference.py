"""Pinecone's Inference API (``/embed``, ``/rerank`` on the control-plane host).

Builders and parsers are I/O-free; :class:`Inference` and :class:`AsyncInference` send them through a
control plane, so they share its connection pool, headers and retry policy. Embed inputs are split into
requests of at most ``max_batch`` texts and the results concatenated in input order.

Example:
    >>> embed_call("multilingual-e5-large", ["hello"], {"input_type": "passage"}).json["inputs"]
    [{'text': 'hello'}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pinecone_rag.client._http import HttpCall, response_json
from pinecone_rag.errors import ApiError, ConfigurationError
from pinecone_rag.models import Embedding, EmbeddingsList, RankedDocument, RerankResult

if TYPE_CHECKING:
    from pinecone_rag.client.control import AsyncControlPlane, ControlPlane

__all__ = [
    "DEFAULT_MAX_BATCH",
    "AsyncInference",
    "EmbedInputs",
    "Inference",
    "embed_call",
    "embed_calls",
    "merge_embeddings",
    "parse_embeddings",
    "parse_rerank",
    "rerank_call",
]

DEFAULT_MAX_BATCH = 96
"""Texts per embed request that Pinecone accepts for most models."""

EmbedInputs = str | Mapping[str, Any] | Sequence[str] | Sequence[Mapping[str, Any]]


def _check_model(model: object) -> str:
    if not isinstance(model, str) or not model:
        raise ConfigurationError(f"model must be a non-empty string, got {model!r}.")
    return model


def _input_list(inputs: EmbedInputs) -> list[dict[str, Any]]:
    # A lone string is one input, not a sequence of characters.
    items: Sequence[Any] = [inputs] if isinstance(inputs, (str, Mapping)) else inputs
    converted: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        if isinstance(item, str):
            converted.append({"text": item})
        elif isinstance(item, Mapping):
            converted.append(dict(item))
        else:
            raise ConfigurationError(
                f"Input {position} must be a string or a mapping such as {{'text': ...}}, "
                f"got {type(item).__name__}."
            )
    if not converted:
        raise ConfigurationError("embed needs at least one input.")
    return converted


def _embed_body(model: str, inputs: list[dict[str, Any]], parameters: Mapping[str, Any] | None) -> HttpCall:
    body: dict[str, Any] = {"model": model, "inputs": inputs}
    if parameters:
        body["parameters"] = dict(parameters)
    return HttpCall("POST", "/embed", json=body)


def embed_call(model: str, inputs: EmbedInputs, parameters: Mapping[str, Any] | None = None) -> HttpCall:
    """``POST /embed`` for all ``inputs`` in one request (see :func:`embed_calls` for batching).

    Args:
        model: The embedding model, e.g. ``multilingual-e5-large``.
        inputs: Texts, or mappings such as ``{"text": ...}``; a single string is one input.
        parameters: Model parameters, e.g. ``{"input_type": "query", "truncate": "END"}``.

    Raises:
        ConfigurationError: no model or no inputs.
    """
    return _embed_body(_check_model(model), _input_list(inputs), parameters)


def embed_calls(
    model: str,
    inputs: EmbedInputs,
    parameters: Mapping[str, Any] | None = None,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> list[HttpCall]:
    """One ``POST /embed`` per ``max_batch`` inputs, in input order.

    Example:
        >>> len(embed_calls("m", ["a"] * 200, max_batch=96))
        3
    """
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ConfigurationError(f"max_batch must be a positive integer, got {max_batch!r}.")
    checked = _check_model(model)
    items = _input_list(inputs)
    return [
        _embed_body(checked, items[start : start + max_batch], parameters)
        for start in range(0, len(items), max_batch)
    ]


def rerank_call(
    model: str,
    query: str,
    documents: Sequence[str] | Sequence[Mapping[str, Any]],
    *,
    top_n: int | None = None,
    return_documents: bool = True,
    rank_fields: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> HttpCall:
    """``POST /rerank``: order ``documents`` by relevance to ``query``.

    Args:
        model: The reranking model, e.g. ``bge-reranker-v2-m3``.
        query: The query.
        documents: Texts (sent as ``{"text": ...}``) or mappings with the ``rank_fields``.
        top_n: How many to return (all by default).
        return_documents: Whether answers carry the documents.
        rank_fields: Fields to rank on (the service defaults to ``["text"]``).
        parameters: Model parameters, e.g. ``{"truncate": "END"}``.

    Raises:
        ConfigurationError: an argument is invalid (nothing was sent).

    Example:
        >>> rerank_call("bge-reranker-v2-m3", "q", ["a", "b"], top_n=1).json["documents"]
        [{'text': 'a'}, {'text': 'b'}]
    """
    body: dict[str, Any] = {"model": _check_model(model)}
    if not isinstance(query, str) or not query:
        raise ConfigurationError("rerank needs a non-empty query string.")
    body["query"] = query
    if isinstance(documents, (str, Mapping)):
        raise ConfigurationError("documents must be a list of strings or mappings.")
    docs: list[dict[str, Any]] = []
    for position, document in enumerate(documents):
        if isinstance(document, str):
            docs.append({"text": document})
        elif isinstance(document, Mapping):
            docs.append(dict(document))
        else:
            raise ConfigurationError(
                f"Document {position} must be a string or a mapping, got {type(document).__name__}."
            )
    if not docs:
        raise ConfigurationError("rerank needs at least one document.")
    body["documents"] = docs
    if top_n is not None:
        if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
            raise ConfigurationError(f"top_n must be a positive integer, got {top_n!r}.")
        body["top_n"] = top_n
    body["return_documents"] = bool(return_documents)
    if rank_fields is not None:
        fields = [rank_fields] if isinstance(rank_fields, str) else list(rank_fields)
        if not fields or not all(isinstance(field, str) and field for field in fields):
            raise ConfigurationError("rank_fields must be a non-empty list of field names.")
        body["rank_fields"] = fields
    if parameters:
        body["parameters"] = dict(parameters)
    return HttpCall("POST", "/rerank", json=body)


# ---------------------------------------------------------------------------------------- parsers
def _embedding(item: Any) -> Embedding:
    if not isinstance(item, dict):
        raise ApiError(f"Expected an embedding object, got {type(item).__name__}.")
    values = item.get("values")
    tokens = item.get("sparse_tokens")
    sparse_indices = item.get("sparse_indices")
    sparse_values = item.get("sparse_values")
    return Embedding(
        values=None if values is None else np.asarray(values, dtype=np.float32),
        sparse_indices=None if sparse_indices is None else [int(i) for i in sparse_indices],
        sparse_values=None if sparse_values is None else [float(v) for v in sparse_values],
        sparse_tokens=None if tokens is None else [str(t) for t in tokens],
    )


def parse_embeddings(body: Any) -> EmbeddingsList:
    """An :class:`EmbeddingsList` from an ``/embed`` answer, dense or sparse.

    Raises:
        ApiError: the answer is not an embeddings list.

    Example:
        >>> body = {"model": "m", "data": [{"values": [0.5]}], "usage": {"total_tokens": 2}}
        >>> result = parse_embeddings(body)
        >>> result.vector_type, result.total_tokens, result[0].values.tolist()
        ('dense', 2, [0.5])
    """
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ApiError("Expected an embeddings list ({'data': [...]}) from /embed.")
    data = [_embedding(item) for item in body["data"]]
    vector_type = body.get("vector_type")
    if not isinstance(vector_type, str):
        vector_type = "sparse" if data and data[0].values is None and data[0].sparse_values else "dense"
    usage = body.get("usage") or {}
    tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
    return EmbeddingsList(
        model=str(body.get("model", "")),
        vector_type=vector_type,
        data=data,
        total_tokens=None if tokens is None else int(tokens),
    )


def merge_embeddings(parts: Sequence[EmbeddingsList]) -> EmbeddingsList:
    """Concatenate the answers of batched embed requests (token counts add up).

    Example:
        >>> one = EmbeddingsList("m", "dense", [Embedding()], total_tokens=2)
        >>> merged = merge_embeddings([one, one])
        >>> len(merged), merged.total_tokens
        (2, 4)
    """
    if not parts:
        raise ConfigurationError("Nothing to merge: no embed answers.")
    if len(parts) == 1:
        return parts[0]
    counts = [part.total_tokens for part in parts]
    return EmbeddingsList(
        model=parts[0].model,
        vector_type=parts[0].vector_type,
        data=[embedding for part in parts for embedding in part.data],
        total_tokens=None if all(c is None for c in counts) else sum(c or 0 for c in counts),
    )


def parse_rerank(body: Any) -> RerankResult:
    """A :class:`RerankResult` from a ``/rerank`` answer.

    Raises:
        ApiError: the answer is not a rerank result.

    Example:
        >>> body = {"model": "m", "data": [{"index": 1, "score": 0.9}], "usage": {"rerank_units": 1}}
        >>> parse_rerank(body).data[0]
        RankedDocument(index=1, score=0.9, document=None)
    """
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ApiError("Expected a rerank result ({'data': [...]}) from /rerank.")
    ranked: list[RankedDocument] = []
    for item in body["data"]:
        if not isinstance(item, dict) or "index" not in item or "score" not in item:
            raise ApiError("Each reranked item needs an index and a score.")
        document = item.get("document")
        ranked.append(
            RankedDocument(
                index=int(item["index"]),
                score=float(item["score"]),
                document=dict(document) if isinstance(document, dict) else None,
            )
        )
    usage = body.get("usage") or {}
    units = usage.get("rerank_units") if isinstance(usage, dict) else None
    return RerankResult(
        model=str(body.get("model", "")), data=ranked, rerank_units=None if units is None else int(units)
    )


# ------------------------------------------------------------------------------------------ shells
class Inference:
    """Embed and rerank over a :class:`~pinecone_rag.client.control.ControlPlane`'s connection.

    Example:
        >>> inference = Inference(control)  # doctest: +SKIP
        >>> inference.embed("multilingual-e5-large", ["a", "b"], {"input_type": "passage"})  # doctest: +SKIP
    """

    def __init__(self, control: ControlPlane) -> None:
        self._control = control

    def embed(
        self,
        model: str,
        inputs: EmbedInputs,
        parameters: Mapping[str, Any] | None = None,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> EmbeddingsList:
        """Embeddings of ``inputs``, in order, sent ``max_batch`` at a time.

        Raises:
            ConfigurationError: no model or no inputs (nothing was sent).
            UnimplementedError: the service does not offer inference (older local engines).
        """
        calls = embed_calls(model, inputs, parameters, max_batch=max_batch)
        return merge_embeddings([parse_embeddings(response_json(self._control.request(c))) for c in calls])

    def rerank(
        self,
        model: str,
        query: str,
        documents: Sequence[str] | Sequence[Mapping[str, Any]],
        *,
        top_n: int | None = None,
        return_documents: bool = True,
        rank_fields: Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> RerankResult:
        """``documents`` ordered by relevance to ``query``, best first (see :func:`rerank_call`)."""
        call = rerank_call(
            model,
            query,
            documents,
            top_n=top_n,
            return_documents=return_documents,
            rank_fields=rank_fields,
            parameters=parameters,
        )
        return parse_rerank(response_json(self._control.request(call)))


class AsyncInference:
    """The asyncio twin of :class:`Inference`, over an :class:`AsyncControlPlane`."""

    def __init__(self, control: AsyncControlPlane) -> None:
        self._control = control

    async def embed(
        self,
        model: str,
        inputs: EmbedInputs,
        parameters: Mapping[str, Any] | None = None,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> EmbeddingsList:
        """Embeddings of ``inputs``, in order, sent ``max_batch`` at a time (see :meth:`Inference.embed`)."""
        calls = embed_calls(model, inputs, parameters, max_batch=max_batch)
        parts = [parse_embeddings(response_json(await self._control.request(c))) for c in calls]
        return merge_embeddings(parts)

    async def rerank(
        self,
        model: str,
        query: str,
        documents: Sequence[str] | Sequence[Mapping[str, Any]],
        *,
        top_n: int | None = None,
        return_documents: bool = True,
        rank_fields: Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> RerankResult:
        """``documents`` ordered by relevance to ``query``, best first (see :func:`rerank_call`)."""
        call = rerank_call(
            model,
            query,
            documents,
            top_n=top_n,
            return_documents=return_documents,
            rank_fields=rank_fields,
            parameters=parameters,
        )
        return parse_rerank(response_json(await self._control.request(call)))

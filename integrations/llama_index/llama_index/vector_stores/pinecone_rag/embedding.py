"""``PineconeEmbedding``: LlamaIndex embeddings from Pinecone's Inference API, through pinecone-rag's client.

It lives in this package (rather than a separate ``llama-index-embeddings-*`` distribution) so the store,
its embeddings and its memory install together.
"""

from __future__ import annotations

from typing import Any, Final

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from pinecone_rag import AsyncPineconeClient, EmbeddingsList, PineconeClient

__all__ = ["DEFAULT_EMBED_MODEL", "PineconeEmbedding"]

DEFAULT_EMBED_MODEL: Final = "multilingual-e5-large"
"""Pinecone's hosted default; the local engine serves ``all-minilm-l6-v2``."""
_MAX_BATCH: Final = 96


class PineconeEmbedding(BaseEmbedding):
    """Dense embeddings from ``pc.inference.embed`` (Pinecone's cloud or the local engine).

    Queries are embedded with ``query_parameters`` and documents with ``document_parameters`` (by default
    ``input_type`` query/passage, as asymmetric models such as e5 expect).

    Args:
        model_name: The embedding model, e.g. ``multilingual-e5-large`` or ``all-minilm-l6-v2`` (local).
        client: A ``PineconeClient`` for sync calls.
        async_client: An ``AsyncPineconeClient`` for async calls.
        api_key: Builds clients when none is given (never serialised).
        host: The control plane for those clients.

    Example:
        >>> embed = PineconeEmbedding(model_name="all-minilm-l6-v2", client=pc)  # doctest: +SKIP
        >>> len(embed.get_query_embedding("hello"))  # doctest: +SKIP
        384
    """

    model_name: str = DEFAULT_EMBED_MODEL
    embed_batch_size: int = Field(default=_MAX_BATCH, gt=0, le=_MAX_BATCH)
    host: str | None = None
    query_parameters: dict[str, Any] = Field(
        default_factory=lambda: {"input_type": "query", "truncate": "END"}
    )
    document_parameters: dict[str, Any] = Field(
        default_factory=lambda: {"input_type": "passage", "truncate": "END"}
    )

    _client: PineconeClient | None = PrivateAttr(default=None)
    _async_client: AsyncPineconeClient | None = PrivateAttr(default=None)
    _api_key: str | None = PrivateAttr(default=None)

    def __init__(
        self,
        model_name: str = DEFAULT_EMBED_MODEL,
        *,
        client: PineconeClient | None = None,
        async_client: AsyncPineconeClient | None = None,
        api_key: str | None = None,
        host: str | None = None,
        **kwargs: Any,
    ) -> None:
        fields: dict[str, Any] = {"model_name": model_name, "host": host}
        super().__init__(**fields, **kwargs)
        self._client = client
        self._async_client = async_client
        self._api_key = api_key

    @classmethod
    def class_name(cls) -> str:
        """The name ``to_dict`` / ``from_dict`` record."""
        return "PineconeRagEmbedding"

    def _sync(self) -> PineconeClient:
        if self._client is None:
            self._client = PineconeClient(api_key=self._api_key, host=self.host)
        return self._client

    def _async(self) -> AsyncPineconeClient:
        if self._async_client is None:
            self._async_client = AsyncPineconeClient(api_key=self._api_key, host=self.host)
        return self._async_client

    def _embed(self, texts: list[str], parameters: dict[str, Any]) -> list[list[float]]:
        return _vectors(
            self._sync().inference.embed(self.model_name, texts, parameters, max_batch=_MAX_BATCH)
        )

    async def _aembed(self, texts: list[str], parameters: dict[str, Any]) -> list[list[float]]:
        result = await self._async().inference.embed(self.model_name, texts, parameters, max_batch=_MAX_BATCH)
        return _vectors(result)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query], self.query_parameters)[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._aembed([query], self.query_parameters))[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text], self.document_parameters)[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aembed([text], self.document_parameters))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts, self.document_parameters)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed(texts, self.document_parameters)


def _vectors(result: EmbeddingsList) -> list[list[float]]:
    vectors: list[list[float]] = []
    for position, embedding in enumerate(result.data):
        if embedding.values is None:
            raise ValueError(
                f"Model {result.model!r} returned a {result.vector_type} embedding for input {position}; "
                "PineconeEmbedding needs a dense model."
            )
        vectors.append(embedding.values.tolist())
    return vectors

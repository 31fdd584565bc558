"""``PineconeEmbeddings``: LangChain ``Embeddings`` over Pinecone's Inference API (``POST /embed``).

Texts are sent ``batch_size`` at a time through the core client (``pc.inference.embed``); documents and
queries get their own parameters (``input_type`` passage / query), because asymmetric models embed them
differently (langchain-pinecone's ``aembed_query`` once sent the passage parameters). Nothing is contacted
when the object is built.

Example:
    >>> from pinecone_rag import PineconeClient  # doctest: +SKIP
    >>> pc = PineconeClient.local()  # doctest: +SKIP
    >>> embeddings = PineconeEmbeddings(model="all-minilm-l6-v2", client=pc)  # doctest: +SKIP
    >>> len(embeddings.embed_query("hello"))  # doctest: +SKIP
    384
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from pinecone_rag import AsyncPineconeClient, PineconeClient

if TYPE_CHECKING:
    from pinecone_rag import EmbeddingsList

__all__ = ["PineconeEmbeddings"]


def _vectors(result: EmbeddingsList) -> list[list[float]]:
    vectors: list[list[float]] = []
    for position, embedding in enumerate(result.data):
        if embedding.values is None:
            raise ValueError(
                f"Model {result.model!r} returned a sparse embedding for input {position}; "
                "PineconeEmbeddings needs a dense model."
            )
        vectors.append(embedding.values.tolist())
    return vectors


class PineconeEmbeddings(BaseModel, Embeddings):
    """Dense embeddings from Pinecone's Inference API, sync and async, batched.

    Args:
        model: The embedding model, e.g. ``multilingual-e5-large`` (Pinecone) or ``all-minilm-l6-v2``
            (the local engine).
        client: A ``PineconeClient`` (default: one built from ``api_key`` / ``host`` / the environment).
        async_client: An ``AsyncPineconeClient`` for the async methods (default: one per call, built like
            ``client``, so no connection outlives its event loop).
        api_key: The API key when no client is given (default: ``PINECONE_API_KEY``).
        host: The control-plane host when no client is given (default: ``PINECONE_CONTROLLER_HOST``).
        batch_size: Texts per request.
        dimension: The expected dimension (checked against every answer when set).
        document_params: Parameters for documents (default ``input_type=passage``, ``truncate=END``).
        query_params: Parameters for queries (default ``input_type=query``, ``truncate=END``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    model: str = "multilingual-e5-large"
    client: PineconeClient | None = Field(default=None, exclude=True)
    async_client: AsyncPineconeClient | None = Field(default=None, exclude=True)
    api_key: str | None = Field(default=None, repr=False, exclude=True)
    host: str | None = None
    batch_size: int = Field(default=96, ge=1)
    dimension: int | None = None
    document_params: dict[str, Any] = Field(
        default_factory=lambda: {"input_type": "passage", "truncate": "END"}
    )
    query_params: dict[str, Any] = Field(default_factory=lambda: {"input_type": "query", "truncate": "END"})

    _own_client: PineconeClient | None = PrivateAttr(default=None)

    def _client(self) -> PineconeClient:
        if self.client is not None:
            return self.client
        if self._own_client is None:
            self._own_client = PineconeClient(self.api_key, self.host)
        return self._own_client

    def _check(self, vectors: list[list[float]]) -> list[list[float]]:
        if self.dimension is not None:
            for vector in vectors:
                if len(vector) != self.dimension:
                    raise ValueError(
                        f"Model {self.model!r} returned {len(vector)} dimensions, expected {self.dimension}."
                    )
        return vectors

    def _embed(self, texts: list[str], parameters: dict[str, Any]) -> list[list[float]]:
        if not texts:
            return []
        result = self._client().inference.embed(self.model, texts, parameters, max_batch=self.batch_size)
        return self._check(_vectors(result))

    async def _aembed(self, texts: list[str], parameters: dict[str, Any]) -> list[list[float]]:
        if not texts:
            return []
        if self.async_client is not None:
            result = await self.async_client.inference.embed(
                self.model, texts, parameters, max_batch=self.batch_size
            )
        else:
            config = self._client().config
            async with AsyncPineconeClient(
                config.api_key,
                config.controller_host,
                timeout=config.timeout,
                retries=config.retries,
                additional_headers=config.additional_headers,
            ) as client:
                result = await client.inference.embed(
                    self.model, texts, parameters, max_batch=self.batch_size
                )
        return self._check(_vectors(result))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embeddings of documents, in order (``document_params``)."""
        return self._embed(list(texts), self.document_params)

    def embed_query(self, text: str) -> list[float]:
        """The embedding of one query (``query_params``)."""
        return self._embed([text], self.query_params)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`."""
        return await self._aembed(list(texts), self.document_params)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query` (with the query parameters)."""
        return (await self._aembed([text], self.query_params))[0]

    def close(self) -> None:
        """Close the client this object built (a client you passed stays open)."""
        if self._own_client is not None:
            self._own_client.close()
            self._own_client = None

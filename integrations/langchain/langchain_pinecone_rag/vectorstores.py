"""``PineconeVectorStore``: a LangChain ``VectorStore`` on pinecone-rag's ``Index`` / ``AsyncIndex``.

Sync methods use the sync index; every ``a``-prefixed method awaits the async index (grpc.aio), never a
thread pool. Constructors make no network calls; the index metric is read on first need (or pass
``metric=``).

Example:
    >>> from pinecone_rag import PineconeClient  # doctest: +SKIP
    >>> pc = PineconeClient.local()  # doctest: +SKIP
    >>> pc.create_index("docs", dimension=384, metric="cosine")  # doctest: +SKIP
    >>> store = PineconeVectorStore(embedding=embeddings, client=pc, index_name="docs")  # doctest: +SKIP
    >>> store.add_texts(["Pinecone stores vectors"], [{"source": "a.md"}])  # doctest: +SKIP
    >>> store.similarity_search("vectors", k=1, filter={"source": "a.md"})  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from typing_extensions import override

from langchain_pinecone_rag._checks import check_k, no_extra
from langchain_pinecone_rag._connections import IndexSource
from langchain_pinecone_rag._documents import fill_ids, record_metadata, to_document
from langchain_pinecone_rag._upserts import LazyRecords
from langchain_pinecone_rag.filters import validate_filter
from langchain_pinecone_rag.hybrid import check_alpha, hybrid_scale
from langchain_pinecone_rag.relevance import relevance_fn
from langchain_pinecone_rag.retrievers import PineconeRetriever

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from types import TracebackType

    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from typing_extensions import Self

    from pinecone_rag import (
        AsyncIndex,
        AsyncPineconeClient,
        Index,
        PineconeClient,
        QueryResponse,
        SparseValues,
    )
    from pinecone_rag.sparse import BM25Encoder

__all__ = ["PineconeVectorStore"]

DEFAULT_MAX_CONCURRENCY = 8
"""Upsert requests in flight at once (the client's default)."""
FETCH_BATCH = 1000
"""Ids per fetch request (Pinecone's limit)."""


class PineconeVectorStore(VectorStore):
    """A LangChain vector store on a Pinecone (or pinecone-rag local) index.

    Args:
        index: A sync ``Index`` (``pc.index(name)``).
        embedding: The ``Embeddings`` for texts and queries.
        async_index: An ``AsyncIndex`` for the a-methods (used as is and never closed by the store).
        client: A ``PineconeClient``; with ``index_name`` it provides the sync index and, per event loop,
            an async one the store opens and closes (``await store.aclose()`` or ``async with store``).
        async_client: An ``AsyncPineconeClient`` (with ``index_name``) for the a-methods.
        index_name: The index name for ``client`` / ``async_client``.
        namespace: The default namespace of every call (a per-call ``namespace=None`` means this one).
        text_key: The metadata field that holds the page content.
        metric: The index metric, if known (otherwise read from the index on first need).
        sparse_encoder: A BM25 encoder: records get sparse values too and ``hybrid_search`` works
            (dotproduct indexes only).
        alpha: The default dense weight of hybrid queries (0 = keyword only, 1 = dense only).
        relevance_score_fn: Maps native scores onto 0..1 (default: by metric, see ``relevance``).
        batch_size: Records per upsert request (default: as many as fit Pinecone's limits).
        max_concurrency: Upsert requests in flight at once.
        embedding_chunk_size: Texts embedded per ``embed_documents`` call while adding.
        show_progress: Progress bar for long upserts (default: in terminals and notebooks).

    Raises:
        ValueError: no embedding, or no way to reach an index.
    """

    def __init__(
        self,
        index: Index | None = None,
        embedding: Embeddings | None = None,
        *,
        async_index: AsyncIndex | None = None,
        client: PineconeClient | None = None,
        async_client: AsyncPineconeClient | None = None,
        index_name: str | None = None,
        namespace: str = "",
        text_key: str = "text",
        metric: str | None = None,
        sparse_encoder: BM25Encoder | None = None,
        alpha: float = 0.5,
        relevance_score_fn: Callable[[float], float] | None = None,
        batch_size: int | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        embedding_chunk_size: int = 1000,
        show_progress: bool | None = None,
    ) -> None:
        if embedding is None:
            raise ValueError("PineconeVectorStore needs an embedding (an Embeddings instance).")
        if not text_key:
            raise ValueError("text_key must be a non-empty field name.")
        self._source = IndexSource(
            index, async_index=async_index, client=client, async_client=async_client, index_name=index_name
        )
        self.embedding = embedding
        self.namespace = namespace
        self.text_key = text_key
        self.sparse_encoder = sparse_encoder
        self.alpha = check_alpha(alpha)
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.embedding_chunk_size = max(1, embedding_chunk_size)
        self.show_progress = show_progress
        self._metric = metric
        self._relevance_score_fn = relevance_score_fn

    # ------------------------------------------------------------------------------------ plumbing
    @property
    @override
    def embeddings(self) -> Embeddings:
        return self.embedding

    @property
    def index(self) -> Index:
        """The sync index."""
        return self._source.index

    async def async_index(self) -> AsyncIndex:
        """The async index for the running event loop."""
        return await self._source.async_index()

    def _ns(self, namespace: str | None) -> str:
        # None means "the store's namespace": a retriever passing namespace=None must not hit "" (#63/#80).
        return self.namespace if namespace is None else namespace

    @property
    def metric(self) -> str:
        """The index metric (read from the index once if not given)."""
        if self._metric is None:
            self._metric = self._lookup_metric(self.index.describe_index_stats().metric)
        return self._metric

    async def ametric(self) -> str:
        """The index metric, read with the async index if not known yet."""
        if self._metric is None:
            index = await self.async_index()
            self._metric = self._lookup_metric((await index.describe_index_stats()).metric)
        return self._metric

    def _lookup_metric(self, reported: str | None) -> str:
        if reported:
            return reported
        client = self._source.client
        if client is not None and self._source.index_name is not None:
            return client.describe_index(self._source.index_name).metric
        raise ValueError("The index did not report its metric; pass metric= to PineconeVectorStore.")

    @override
    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self._relevance_score_fn is not None:
            return self._relevance_score_fn
        return relevance_fn(self.metric)

    def _documents(self, response: QueryResponse) -> list[tuple[Document, float]]:
        return [(to_document(match, self.text_key), match.score) for match in response.matches]

    def _query_args(
        self,
        k: int,
        filter: Mapping[str, Any] | None,  # noqa: A002
        namespace: str | None,
    ) -> dict[str, Any]:
        return {
            "top_k": check_k(k),
            "filter": validate_filter(filter),
            "namespace": self._ns(namespace),
            "include_metadata": True,
        }

    # -------------------------------------------------------------------------------------- writes
    def _prepare(
        self,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
    ) -> tuple[list[str], list[dict[str, Any]], list[str]]:
        text_list = list(texts)
        if metadatas is not None and len(metadatas) != len(text_list):
            raise ValueError(f"Got {len(metadatas)} metadata dicts for {len(text_list)} texts.")
        record_ids = fill_ids(ids, len(text_list))
        # Metadata is checked (and copied) before anything is embedded or sent.
        metadata = [
            record_metadata(None if metadatas is None else metadatas[i], text, self.text_key)
            for i, text in enumerate(text_list)
        ]
        return text_list, metadata, record_ids

    def _chunk_records(
        self,
        texts: list[str],
        metadata: list[dict[str, Any]],
        ids: list[str],
        start: int,
        vectors: list[list[float]],
    ) -> list[dict[str, Any]]:
        stop = start + len(vectors)
        sparse: list[SparseValues] | None = None
        if self.sparse_encoder is not None:
            sparse = self.sparse_encoder.encode_documents(texts[start:stop])
        records: list[dict[str, Any]] = []
        for offset, values in enumerate(vectors):
            position = start + offset
            record: dict[str, Any] = {"id": ids[position], "values": values, "metadata": metadata[position]}
            if sparse is not None and len(sparse[offset].indices):
                record["sparse_values"] = sparse[offset]
            records.append(record)
        return records

    def _upsert_options(
        self, batch_size: int | None, max_concurrency: int | None, show_progress: bool | None
    ) -> dict[str, Any]:
        return {
            "batch_size": batch_size if batch_size is not None else self.batch_size,
            "max_concurrency": max_concurrency if max_concurrency is not None else self.max_concurrency,
            "show_progress": show_progress if show_progress is not None else self.show_progress,
        }

    @override
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        namespace: str | None = None,
        batch_size: int | None = None,
        max_concurrency: int | None = None,
        show_progress: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert ``texts``; returns their ids (given ones kept, missing ones generated).

        Texts are embedded ``embedding_chunk_size`` at a time while earlier chunks are being upserted;
        the client splits the stream into batches and sends ``max_concurrency`` at once.

        Raises:
            ValueError: mismatched lengths or metadata Pinecone cannot store (nothing was sent).
            UpsertError: some records were not written after retries (``failed_ids`` lists them).
        """
        no_extra("add_texts", kwargs)
        text_list, metadata, record_ids = self._prepare(texts, metadatas, ids)
        if not text_list:
            return []
        chunk = self.embedding_chunk_size

        def chunks() -> Iterator[list[dict[str, Any]]]:
            for start in range(0, len(text_list), chunk):
                vectors = self.embedding.embed_documents(text_list[start : start + chunk])
                yield self._chunk_records(text_list, metadata, record_ids, start, vectors)

        result = self.index.upsert(
            LazyRecords(len(text_list), chunks),
            self._ns(namespace),
            **self._upsert_options(batch_size, max_concurrency, show_progress),
        )
        result.raise_for_failures()
        return record_ids

    @override
    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        namespace: str | None = None,
        batch_size: int | None = None,
        max_concurrency: int | None = None,
        show_progress: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async :meth:`add_texts` (``aembed_documents`` and the async index)."""
        no_extra("aadd_texts", kwargs)
        text_list, metadata, record_ids = self._prepare(texts, metadatas, ids)
        if not text_list:
            return []
        index = await self.async_index()
        options = self._upsert_options(batch_size, max_concurrency, show_progress)
        for start in range(0, len(text_list), self.embedding_chunk_size):
            vectors = await self.embedding.aembed_documents(
                text_list[start : start + self.embedding_chunk_size]
            )
            records = self._chunk_records(text_list, metadata, record_ids, start, vectors)
            (await index.upsert(records, self._ns(namespace), **options)).raise_for_failures()
        return record_ids

    @override
    def delete(
        self,
        ids: list[str] | None = None,
        *,
        namespace: str | None = None,
        filter: Mapping[str, Any] | None = None,
        delete_all: bool | None = None,
        **kwargs: Any,
    ) -> bool:
        """Delete by ``ids`` (missing ids are fine), by ``filter``, or everything in the namespace.

        As LangChain's contract says, ``delete()`` with neither ids nor a filter deletes all records of
        the namespace (``delete_all=True`` says so explicitly).

        Returns:
            True (failures raise).
        """
        no_extra("delete", kwargs)
        target = self._ns(namespace)
        if ids is not None:
            if ids:
                self.index.delete(list(ids), namespace=target)
        elif filter is not None:
            self.index.delete(filter=validate_filter(filter), namespace=target)
        elif delete_all is not False:
            self.index.delete(delete_all=True, namespace=target)
        return True

    @override
    async def adelete(
        self,
        ids: list[str] | None = None,
        *,
        namespace: str | None = None,
        filter: Mapping[str, Any] | None = None,
        delete_all: bool | None = None,
        **kwargs: Any,
    ) -> bool:
        """Async :meth:`delete`."""
        no_extra("adelete", kwargs)
        target = self._ns(namespace)
        index = await self.async_index()
        if ids is not None:
            if ids:
                await index.delete(list(ids), namespace=target)
        elif filter is not None:
            await index.delete(filter=validate_filter(filter), namespace=target)
        elif delete_all is not False:
            await index.delete(delete_all=True, namespace=target)
        return True

    # --------------------------------------------------------------------------------------- reads
    @override
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in the order asked; missing ids are left out."""
        return self.get_by_ids_in(ids)

    def get_by_ids_in(self, ids: Sequence[str], namespace: str | None = None) -> list[Document]:
        """:meth:`get_by_ids` in another namespace."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Document] = {}
        for start in range(0, len(wanted), FETCH_BATCH):
            response = self.index.fetch(wanted[start : start + FETCH_BATCH], self._ns(namespace))
            found.update({key: to_document(rec, self.text_key) for key, rec in response.vectors.items()})
        return [found[key] for key in wanted if key in found]

    @override
    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async :meth:`get_by_ids`."""
        return await self.aget_by_ids_in(ids)

    async def aget_by_ids_in(self, ids: Sequence[str], namespace: str | None = None) -> list[Document]:
        """Async :meth:`get_by_ids_in`."""
        wanted = list(dict.fromkeys(ids))
        index = await self.async_index()
        found: dict[str, Document] = {}
        for start in range(0, len(wanted), FETCH_BATCH):
            response = await index.fetch(wanted[start : start + FETCH_BATCH], self._ns(namespace))
            found.update({key: to_document(rec, self.text_key) for key, rec in response.vectors.items()})
        return [found[key] for key in wanted if key in found]

    def similarity_search_by_vector_with_score(
        self,
        embedding: Sequence[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest documents with the index's native score (see ``relevance`` for 0..1)."""
        no_extra("similarity_search_by_vector_with_score", kwargs)
        return self._documents(self.index.query(list(embedding), **self._query_args(k, filter, namespace)))

    async def asimilarity_search_by_vector_with_score(
        self,
        embedding: Sequence[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async :meth:`similarity_search_by_vector_with_score`."""
        no_extra("asimilarity_search_by_vector_with_score", kwargs)
        index = await self.async_index()
        return self._documents(await index.query(list(embedding), **self._query_args(k, filter, namespace)))

    @override
    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The ``k`` documents most similar to ``query`` with native scores.

        Scores are cosine similarity or dot product (higher is better), or the squared euclidean
        distance (lower is better); use ``similarity_search_with_relevance_scores`` for 0..1.
        """
        no_extra("similarity_search_with_score", kwargs)
        vector = self.embedding.embed_query(query)
        return self.similarity_search_by_vector_with_score(vector, k, filter, namespace)

    @override
    async def asimilarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async :meth:`similarity_search_with_score`."""
        no_extra("asimilarity_search_with_score", kwargs)
        vector = await self.embedding.aembed_query(query)
        return await self.asimilarity_search_by_vector_with_score(vector, k, filter, namespace)

    @override
    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The ``k`` documents most similar to ``query``, optionally filtered by metadata.

        Example:
            >>> store.similarity_search("cats", k=2, filter={"year": {"$gte": 2020}})  # doctest: +SKIP
        """
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, namespace, **kwargs)]

    @override
    async def asimilarity_search(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async :meth:`similarity_search`."""
        pairs = await self.asimilarity_search_with_score(query, k, filter, namespace, **kwargs)
        return [doc for doc, _ in pairs]

    @override
    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The ``k`` documents nearest to ``embedding``."""
        pairs = self.similarity_search_by_vector_with_score(embedding, k, filter, namespace, **kwargs)
        return [doc for doc, _ in pairs]

    @override
    async def asimilarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async :meth:`similarity_search_by_vector`."""
        pairs = await self.asimilarity_search_by_vector_with_score(embedding, k, filter, namespace, **kwargs)
        return [doc for doc, _ in pairs]

    @override
    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        # The base class would look the metric up with a sync call inside the event loop.
        if self._relevance_score_fn is None:
            await self.ametric()
        relevance = self._select_relevance_score_fn()
        pairs = await self.asimilarity_search_with_score(query, k, **kwargs)
        return [(doc, relevance(score)) for doc, score in pairs]

    # ---------------------------------------------------------------------------------------- MMR
    def _mmr(
        self, embedding: Sequence[float], response: QueryResponse, k: int, lambda_mult: float
    ) -> list[Document]:
        matches = [match for match in response.matches if match.values is not None]
        if not matches:
            return []
        candidates = [np.asarray(match.values, dtype=np.float64).tolist() for match in matches]
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32),
            candidates,
            lambda_mult=lambda_mult,
            k=min(k, len(matches)),
        )
        return [to_document(matches[position], self.text_key) for position in chosen]

    def _mmr_args(
        self,
        k: int,
        fetch_k: int,
        filter: Mapping[str, Any] | None,  # noqa: A002
        namespace: str | None,
    ) -> dict[str, Any]:
        args = self._query_args(max(check_k(k), fetch_k), filter, namespace)
        args["include_values"] = True
        return args

    @override
    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents chosen from the ``fetch_k`` nearest for relevance and diversity (with ids).

        Args:
            embedding: The query vector.
            k: Documents to return.
            fetch_k: Candidates fetched (with their vectors) to choose from.
            lambda_mult: 1 = pure relevance, 0 = maximal diversity.
            filter: A Pinecone metadata filter.
            namespace: The namespace (default: the store's).
            **kwargs: Not accepted (a TypeError names them).
        """
        no_extra("max_marginal_relevance_search_by_vector", kwargs)
        response = self.index.query(list(embedding), **self._mmr_args(k, fetch_k, filter, namespace))
        return self._mmr(embedding, response, k, lambda_mult)

    @override
    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async :meth:`max_marginal_relevance_search_by_vector`."""
        no_extra("amax_marginal_relevance_search_by_vector", kwargs)
        index = await self.async_index()
        response = await index.query(list(embedding), **self._mmr_args(k, fetch_k, filter, namespace))
        return self._mmr(embedding, response, k, lambda_mult)

    @override
    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR for a text query; see :meth:`max_marginal_relevance_search_by_vector`."""
        return self.max_marginal_relevance_search_by_vector(
            self.embedding.embed_query(query), k, fetch_k, lambda_mult, filter, namespace, **kwargs
        )

    @override
    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async :meth:`max_marginal_relevance_search`."""
        vector = await self.embedding.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter, namespace, **kwargs
        )

    # ------------------------------------------------------------------------------------- hybrid
    def _hybrid_query(self, metric: str, dense: Sequence[float], query: str, alpha: float | None) -> Any:
        if self.sparse_encoder is None:
            raise ValueError("Hybrid search needs a sparse encoder: PineconeVectorStore(sparse_encoder=...).")
        if metric != "dotproduct":
            raise ValueError(
                f"Hybrid search needs a dotproduct index (dense and sparse scores add up only under a dot "
                f"product); this index uses {metric}."
            )
        sparse = self.sparse_encoder.encode_queries(query)
        return hybrid_scale(dense, sparse, self.alpha if alpha is None else alpha)

    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        alpha: float | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        namespace: str | None = None,
    ) -> list[tuple[Document, float]]:
        """Dense + BM25 search: scores are ``alpha * dense + (1 - alpha) * sparse`` (higher is better).

        Raises:
            ValueError: no sparse encoder, alpha outside 0..1, or an index that is not dotproduct.
        """
        args = self._query_args(k, filter, namespace)  # validate before embedding
        dense, sparse = self._hybrid_query(self.metric, self.embedding.embed_query(query), query, alpha)
        return self._documents(self.index.query(dense, sparse_vector=sparse, **args))

    async def ahybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        alpha: float | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        namespace: str | None = None,
    ) -> list[tuple[Document, float]]:
        """Async :meth:`hybrid_search_with_score`."""
        args = self._query_args(k, filter, namespace)
        metric = await self.ametric()
        dense, sparse = self._hybrid_query(metric, await self.embedding.aembed_query(query), query, alpha)
        index = await self.async_index()
        return self._documents(await index.query(dense, sparse_vector=sparse, **args))

    def hybrid_search(
        self,
        query: str,
        k: int = 4,
        *,
        alpha: float | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        namespace: str | None = None,
    ) -> list[Document]:
        """The ``k`` best documents by dense + BM25 score; see :meth:`hybrid_search_with_score`."""
        pairs = self.hybrid_search_with_score(query, k, alpha=alpha, filter=filter, namespace=namespace)
        return [doc for doc, _ in pairs]

    async def ahybrid_search(
        self,
        query: str,
        k: int = 4,
        *,
        alpha: float | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        namespace: str | None = None,
    ) -> list[Document]:
        """Async :meth:`hybrid_search`."""
        pairs = await self.ahybrid_search_with_score(
            query, k, alpha=alpha, filter=filter, namespace=namespace
        )
        return [doc for doc, _ in pairs]

    @override
    def search(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """Like ``VectorStore.search``, plus ``search_type="hybrid"``."""
        if search_type == "hybrid":
            return self.hybrid_search(query, **kwargs)
        return super().search(query, search_type, **kwargs)

    @override
    async def asearch(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """Async :meth:`search`."""
        if search_type == "hybrid":
            return await self.ahybrid_search(query, **kwargs)
        return await super().asearch(query, search_type, **kwargs)

    @override
    def as_retriever(self, **kwargs: Any) -> PineconeRetriever:
        """A retriever; ``search_type`` may also be ``"hybrid"`` (``search_kwargs``: k, alpha, filter)."""
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return PineconeRetriever(vectorstore=self, tags=tags, **kwargs)

    # ------------------------------------------------------------------------------- constructors
    @classmethod
    @override
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """A store on an existing index, filled with ``texts``.

        ``kwargs`` are the constructor's (``index=`` or ``client=`` + ``index_name=``, ``namespace=``,
        ``text_key=``, ``sparse_encoder=`` ...) plus ``batch_size`` / ``max_concurrency`` /
        ``show_progress`` for the upsert. An unfitted sparse encoder is fitted on ``texts`` first.
        """
        upsert = {
            key: kwargs.pop(key)
            for key in ("batch_size", "max_concurrency", "show_progress")
            if key in kwargs
        }
        store = cls(embedding=embedding, **kwargs)
        store._fit_encoder(texts)
        store.add_texts(texts, metadatas, ids=ids, **upsert)
        return store

    @classmethod
    @override
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Async :meth:`from_texts` (no sync call on the way)."""
        upsert = {
            key: kwargs.pop(key)
            for key in ("batch_size", "max_concurrency", "show_progress")
            if key in kwargs
        }
        store = cls(embedding=embedding, **kwargs)
        store._fit_encoder(texts)
        await store.aadd_texts(texts, metadatas, ids=ids, **upsert)
        return store

    def _fit_encoder(self, texts: list[str]) -> None:
        if self.sparse_encoder is not None and not self.sparse_encoder.document_count:
            self.sparse_encoder.fit(texts)

    @classmethod
    def from_existing_index(
        cls,
        index_name: str,
        embedding: Embeddings,
        *,
        client: PineconeClient | None = None,
        async_client: AsyncPineconeClient | None = None,
        **kwargs: Any,
    ) -> PineconeVectorStore:
        """A store on the existing index ``index_name`` (nothing is contacted until the first call)."""
        return cls(
            embedding=embedding, client=client, async_client=async_client, index_name=index_name, **kwargs
        )

    # ---------------------------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        """Close the async connection the store opened for the running loop (yours stay open)."""
        await self._source.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

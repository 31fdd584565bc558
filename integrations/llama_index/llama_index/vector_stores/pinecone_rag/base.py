"""``PineconeVectorStore``: a LlamaIndex vector store over pinecone-rag's ``Index`` / ``AsyncIndex``.

Records are keyed by the LlamaIndex node id, so ``get_nodes`` / ``delete_nodes`` find exactly what ``add``
wrote, and ``delete(ref_doc_id)`` deletes by the ``doc_id`` metadata key (an exact match, never an id prefix).
Every async method is native, over ``AsyncIndex`` (grpc.aio): none of them blocks the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import MetadataMode
from llama_index.core.vector_stores.types import BasePydanticVectorStore, VectorStoreQueryResult

from llama_index.vector_stores.pinecone_rag.filters import and_filters, to_pinecone_filter
from llama_index.vector_stores.pinecone_rag.metadata import (
    NODE_ID_KEY,
    REF_DOC_KEY,
    NestedMetadata,
    metadata_to_node,
    node_to_metadata,
)
from llama_index.vector_stores.pinecone_rag.query import IndexInfo, plan_query
from llama_index.vector_stores.pinecone_rag.sparse import SparseEncoder, as_sparse_encoder
from pinecone_rag import AsyncPineconeClient, PineconeClient
from pinecone_rag import UpsertError as CoreUpsertError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llama_index.core.schema import BaseNode
    from llama_index.core.vector_stores.types import MetadataFilters, VectorStoreQuery

    from llama_index.vector_stores.pinecone_rag.filters import FilterTree
    from pinecone_rag import AsyncIndex, FetchResponse, Index, UpsertResult

__all__ = ["PineconeVectorStore", "UpsertError"]

FETCH_BATCH: Final = 1000
"""Ids per fetch request (Pinecone's limit)."""


class UpsertError(CoreUpsertError, RuntimeError):
    """Some nodes were not written after the client's retries; ``failed_ids`` lists them.

    The client's :class:`pinecone_rag.UpsertError` (and still a ``RuntimeError``, as it was before the
    client had one).
    """


class PineconeVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on Pinecone (cloud or the local pinecone-rag engine).

    Build it from an ``Index`` and/or ``AsyncIndex`` (sync methods need the first, async methods the
    second), or from ``index_name`` with a ``client`` / ``async_client``, or with ``api_key`` and ``host``
    (clients are then created on first use; the key is never serialised).

    Args:
        index: A sync ``Index`` from ``PineconeClient.index``.
        async_index: An ``AsyncIndex`` from ``await AsyncPineconeClient.index``.
        index_name: The index name, when the store gets its indexes from clients.
        client: A ``PineconeClient`` to get the sync index from.
        async_client: An ``AsyncPineconeClient`` to get the async index from.
        api_key: Builds clients when none is given (default: ``PINECONE_API_KEY``).
        host: The control plane those clients talk to (default: Pinecone's cloud).
        namespace: The default namespace; every method also takes ``namespace=`` per call.
        text_key: Where the text is stored when ``remove_text_from_metadata`` is set.
        batch_size: Records per upsert request (default: as many as fit in 2 MB and 1000 records).
        remove_text_from_metadata: Keep the text once, under ``text_key``, instead of inside
            ``_node_content`` (it is restored on read either way).
        nested_metadata: ``"error"`` rejects nested metadata, ``"flatten"`` stores it as dotted keys.
        sparse_encoder: Enables SPARSE/HYBRID: a ``BM25Encoder`` (``True`` makes an unfitted one), any object
            with ``encode_documents``/``encode_queries``, or a LlamaIndex ``BaseSparseEmbedding``. Documents
            added through the store get sparse values too.

    Example:
        >>> pc = PineconeClient.local()  # doctest: +SKIP
        >>> pc.create_index("docs", dimension=384, metric="cosine")  # doctest: +SKIP
        >>> store = PineconeVectorStore(pc.index("docs"), namespace="books")  # doctest: +SKIP
        >>> storage = StorageContext.from_defaults(vector_store=store)  # doctest: +SKIP
        >>> index = VectorStoreIndex.from_documents(documents, storage_context=storage)  # doctest: +SKIP
    """

    stores_text: bool = True
    flat_metadata: bool = False
    index_name: str | None = None
    host: str | None = None
    namespace: str = ""
    text_key: str = "text"
    batch_size: int | None = None
    remove_text_from_metadata: bool = False
    nested_metadata: NestedMetadata = "error"
    add_sparse_vector: bool = Field(default=False, description="Whether added nodes get sparse values.")

    _index: Index | None = PrivateAttr(default=None)
    _async_index: AsyncIndex | None = PrivateAttr(default=None)
    _client: PineconeClient | None = PrivateAttr(default=None)
    _async_client: AsyncPineconeClient | None = PrivateAttr(default=None)
    _owned: list[PineconeClient | AsyncPineconeClient] = PrivateAttr(default_factory=list)
    _api_key: str | None = PrivateAttr(default=None)
    _sparse_encoder: SparseEncoder | None = PrivateAttr(default=None)
    _info: IndexInfo | None = PrivateAttr(default=None)

    def __init__(
        self,
        index: Index | None = None,
        *,
        async_index: AsyncIndex | None = None,
        index_name: str | None = None,
        client: PineconeClient | None = None,
        async_client: AsyncPineconeClient | None = None,
        api_key: str | None = None,
        host: str | None = None,
        namespace: str = "",
        text_key: str = "text",
        batch_size: int | None = None,
        remove_text_from_metadata: bool = False,
        nested_metadata: NestedMetadata = "error",
        sparse_encoder: Any = None,
        **kwargs: Any,
    ) -> None:
        encoder = as_sparse_encoder(sparse_encoder)
        # Passed as a dict: the pydantic base's typed __init__ does not know this class's fields.
        fields: dict[str, Any] = {
            "index_name": index_name or (index.name if index is not None else None),
            "host": host,
            "namespace": namespace,
            "text_key": text_key,
            "batch_size": batch_size,
            "remove_text_from_metadata": remove_text_from_metadata,
            "nested_metadata": nested_metadata,
            "add_sparse_vector": encoder is not None,
        }
        super().__init__(**fields, **kwargs)
        if index is None and async_index is None and self.index_name is None:
            raise ValueError(
                "PineconeVectorStore needs index=, async_index=, or index_name= (with a client)."
            )
        self._index = index
        self._async_index = async_index
        self._client = client
        self._async_client = async_client
        self._api_key = api_key
        self._sparse_encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        """The name ``to_dict`` / ``from_dict`` record."""
        return "PineconeRagVectorStore"

    @property
    def client(self) -> Any:
        """The sync ``Index`` (or the ``AsyncIndex`` when the store has only that)."""
        return self._index if self._index is not None else self._async_index

    @property
    def sparse_encoder(self) -> SparseEncoder | None:
        """The sparse encoder used for SPARSE and HYBRID, if any."""
        return self._sparse_encoder

    # ------------------------------------------------------------------------------------ connections
    def _sync(self) -> Index:
        if self._index is None:
            if self.index_name is None:
                raise ValueError(
                    "This store was built with an AsyncIndex only: use the async methods (aquery, async_add, "
                    "...) or pass index= / client= for sync calls."
                )
            if self._client is None:
                self._client = PineconeClient(api_key=self._api_key, host=self.host)
                self._owned.append(self._client)
            self._index = self._client.index(self.index_name)
        return self._index

    async def _async(self) -> AsyncIndex:
        if self._async_index is None:
            if self.index_name is None:
                raise ValueError(
                    "This store was built with a sync Index only: use the sync methods or pass async_index= "
                    "/ async_client= for async calls."
                )
            if self._async_client is None:
                self._async_client = AsyncPineconeClient(api_key=self._api_key, host=self.host)
                self._owned.append(self._async_client)
            self._async_index = await self._async_client.index(self.index_name)
        return self._async_index

    def _index_info(self) -> IndexInfo:
        if self._info is None:
            stats = self._sync().describe_index_stats()
            self._info = IndexInfo(stats.metric or "cosine", stats.dimension, stats.vector_type or "dense")
        return self._info

    async def _aindex_info(self) -> IndexInfo:
        if self._info is None:
            stats = await (await self._async()).describe_index_stats()
            self._info = IndexInfo(stats.metric or "cosine", stats.dimension, stats.vector_type or "dense")
        return self._info

    def close(self) -> None:
        """Close the sync client this store created (clients passed in are left to their owner)."""
        for owned in list(self._owned):
            if isinstance(owned, PineconeClient):
                owned.close()
                self._owned.remove(owned)

    async def aclose(self) -> None:
        """Close every client this store created."""
        for owned in list(self._owned):
            if isinstance(owned, AsyncPineconeClient):
                await owned.aclose()
            else:
                owned.close()
        self._owned.clear()

    def _ns(self, kwargs: dict[str, Any]) -> str:
        namespace = kwargs.pop("namespace", None)
        return self.namespace if namespace is None else str(namespace)

    # ------------------------------------------------------------------------------------------ write
    def _records(self, nodes: Sequence[BaseNode], info: IndexInfo) -> list[dict[str, Any]]:
        encoder = self._sparse_encoder
        if info.vector_type == "sparse" and encoder is None:
            raise ValueError("The index is sparse: build the store with a sparse_encoder to add nodes.")
        sparse = (
            encoder.encode_documents([node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes])
            if encoder is not None
            else None
        )
        records: list[dict[str, Any]] = []
        for position, node in enumerate(nodes):
            record: dict[str, Any] = {
                "id": node.node_id,
                "metadata": node_to_metadata(
                    node,
                    text_key=self.text_key,
                    remove_text=self.remove_text_from_metadata,
                    nested=self.nested_metadata,
                ),
            }
            if info.vector_type != "sparse":
                if node.embedding is None:
                    raise ValueError(
                        f"Node {node.node_id!r} has no embedding; embed nodes before adding them "
                        "(VectorStoreIndex and IngestionPipeline with an embed model do)."
                    )
                record["values"] = node.embedding
            if sparse is not None:
                record["sparse_values"] = sparse[position]
            records.append(record)
        return records

    @staticmethod
    def _check_upsert(result: UpsertResult) -> None:
        if result.failed:
            raise UpsertError(
                f"Nodes: {result.describe_failures()}", result.failed_ids, result.upserted_count
            ) from result.failed[0].error

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Write nodes (with their embeddings) and return their node ids.

        Args:
            nodes: Nodes with embeddings (and text); a sparse encoder, if set, encodes their text.
            **add_kwargs: ``namespace`` overrides the store's namespace.

        Raises:
            ValueError: A node without an embedding, with metadata Pinecone cannot store, or over 40 KB.
            UpsertError: Some batches failed after retries.
        """
        if not nodes:
            return []
        namespace = self._ns(add_kwargs)
        records = self._records(nodes, self._index_info())
        result = self._sync().upsert(records, namespace, batch_size=self.batch_size, show_progress=False)
        self._check_upsert(result)
        return [node.node_id for node in nodes]

    async def async_add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Write nodes over the async client; see :meth:`add`."""
        if not nodes:
            return []
        namespace = self._ns(add_kwargs)
        records = self._records(nodes, await self._aindex_info())
        index = await self._async()
        result = await index.upsert(records, namespace, batch_size=self.batch_size, show_progress=False)
        self._check_upsert(result)
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id`` (exact match: deleting doc1 keeps doc10)."""
        namespace = self._ns(delete_kwargs)
        self._sync().delete(filter={REF_DOC_KEY: {"$eq": ref_doc_id}}, namespace=namespace)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of a document over the async client; see :meth:`delete`."""
        namespace = self._ns(delete_kwargs)
        index = await self._async()
        await index.delete(filter={REF_DOC_KEY: {"$eq": ref_doc_id}}, namespace=namespace)

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete nodes by id, by filters, or those of ``node_ids`` that match ``filters``.

        An empty ``node_ids`` list deletes nothing.

        Raises:
            ValueError: Neither argument given, or filters that match every record (use :meth:`clear`).
        """
        namespace = self._ns(delete_kwargs)
        plan = _delete_plan(node_ids, filters)
        if plan is None:
            return
        ids, where = plan
        index = self._sync()
        if ids is not None:
            index.delete(ids, namespace=namespace)
        else:
            index.delete(filter=where, namespace=namespace)

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete nodes over the async client; see :meth:`delete_nodes`."""
        namespace = self._ns(delete_kwargs)
        plan = _delete_plan(node_ids, filters)
        if plan is None:
            return
        ids, where = plan
        index = await self._async()
        if ids is not None:
            await index.delete(ids, namespace=namespace)
        else:
            await index.delete(filter=where, namespace=namespace)

    def clear(self, *, namespace: str | None = None) -> None:
        """Delete every record of the namespace."""
        self._sync().delete(delete_all=True, namespace=self.namespace if namespace is None else namespace)

    async def aclear(self, *, namespace: str | None = None) -> None:
        """Delete every record of the namespace over the async client."""
        index = await self._async()
        await index.delete(delete_all=True, namespace=self.namespace if namespace is None else namespace)

    # ------------------------------------------------------------------------------------------- read
    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Run a DEFAULT, SPARSE, HYBRID or MMR query (other modes raise ``UnsupportedQueryError``).

        Args:
            query: The query; non-empty ``node_ids`` / ``doc_ids`` restrict it, empty lists do not.
            **kwargs: ``namespace`` (overrides the store's), ``filter`` (a raw Pinecone filter, AND-ed with
                ``query.filters``), ``include_values`` (return embeddings), ``mmr_threshold`` (when the query
                has none) and ``mmr_prefetch_k`` (candidates MMR re-ranks).
        """
        namespace = self._ns(kwargs)
        plan = plan_query(
            query,
            info=self._index_info(),
            sparse_encoder=self._sparse_encoder,
            text_key=self.text_key,
            kwargs=kwargs,
        )
        if plan.filter is False:
            return plan.empty()
        response = self._sync().query(
            plan.vector,
            top_k=plan.top_k,
            namespace=namespace,
            filter=plan.filter_dict,
            include_values=plan.include_values,
            include_metadata=True,
            sparse_vector=plan.sparse_vector,
        )
        return plan.result(response)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Run a query over the async client; see :meth:`query`."""
        namespace = self._ns(kwargs)
        plan = plan_query(
            query,
            info=await self._aindex_info(),
            sparse_encoder=self._sparse_encoder,
            text_key=self.text_key,
            kwargs=kwargs,
        )
        if plan.filter is False:
            return plan.empty()
        index = await self._async()
        response = await index.query(
            plan.vector,
            top_k=plan.top_k,
            namespace=namespace,
            filter=plan.filter_dict,
            include_values=plan.include_values,
            include_metadata=True,
            sparse_vector=plan.sparse_vector,
        )
        return plan.result(response)

    def get_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        *,
        namespace: str | None = None,
    ) -> list[BaseNode]:
        """Nodes by id (in that order), by filters (every match, page after page), or both.

        With neither, every node of the namespace. Nodes come back with their embeddings.
        """
        ns = self.namespace if namespace is None else namespace
        index = self._sync()
        where = _get_filter(node_ids, filters)
        if where is False:
            return []
        responses: list[FetchResponse] = []
        order: list[str] | None = None
        if isinstance(where, dict):
            token: str | None = None
            while True:
                page = index.fetch_by_metadata(where, ns, pagination_token=token)
                responses.append(page)
                token = page.next_token
                if not token:
                    break
        else:
            ids = node_ids if node_ids is not None else [i for page in index.list(namespace=ns) for i in page]
            order = ids
            responses.extend(
                index.fetch(ids[start : start + FETCH_BATCH], ns) for start in range(0, len(ids), FETCH_BATCH)
            )
        return self._fetched_nodes(responses, order)

    async def aget_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        *,
        namespace: str | None = None,
    ) -> list[BaseNode]:
        """Nodes by id and/or filters over the async client; see :meth:`get_nodes`."""
        ns = self.namespace if namespace is None else namespace
        index = await self._async()
        where = _get_filter(node_ids, filters)
        if where is False:
            return []
        responses: list[FetchResponse] = []
        order: list[str] | None = None
        if isinstance(where, dict):
            token: str | None = None
            while True:
                page = await index.fetch_by_metadata(where, ns, pagination_token=token)
                responses.append(page)
                token = page.next_token
                if not token:
                    break
        else:
            if node_ids is not None:
                ids = node_ids
            else:
                ids = [i async for page in index.list(namespace=ns) for i in page]
            order = ids
            for start in range(0, len(ids), FETCH_BATCH):
                responses.append(await index.fetch(ids[start : start + FETCH_BATCH], ns))  # noqa: PERF401
        return self._fetched_nodes(responses, order)

    def _fetched_nodes(self, responses: list[FetchResponse], order: list[str] | None) -> list[BaseNode]:
        vectors = {record_id: v for response in responses for record_id, v in response.vectors.items()}
        ids = [i for i in order if i in vectors] if order is not None else list(vectors)
        nodes: list[BaseNode] = []
        for record_id in dict.fromkeys(ids):
            vector = vectors[record_id]
            node = metadata_to_node(vector.metadata or {}, record_id=record_id, text_key=self.text_key)
            if vector.values is not None and len(vector.values):
                node.embedding = vector.values.tolist()
            nodes.append(node)
        return nodes


def _get_filter(node_ids: list[str] | None, filters: MetadataFilters | None) -> FilterTree:
    """False: nothing to fetch; True: fetch by ids (or everything); a dict: fetch by metadata."""
    if node_ids is not None and not node_ids:
        return False
    where = to_pinecone_filter(filters)
    if where is True or where is False:
        return where
    return and_filters(where, {NODE_ID_KEY: {"$in": list(node_ids)}} if node_ids else True)


def _delete_plan(
    node_ids: list[str] | None, filters: MetadataFilters | None
) -> tuple[list[str] | None, dict[str, Any] | None] | None:
    """(ids, None) to delete by id, (None, filter) to delete by filter, or None when nothing matches."""
    if node_ids is None and filters is None:
        raise ValueError("delete_nodes needs node_ids or filters; use clear() to delete everything.")
    if node_ids is not None and not node_ids:
        return None
    where = to_pinecone_filter(filters)
    if where is False:
        return None
    if where is True:
        if node_ids is None:
            raise ValueError("These filters match every record; use clear() to delete everything.")
        return list(node_ids), None
    combined = and_filters(where, {NODE_ID_KEY: {"$in": list(node_ids)}} if node_ids else True)
    assert isinstance(combined, dict)
    return None, combined

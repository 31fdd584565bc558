"""``AsyncIndex``: the asyncio twin of :class:`~pinecone_rag.client.index.Index` (same API)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pinecone_rag.client import _ops
from pinecone_rag.client._batching import arun_batches, progress_bar
from pinecone_rag.client._common import (
    DEFAULT_MAX_CONCURRENCY,
    check_query,
    merge_namespace_results,
    sparse_arg,
    total_hint,
    upsert_batches,
    vector_arg,
)
from pinecone_rag.client._records import records_from_dataframe
from pinecone_rag.client.integrated import SearchRecordsOp, UpsertRecordsOp, record_batches
from pinecone_rag.client.transport import AsyncRestTransport
from pinecone_rag.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence
    from types import TracebackType

    from pinecone_rag.client._records import RecordBatch
    from pinecone_rag.client.transport import AsyncGrpcTransport
    from pinecone_rag.models import (
        FetchResponse,
        IndexStats,
        ListNamespacesResponse,
        ListResponse,
        NamespaceDescription,
        QueryResponse,
        SearchRecordsResponse,
        UpdateResult,
        UpsertResult,
    )


class AsyncIndex:
    """The data plane of one index with real async I/O (grpc.aio or httpx.AsyncClient).

    Example:
        >>> async with AsyncPineconeClient() as pc:  # doctest: +SKIP
        ...     index = await pc.index("docs")
        ...     result = await index.query([0.1, 0.2, 0.3], top_k=3)
    """

    def __init__(
        self,
        transport: AsyncGrpcTransport | AsyncRestTransport,
        *,
        name: str | None = None,
        owns_transport: bool = True,
        records_transport: AsyncRestTransport | None = None,
    ) -> None:
        self.name = name
        self._transport = transport
        self._owns_transport = owns_transport
        self._records_transport = records_transport

    def __repr__(self) -> str:
        kind = type(self._transport).__name__.removeprefix("Async").removesuffix("Transport").lower()
        return f"AsyncIndex(name={self.name!r}, transport={kind!r})"

    # ------------------------------------------------------------------------------------------ writes
    async def upsert(
        self,
        vectors: Any,
        namespace: str = "",
        *,
        ids: Sequence[str] | None = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        show_progress: bool | None = None,
        timeout: float | None = None,
    ) -> UpsertResult:
        """Write records in batches, several at a time, retrying each on its own; see :meth:`Index.upsert`."""
        batches = upsert_batches(
            vectors,
            ids=ids,
            metadata=metadata,
            batch_size=batch_size,
            max_batch_bytes=self._transport.max_upsert_bytes,
        )

        async def send(batch: RecordBatch) -> int:
            return await self._transport.call(_ops.UpsertOp(batch, namespace), timeout)

        with progress_bar(total_hint(vectors), show_progress, "upsert") as advance:
            return await arun_batches(batches, send, max_concurrency=max_concurrency, on_progress=advance)

    async def upsert_from_dataframe(
        self,
        df: Any,
        namespace: str = "",
        *,
        batch_size: int | None = 500,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        show_progress: bool | None = None,
    ) -> UpsertResult:
        """Upsert a pandas DataFrame; see :meth:`Index.upsert_from_dataframe`."""
        return await self.upsert(
            records_from_dataframe(df),
            namespace,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            show_progress=show_progress,
        )

    async def update(
        self,
        id: str | None = None,  # noqa: A002
        *,
        values: Any = None,
        sparse_values: Any = None,
        set_metadata: Mapping[str, Any] | None = None,
        namespace: str = "",
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        dry_run: bool = False,
    ) -> UpdateResult:
        """Update one record by id, or metadata by filter; see :meth:`Index.update`."""
        op = _ops.UpdateOp(
            id, vector_arg(values), sparse_arg(sparse_values), set_metadata, namespace, filter, dry_run
        )
        return await self._transport.call(op)

    async def delete(
        self,
        ids: Sequence[str] | None = None,
        *,
        delete_all: bool = False,
        namespace: str = "",
        filter: Mapping[str, Any] | None = None,  # noqa: A002
    ) -> None:
        """Delete by ids, by filter, or everything; see :meth:`Index.delete`."""
        if ids is not None and len(ids) > 1000:
            for start in range(0, len(ids), 1000):
                await self._transport.call(_ops.DeleteOp(list(ids[start : start + 1000]), False, namespace))
            return
        await self._transport.call(_ops.DeleteOp(ids, delete_all, namespace, filter))

    # ------------------------------------------------------------------------------------------- reads
    async def query(
        self,
        vector: Any = None,
        *,
        id: str | None = None,  # noqa: A002
        top_k: int = 10,
        namespace: str = "",
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        include_values: bool = False,
        include_metadata: bool = False,
        sparse_vector: Any = None,
        scan_factor: float | None = None,
        max_candidates: int | None = None,
        timeout: float | None = None,
    ) -> QueryResponse:
        """The ``top_k`` most similar records; see :meth:`Index.query`."""
        check_query(vector, id, sparse_vector)
        op = _ops.QueryOp(
            top_k,
            vector_arg(vector),
            id,
            sparse_arg(sparse_vector),
            namespace,
            filter,
            include_values,
            include_metadata,
            scan_factor,
            max_candidates,
        )
        return await self._transport.call(op, timeout)

    async def query_namespaces(
        self,
        vector: Any,
        namespaces: Sequence[str],
        metric: str,
        *,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        include_values: bool = False,
        include_metadata: bool = False,
        sparse_vector: Any = None,
    ) -> QueryResponse:
        """Query several namespaces concurrently and merge; see :meth:`Index.query_namespaces`."""
        results = await asyncio.gather(
            *(
                self.query(
                    vector,
                    top_k=top_k,
                    namespace=namespace,
                    filter=filter,
                    include_values=include_values,
                    include_metadata=include_metadata,
                    sparse_vector=sparse_vector,
                )
                for namespace in dict.fromkeys(namespaces)
            )
        )
        return merge_namespace_results(results, metric=metric, top_k=top_k)

    async def fetch(
        self, ids: Sequence[str], namespace: str = "", *, timeout: float | None = None
    ) -> FetchResponse:
        """Records by id; see :meth:`Index.fetch`."""
        return await self._transport.call(_ops.FetchOp(list(ids), namespace), timeout)

    async def fetch_by_metadata(
        self,
        filter: Mapping[str, Any],  # noqa: A002
        namespace: str = "",
        *,
        limit: int | None = None,
        pagination_token: str | None = None,
    ) -> FetchResponse:
        """Records matching a filter, a page at a time; see :meth:`Index.fetch_by_metadata`."""
        return await self._transport.call(_ops.FetchByMetadataOp(filter, namespace, limit, pagination_token))

    async def list_paginated(
        self,
        prefix: str | None = None,
        *,
        namespace: str = "",
        limit: int | None = None,
        pagination_token: str | None = None,
    ) -> ListResponse:
        """One page of ids in bitwise order."""
        return await self._transport.call(_ops.ListOp(prefix, limit, pagination_token, namespace))

    async def list(
        self, prefix: str | None = None, *, namespace: str = "", limit: int | None = None
    ) -> AsyncIterator[list[str]]:
        """Every id, one page at a time (``async for page in index.list(): ...``)."""
        token: str | None = None
        while True:
            page = await self.list_paginated(prefix, namespace=namespace, limit=limit, pagination_token=token)
            if page.ids:
                yield page.ids
            token = page.next_token
            if not token:
                return

    async def describe_index_stats(self, filter: Mapping[str, Any] | None = None) -> IndexStats:  # noqa: A002
        """Record counts per namespace, the dimension and the metric."""
        return await self._transport.call(_ops.StatsOp(filter))

    # ----------------------------------------------------------------------------- integrated indexes
    def _records(self) -> AsyncRestTransport:
        if isinstance(self._transport, AsyncRestTransport):
            return self._transport
        if self._records_transport is None:
            raise ConfigurationError(
                "The records API is REST only: get this index from AsyncPineconeClient.index() (or pass "
                "records_transport=) to use upsert_records and search."
            )
        return self._records_transport

    async def upsert_records(
        self, namespace: str, records: Sequence[Mapping[str, Any]], *, timeout: float | None = None
    ) -> None:
        """Upsert text records into an integrated index; see :meth:`Index.upsert_records`."""
        transport = self._records()
        for batch in record_batches(records):
            await transport.call(UpsertRecordsOp(namespace, batch), timeout)

    async def search(
        self,
        namespace: str,
        query: Mapping[str, Any],
        *,
        fields: Sequence[str] | None = None,
        rerank: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> SearchRecordsResponse:
        """Search an integrated index by text, optionally reranking; see :meth:`Index.search`."""
        return await self._records().call(SearchRecordsOp(namespace, query, fields, rerank), timeout)

    # -------------------------------------------------------------------------------------- namespaces
    async def list_namespaces_paginated(
        self, prefix: str | None = None, *, limit: int | None = None, pagination_token: str | None = None
    ) -> ListNamespacesResponse:
        """One page of namespaces."""
        return await self._transport.call(_ops.ListNamespacesOp(prefix, limit, pagination_token))

    async def list_namespaces(
        self, prefix: str | None = None, *, limit: int | None = None
    ) -> AsyncIterator[NamespaceDescription]:
        """Every namespace, following pages as needed."""
        token: str | None = None
        while True:
            page = await self.list_namespaces_paginated(prefix, limit=limit, pagination_token=token)
            for namespace in page.namespaces:
                yield namespace
            token = page.next_token
            if not token:
                return

    async def describe_namespace(self, namespace: str) -> NamespaceDescription:
        """A namespace's record count and schema."""
        return await self._transport.call(_ops.DescribeNamespaceOp(namespace))

    async def create_namespace(
        self, name: str, schema: Mapping[str, Any] | None = None
    ) -> NamespaceDescription:
        """Create an empty namespace, optionally with a metadata schema."""
        return await self._transport.call(_ops.CreateNamespaceOp(name, schema))

    async def delete_namespace(self, namespace: str) -> None:
        """Delete a namespace and all its records."""
        await self._transport.call(_ops.DeleteNamespaceOp(namespace))

    # --------------------------------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        """Release the connection (if this index owns it)."""
        if self._owns_transport:
            await self._transport.aclose()

    async def __aenter__(self) -> AsyncIndex:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

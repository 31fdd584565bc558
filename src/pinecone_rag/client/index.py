"""``Index``: the data plane of one index (sync). ``AsyncIndex`` in ``async_index.py`` is its twin."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pinecone_rag.client import _ops
from pinecone_rag.client._batching import progress_bar, run_batches
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
from pinecone_rag.client.transport import RestTransport
from pinecone_rag.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import TracebackType

    from pinecone_rag.client._records import RecordBatch
    from pinecone_rag.client.transport import GrpcTransport
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


class Index:
    """Upsert, query, fetch, update, delete and list the records of one index.

    Get one from :meth:`PineconeClient.index`; it is safe to share between threads.

    Example:
        >>> index = pc.index("docs")  # doctest: +SKIP
        >>> index.upsert([("a", [0.1, 0.2, 0.3], {"source": "a.md"})])  # doctest: +SKIP
        >>> index.query([0.1, 0.2, 0.3], top_k=3, include_metadata=True).matches  # doctest: +SKIP
    """

    def __init__(
        self,
        transport: GrpcTransport | RestTransport,
        *,
        name: str | None = None,
        owns_transport: bool = True,
        records_transport: RestTransport | None = None,
    ) -> None:
        self.name = name
        self._transport = transport
        # The client shares one channel per host between Index objects; only an owner may close it.
        self._owns_transport = owns_transport
        # The records API is REST only: a gRPC index reaches it through the same host's REST transport.
        self._records_transport = records_transport
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        kind = type(self._transport).__name__.removesuffix("Transport").lower()
        return f"Index(name={self.name!r}, transport={kind!r})"

    def _pool(self, workers: int) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                # One bounded pool per index, reused: threads created per call leak (langchain-pinecone #21).
                self._executor = ThreadPoolExecutor(
                    max_workers=max(workers, DEFAULT_MAX_CONCURRENCY), thread_name_prefix="pinecone-rag"
                )
            return self._executor

    # ------------------------------------------------------------------------------------------ writes
    def upsert(
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
        """Write records in batches of up to 1000 records and 2 MB, several batches at a time.

        Each batch is retried on its own (an upsert is idempotent by id, so a repeat cannot do harm). A
        batch that cannot reach the service, say while the local engine restarts, keeps retrying for
        ``RetryConfig.reconnect_budget`` (15 s by default) and is written once the service is back; the
        rest of the stream waits meanwhile (at most ``max_concurrency`` batches exist at once). A batch
        that still fails is reported in the result with its ids; the others go on.

        Args:
            vectors: Records as ``Vector`` objects, ``(id, values)`` or ``(id, values, metadata)`` tuples,
                or dicts with ``id``, ``values``, ``sparse_values``, ``metadata`` (any iterable, consumed
                lazily); or a 2-D numpy matrix together with ``ids`` (and optionally ``metadata``).
            namespace: Target namespace (``""`` is the default namespace).
            ids: One id per row when ``vectors`` is a matrix.
            metadata: One metadata dict (or None) per row when ``vectors`` is a matrix.
            batch_size: Records per request (default: as many as fit in 1000 records and 2 MB).
            max_concurrency: Requests in flight at once.
            show_progress: Show a progress bar (default: in terminals and notebooks for long runs).
            timeout: Seconds per request.

        Returns:
            The upserted count and any batches that failed after retries (with their ids and errors).

        Raises:
            RecordError: a record is malformed (raised before it is sent; earlier batches may be written).
        """
        batches = upsert_batches(
            vectors,
            ids=ids,
            metadata=metadata,
            batch_size=batch_size,
            max_batch_bytes=self._transport.max_upsert_bytes,
        )
        return self._upsert_batches(
            batches,
            namespace=namespace,
            total=total_hint(vectors),
            max_concurrency=max_concurrency,
            show_progress=show_progress,
            timeout=timeout,
        )

    def _upsert_batches(
        self,
        batches: Iterator[RecordBatch],
        *,
        namespace: str,
        total: int | None,
        max_concurrency: int,
        show_progress: bool | None,
        timeout: float | None,
    ) -> UpsertResult:
        def send(batch: RecordBatch) -> int:
            return self._transport.call(_ops.UpsertOp(batch, namespace), timeout)

        with progress_bar(total, show_progress, "upsert") as advance:
            return run_batches(
                batches,
                send,
                max_concurrency=max_concurrency,
                executor=self._pool(max_concurrency),
                on_progress=advance,
            )

    def upsert_from_dataframe(
        self,
        df: Any,
        namespace: str = "",
        *,
        batch_size: int | None = 500,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        show_progress: bool | None = None,
    ) -> UpsertResult:
        """Upsert a pandas DataFrame with columns ``id``, ``values`` (and ``sparse_values``, ``metadata``)."""
        return self.upsert(
            records_from_dataframe(df),
            namespace,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            show_progress=show_progress,
        )

    def update(
        self,
        id: str | None = None,  # noqa: A002  (Pinecone's own parameter name)
        *,
        values: Any = None,
        sparse_values: Any = None,
        set_metadata: Mapping[str, Any] | None = None,
        namespace: str = "",
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        dry_run: bool = False,
    ) -> UpdateResult:
        """Update one record by ``id`` (values, sparse values, merged metadata), or by ``filter``.

        With ``filter``, ``set_metadata`` is merged into every matching record and ``matched_records``
        says how many matched; ``dry_run=True`` only counts them.
        """
        op = _ops.UpdateOp(
            id, vector_arg(values), sparse_arg(sparse_values), set_metadata, namespace, filter, dry_run
        )
        return self._transport.call(op)

    def delete(
        self,
        ids: Sequence[str] | None = None,
        *,
        delete_all: bool = False,
        namespace: str = "",
        filter: Mapping[str, Any] | None = None,  # noqa: A002
    ) -> None:
        """Delete records by ids (missing ids are fine), by ``filter``, or all (``delete_all=True``)."""
        if ids is not None and len(ids) > 1000:
            for start in range(0, len(ids), 1000):
                self._transport.call(_ops.DeleteOp(list(ids[start : start + 1000]), False, namespace))
            return
        self._transport.call(_ops.DeleteOp(ids, delete_all, namespace, filter))

    # ------------------------------------------------------------------------------------------- reads
    def query(
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
        """The ``top_k`` records most similar to ``vector`` (or to the stored record ``id``).

        Pass ``sparse_vector`` too for a hybrid query (dotproduct indexes), or alone for sparse indexes.
        ``scan_factor`` (0.5-4) and ``max_candidates`` (top_k-100,000) trade recall for speed where the
        index supports them (Pinecone's dedicated read nodes, the local engine).
        """
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
        return self._transport.call(op, timeout)

    def query_namespaces(
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
        """Query several namespaces in parallel and merge into one best-first ``top_k``."""
        futures = [
            self._pool(DEFAULT_MAX_CONCURRENCY).submit(
                self.query,
                vector,
                top_k=top_k,
                namespace=namespace,
                filter=filter,
                include_values=include_values,
                include_metadata=include_metadata,
                sparse_vector=sparse_vector,
            )
            for namespace in dict.fromkeys(namespaces)
        ]
        return merge_namespace_results([f.result() for f in futures], metric=metric, top_k=top_k)

    def fetch(
        self, ids: Sequence[str], namespace: str = "", *, timeout: float | None = None
    ) -> FetchResponse:
        """Records by id; ids that do not exist are simply absent from the result."""
        return self._transport.call(_ops.FetchOp(list(ids), namespace), timeout)

    def fetch_by_metadata(
        self,
        filter: Mapping[str, Any],  # noqa: A002
        namespace: str = "",
        *,
        limit: int | None = None,
        pagination_token: str | None = None,
    ) -> FetchResponse:
        """Records whose metadata matches ``filter``, a page at a time (see ``next_token``)."""
        return self._transport.call(_ops.FetchByMetadataOp(filter, namespace, limit, pagination_token))

    def list_paginated(
        self,
        prefix: str | None = None,
        *,
        namespace: str = "",
        limit: int | None = None,
        pagination_token: str | None = None,
    ) -> ListResponse:
        """One page of ids in bitwise order."""
        return self._transport.call(_ops.ListOp(prefix, limit, pagination_token, namespace))

    def list(
        self, prefix: str | None = None, *, namespace: str = "", limit: int | None = None
    ) -> Iterator[list[str]]:
        """Every id (optionally with ``prefix``), one page (a list of ids) at a time."""
        token: str | None = None
        while True:
            page = self.list_paginated(prefix, namespace=namespace, limit=limit, pagination_token=token)
            if page.ids:
                yield page.ids
            token = page.next_token
            if not token:
                return

    def describe_index_stats(self, filter: Mapping[str, Any] | None = None) -> IndexStats:  # noqa: A002
        """Record counts per namespace, the dimension and the metric."""
        return self._transport.call(_ops.StatsOp(filter))

    # ----------------------------------------------------------------------------- integrated indexes
    def _records(self) -> RestTransport:
        if isinstance(self._transport, RestTransport):
            return self._transport
        if self._records_transport is None:
            raise ConfigurationError(
                "The records API is REST only: get this index from PineconeClient.index() (or pass "
                "records_transport=) to use upsert_records and search."
            )
        return self._records_transport

    def upsert_records(
        self, namespace: str, records: Sequence[Mapping[str, Any]], *, timeout: float | None = None
    ) -> None:
        """Upsert text records into an index made with ``create_index_for_model``; the index embeds them.

        Each record is a flat dict with ``_id`` (or ``id``), the field the index's ``field_map`` names
        (e.g. ``chunk_text``), and any other fields, which are stored as metadata. Records are sent 96 per
        request, one request after another.

        Example:
            >>> records = [{"_id": "a", "chunk_text": "Pinecone stores vectors."}]
            >>> index.upsert_records("docs", records)  # doctest: +SKIP
        """
        transport = self._records()
        for batch in record_batches(records):
            transport.call(UpsertRecordsOp(namespace, batch), timeout)

    def search(
        self,
        namespace: str,
        query: Mapping[str, Any],
        *,
        fields: Sequence[str] | None = None,
        rerank: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> SearchRecordsResponse:
        """Search an integrated index by text, optionally reranking the hits.

        Args:
            namespace: The namespace to search.
            query: ``{"top_k": 5, "inputs": {"text": "..."}}``, optionally with ``filter``, or a ``vector``
                (``{"values": [...]}``) or an ``id`` instead of ``inputs``.
            fields: Fields to return per hit (default: all).
            rerank: ``{"model": ..., "rank_fields": ["chunk_text"], "top_n": 3}`` to rerank the hits.
            timeout: Seconds for the request.

        Example:
            >>> query = {"top_k": 3, "inputs": {"text": "what stores vectors?"}}
            >>> index.search("docs", query).hits  # doctest: +SKIP
        """
        return self._records().call(SearchRecordsOp(namespace, query, fields, rerank), timeout)

    # -------------------------------------------------------------------------------------- namespaces
    def list_namespaces_paginated(
        self, prefix: str | None = None, *, limit: int | None = None, pagination_token: str | None = None
    ) -> ListNamespacesResponse:
        """One page of namespaces."""
        return self._transport.call(_ops.ListNamespacesOp(prefix, limit, pagination_token))

    def list_namespaces(
        self, prefix: str | None = None, *, limit: int | None = None
    ) -> Iterator[NamespaceDescription]:
        """Every namespace (optionally with ``prefix``), following pages as needed."""
        token: str | None = None
        while True:
            page = self.list_namespaces_paginated(prefix, limit=limit, pagination_token=token)
            yield from page.namespaces
            token = page.next_token
            if not token:
                return

    def describe_namespace(self, namespace: str) -> NamespaceDescription:
        """A namespace's record count and schema (NotFoundError if it does not exist)."""
        return self._transport.call(_ops.DescribeNamespaceOp(namespace))

    def create_namespace(self, name: str, schema: Mapping[str, Any] | None = None) -> NamespaceDescription:
        """Create an empty namespace, optionally with a metadata schema."""
        return self._transport.call(_ops.CreateNamespaceOp(name, schema))

    def delete_namespace(self, namespace: str) -> None:
        """Delete a namespace and all its records."""
        self._transport.call(_ops.DeleteNamespaceOp(namespace))

    # --------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release the connection and the worker threads."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        if self._owns_transport:
            self._transport.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

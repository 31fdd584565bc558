"""``PineconeStore``: LangGraph long-term memory (``langgraph.store.base.BaseStore``) on a Pinecone index.

How LangGraph's model maps onto Pinecone, and why:

* **Tuple namespaces live in metadata, inside one Pinecone namespace** (``namespace=``, default
  ``"memories"``). LangGraph searches whole subtrees (``search(("users",))`` covers ``("users", "u1")``) and
  lists namespaces by prefix, suffix, wildcards and depth. A Pinecone namespace per tuple would need one
  query per namespace for every subtree search; with the ancestor paths in a list field ``_ns_prefixes``
  a subtree is one ``$eq`` condition, and item ids that start with the namespace path let
  ``list_namespaces`` read ids only, narrowed by Pinecone's id-prefix listing.
* **Every item is one record** holding the JSON value (``_value``), created/updated times, and the value's
  scalar leaves as ``v.<path>`` fields so ``filter={"status": "done"}`` runs inside Pinecone. Items need a
  vector even when nothing is embedded: item records store a constant unit vector (``[1, 0, ..., 0]``),
  never used for ranking.
* **Embeddings go to a second Pinecone namespace** (``<namespace>-vectors``), one record per embedded
  text (each configured field, each array element), carrying the same metadata. A semantic search
  queries that namespace and keeps each item's best match (max pooling, as LangGraph's own stores do);
  items stored with ``index=False`` are found by filter-only searches but not ranked by a query.
* Scores are the index's similarity (use a cosine index for cosine scores; on euclidean indexes the
  squared distance is negated so higher is still better). Filter-only searches return the most recently
  updated items first, like the Postgres store. Updates keep ``created_at``. TTL is not supported.

Example:
    >>> from pinecone_rag import PineconeClient  # doctest: +SKIP
    >>> pc = PineconeClient.local()  # doctest: +SKIP
    >>> pc.create_index("memory", dimension=384)  # doctest: +SKIP
    >>> store = PineconeStore(pc.index("memory"), index={"dims": 384, "embed": embeddings})  # doctest: +SKIP
    >>> store.put(("users", "u1"), "prefs", {"text": "likes dark mode"})  # doctest: +SKIP
    >>> store.search(("users",), query="display preferences", limit=1)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    PutOp,
    SearchItem,
    SearchOp,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
)
from langgraph.store.base import validate_op_namespace as _validate_op_namespace
from typing_extensions import override

from langchain_pinecone_rag import _memory_codec as codec

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from langchain_core.embeddings import Embeddings
    from langgraph.store.base import IndexConfig, Op, Result

    from pinecone_rag import AsyncIndex, FetchResponse, Index, QueryResponse, Vector

__all__ = ["PineconeStore"]

_FETCH_PAGE = 1000
_MAX_TOP_K = 10_000


class _Put(NamedTuple):
    """A write, planned: records to upsert and stale vector ids to delete."""

    item: dict[str, Any] | None  # None: delete the item
    vectors: list[dict[str, Any]]
    stale: list[str]


class PineconeStore(BaseStore):
    """LangGraph ``BaseStore`` on a Pinecone (or pinecone-rag local) index.

    Args:
        index: The sync ``Index`` (for ``batch`` and the sync methods).
        async_index: An ``AsyncIndex`` for ``abatch`` and the a-methods (created on the loop you use).
        namespace: The Pinecone namespace for items (vectors go to ``<namespace>-vectors``).
        index_config: LangGraph's ``IndexConfig`` (``dims``, ``embed``, ``fields``) for semantic search;
            without it, ``query=`` is ignored and searches filter only.
        dimension: The index dimension; defaults to ``index_config["dims"]``, else read from the index.

    Example:
        >>> config = {"dims": 384, "embed": embeddings}  # doctest: +SKIP
        >>> store = PineconeStore(pc.index("memory"), index_config=config)  # doctest: +SKIP
    """

    def __init__(
        self,
        index: Index | None = None,
        *,
        async_index: AsyncIndex | None = None,
        namespace: str = "memories",
        index_config: IndexConfig | None = None,
        dimension: int | None = None,
    ) -> None:
        if index is None and async_index is None:
            raise ValueError("PineconeStore needs index= (sync) and/or async_index=.")
        self._index = index
        self._async_index = async_index
        self.namespace = namespace
        self.vectors_namespace = f"{namespace}-vectors"
        self.index_config = index_config
        self._embeddings: Embeddings | None = None
        self._fields: list[tuple[str, str | list[str]]] = []
        if index_config:
            self._embeddings = ensure_embeddings(index_config.get("embed"))
            self._fields = [
                (path, path if path == "$" else tokenize_path(path))
                for path in index_config.get("fields") or ["$"]
            ]
            dimension = dimension or index_config.get("dims")
        self._dimension = dimension
        self._metric: str | None = None

    # ------------------------------------------------------------------------------------ plumbing
    @property
    def index(self) -> Index:
        """The sync index."""
        if self._index is None:
            raise ValueError("This store has only an async index: use abatch / the a-methods.")
        return self._index

    @property
    def async_index(self) -> AsyncIndex:
        """The async index."""
        if self._async_index is None:
            raise ValueError("This store has no async index: pass async_index= for abatch / the a-methods.")
        return self._async_index

    def _placeholder(self, dimension: int) -> list[float]:
        return [1.0] + [0.0] * (dimension - 1)

    def _dim(self) -> int:
        if self._dimension is None:
            self._dimension = self._reported_dimension(self.index.describe_index_stats().dimension)
        return self._dimension

    async def _adim(self) -> int:
        if self._dimension is None:
            stats = await self.async_index.describe_index_stats()
            self._dimension = self._reported_dimension(stats.dimension)
        return self._dimension

    @staticmethod
    def _reported_dimension(dimension: int | None) -> int:
        if not dimension:
            raise ValueError("The index did not report its dimension; pass dimension= to PineconeStore.")
        return dimension

    def _texts(self, op: PutOp) -> list[str]:
        if self._embeddings is None or op.value is None or op.index is False:
            return []
        fields = self._fields if op.index is None else [(path, tokenize_path(path)) for path in op.index]
        texts: list[str] = []
        for _, tokens in fields:
            texts.extend(get_text_at_path(op.value, tokens))
        return texts

    # --------------------------------------------------------------------------------------- plans
    @staticmethod
    def _split(ops: Iterable[Op]) -> tuple[list[Op], dict[tuple[tuple[str, ...], str], PutOp]]:
        listed = list(ops)
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in listed:
            _validate_op_namespace(op)
            if isinstance(op, PutOp):
                puts[(op.namespace, op.key)] = op  # the last write of a key in one batch wins
            elif not isinstance(op, (GetOp, SearchOp, ListNamespacesOp)):
                raise TypeError(f"Unknown operation type: {type(op).__name__}")
        return listed, puts

    def _plan(self, op: PutOp, existing: Vector | None, vectors: list[list[float]], dimension: int) -> _Put:
        record_id = codec.item_id(op.namespace, op.key)
        old = (existing.metadata or {}) if existing is not None else {}
        old_count = int(old.get("_vectors", 0))
        if op.value is None:
            return _Put(None, [], [f"{record_id}#{n}" for n in range(old_count)])
        now = time.time()
        created = float(old.get("_created", now))
        metadata = codec.item_metadata(op.namespace, op.key, op.value, created, now, len(vectors))
        item = {"id": record_id, "values": self._placeholder(dimension), "metadata": metadata}
        vector_records = [
            {"id": f"{record_id}#{n}", "values": values, "metadata": metadata}
            for n, values in enumerate(vectors)
        ]
        stale = [f"{record_id}#{n}" for n in range(len(vectors), old_count)]
        return _Put(item, vector_records, stale)

    def _score(self, score: float) -> float:
        # Squared euclidean distances grow with dissimilarity; LangGraph expects higher = better.
        return -score if self._metric == "euclidean" else score

    @staticmethod
    def _pool(response: QueryResponse, offset: int, limit: int) -> tuple[list[SearchItem], int]:
        """Best match per item (max pooling), then offset/limit; also how many distinct items were seen."""
        seen: dict[str, SearchItem] = {}
        for match in response.matches:
            metadata = match.metadata or {}
            key = f"{metadata.get('_ns')}..{metadata.get('_key')}"
            if key not in seen:
                seen[key] = SearchItem(**codec.item_fields(metadata), score=match.score)
        return list(seen.values())[offset : offset + limit], len(seen)

    @staticmethod
    def _ordered(records: list[Vector], offset: int, limit: int) -> list[SearchItem]:
        records.sort(key=lambda record: -float((record.metadata or {}).get("_updated", 0.0)))
        return [
            SearchItem(**codec.item_fields(record.metadata or {}))
            for record in records[offset : offset + limit]
        ]

    @staticmethod
    def _namespaces(ids: Iterable[str], op: ListNamespacesOp) -> list[tuple[str, ...]]:
        found = {codec.namespace_of(record_id) for record_id in ids}
        if op.match_conditions:
            found = {ns for ns in found if all(codec.matches(c, ns) for c in op.match_conditions)}
        if op.max_depth is not None:
            found = {ns[: op.max_depth] for ns in found}
        return sorted(found)[op.offset : op.offset + op.limit]

    # ---------------------------------------------------------------------------------------- sync
    @override
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run gets, searches and namespace listings, then the writes (in that order, like InMemoryStore)."""
        listed, puts = self._split(ops)
        results: list[Result] = []
        for op in listed:
            if isinstance(op, GetOp):
                results.append(self._get(op))
            elif isinstance(op, SearchOp):
                results.append(self._search(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list(op))
            else:
                results.append(None)
        if puts:
            self._write(list(puts.values()))
        return results

    def _get(self, op: GetOp) -> Item | None:
        record = self.index.fetch([codec.item_id(op.namespace, op.key)], self.namespace).vectors
        found = next(iter(record.values()), None)
        return None if found is None else Item(**codec.item_fields(found.metadata or {}))

    def _search(self, op: SearchOp) -> list[SearchItem]:
        where = codec.search_filter(op.namespace_prefix, op.filter)
        if op.query and self._embeddings is not None:
            if self._metric is None:
                self._metric = self.index.describe_index_stats().metric
            vector = self._embeddings.embed_query(op.query)
            top_k = min(_MAX_TOP_K, 3 * (op.offset + op.limit) + 10)
            while True:
                response = self.index.query(
                    vector, top_k=top_k, filter=where, namespace=self.vectors_namespace, include_metadata=True
                )
                items, distinct = self._pool(response, op.offset, op.limit)
                if distinct >= op.offset + op.limit or len(response.matches) < top_k or top_k >= _MAX_TOP_K:
                    break
                top_k = min(_MAX_TOP_K, top_k * 4)
            for item in items:
                item.score = None if item.score is None else self._score(item.score)
            return items
        return self._ordered(self._fetch_all(where), op.offset, op.limit)

    def _fetch_all(self, where: dict[str, Any] | None) -> list[Vector]:
        records: list[Vector] = []
        token: str | None = None
        while True:
            page: FetchResponse = self.index.fetch_by_metadata(
                where or {"_key": {"$exists": True}},
                self.namespace,
                limit=_FETCH_PAGE,
                pagination_token=token,
            )
            records.extend(page.vectors.values())
            token = page.next_token
            if not token:
                return records

    def _list(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        prefix = codec.listing_prefix(op.match_conditions)
        ids = [record_id for page in self.index.list(prefix, namespace=self.namespace) for record_id in page]
        return self._namespaces(ids, op)

    def _write(self, puts: list[PutOp]) -> None:
        ids = [codec.item_id(op.namespace, op.key) for op in puts]
        existing = self.index.fetch(ids, self.namespace).vectors
        texts = [self._texts(op) for op in puts]
        flat = [text for group in texts for text in group]
        embedded = self._embeddings.embed_documents(flat) if flat and self._embeddings is not None else []
        items, vectors, deleted, stale = self._apply(puts, ids, existing, texts, embedded, self._dim())
        # Vectors first and the item last: a reader never sees an item whose vectors are missing.
        if vectors:
            self.index.upsert(vectors, self.vectors_namespace).raise_for_failures()
        if stale:
            self.index.delete(stale, namespace=self.vectors_namespace)
        if items:
            self.index.upsert(items, self.namespace).raise_for_failures()
        if deleted:
            self.index.delete(deleted, namespace=self.namespace)

    def _apply(  # noqa: PLR0917 - private: the stages of one write, passed in order
        self,
        puts: list[PutOp],
        ids: list[str],
        existing: Mapping[str, Vector],
        texts: list[list[str]],
        embedded: list[list[float]],
        dimension: int,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], list[str]]:
        items: list[dict[str, Any]] = []
        vectors: list[dict[str, Any]] = []
        deleted: list[str] = []
        stale: list[str] = []
        position = 0
        for op, record_id, group in zip(puts, ids, texts, strict=True):
            plan = self._plan(
                op, existing.get(record_id), embedded[position : position + len(group)], dimension
            )
            position += len(group)
            if plan.item is None:
                deleted.append(record_id)
            else:
                items.append(plan.item)
            vectors.extend(plan.vectors)
            stale.extend(plan.stale)
        return items, vectors, deleted, stale

    # --------------------------------------------------------------------------------------- async
    @override
    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async :meth:`batch` over the async index and ``aembed_*``."""
        listed, puts = self._split(ops)
        results: list[Result] = []
        for op in listed:
            if isinstance(op, GetOp):
                results.append(await self._aget(op))
            elif isinstance(op, SearchOp):
                results.append(await self._asearch(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(await self._alist(op))
            else:
                results.append(None)
        if puts:
            await self._awrite(list(puts.values()))
        return results

    async def _aget(self, op: GetOp) -> Item | None:
        response = await self.async_index.fetch([codec.item_id(op.namespace, op.key)], self.namespace)
        found = next(iter(response.vectors.values()), None)
        return None if found is None else Item(**codec.item_fields(found.metadata or {}))

    async def _asearch(self, op: SearchOp) -> list[SearchItem]:
        where = codec.search_filter(op.namespace_prefix, op.filter)
        index = self.async_index
        if op.query and self._embeddings is not None:
            if self._metric is None:
                self._metric = (await index.describe_index_stats()).metric
            vector = await self._embeddings.aembed_query(op.query)
            top_k = min(_MAX_TOP_K, 3 * (op.offset + op.limit) + 10)
            while True:
                response = await index.query(
                    vector, top_k=top_k, filter=where, namespace=self.vectors_namespace, include_metadata=True
                )
                items, distinct = self._pool(response, op.offset, op.limit)
                if distinct >= op.offset + op.limit or len(response.matches) < top_k or top_k >= _MAX_TOP_K:
                    break
                top_k = min(_MAX_TOP_K, top_k * 4)
            for item in items:
                item.score = None if item.score is None else self._score(item.score)
            return items
        records: list[Vector] = []
        token: str | None = None
        while True:
            page = await index.fetch_by_metadata(
                where or {"_key": {"$exists": True}},
                self.namespace,
                limit=_FETCH_PAGE,
                pagination_token=token,
            )
            records.extend(page.vectors.values())
            token = page.next_token
            if not token:
                return self._ordered(records, op.offset, op.limit)

    async def _alist(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        prefix = codec.listing_prefix(op.match_conditions)
        ids = [
            record_id
            async for page in self.async_index.list(prefix, namespace=self.namespace)
            for record_id in page
        ]
        return self._namespaces(ids, op)

    async def _awrite(self, puts: list[PutOp]) -> None:
        index = self.async_index
        ids = [codec.item_id(op.namespace, op.key) for op in puts]
        existing = (await index.fetch(ids, self.namespace)).vectors
        texts = [self._texts(op) for op in puts]
        flat = [text for group in texts for text in group]
        embedded = (
            await self._embeddings.aembed_documents(flat) if flat and self._embeddings is not None else []
        )
        dimension = await self._adim()
        items, vectors, deleted, stale = self._apply(puts, ids, existing, texts, embedded, dimension)
        if vectors:
            (await index.upsert(vectors, self.vectors_namespace)).raise_for_failures()
        if stale:
            await index.delete(stale, namespace=self.vectors_namespace)
        if items:
            (await index.upsert(items, self.namespace)).raise_for_failures()
        if deleted:
            await index.delete(deleted, namespace=self.namespace)

"""Helpers for the LlamaIndex adapter tests: a deterministic embedding and a sync/async store harness."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

if TYPE_CHECKING:
    from llama_index.core.schema import BaseNode
    from llama_index.core.vector_stores.types import MetadataFilters, VectorStoreQuery, VectorStoreQueryResult

    from llama_index.vector_stores.pinecone_rag import PineconeVectorStore


API_KEY = "test-key"
DIM = 64
METRICS = ("cosine", "dotproduct", "euclidean")


def bag_of_words(text: str, dim: int = DIM) -> list[float]:
    """A unit vector per text: hashed word counts, so texts sharing words are close and others are not."""
    vector = np.zeros(dim)
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        vector[int.from_bytes(digest[:4], "little") % dim] += 1.0 if digest[4] & 1 else -1.0
    if not vector.any():
        vector[0] = 1.0
    return (vector / np.linalg.norm(vector)).tolist()


class HashEmbedding(BaseEmbedding):
    """A deterministic embedding that separates texts (llama-index-core's MockEmbedding is constant)."""

    model_name: str = "hashed-bag-of-words"

    def _get_query_embedding(self, query: str) -> list[float]:
        return bag_of_words(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return bag_of_words(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return bag_of_words(text)


@dataclass
class Harness:
    """A store and the mode to drive it in: each method calls the sync or the async twin."""

    store: PineconeVectorStore
    mode: str
    embed: HashEmbedding = field(default_factory=HashEmbedding)

    @property
    def is_async(self) -> bool:
        return self.mode == "async"

    async def _call(self, sync_name: str, async_name: str, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            return await getattr(self.store, async_name)(*args, **kwargs)
        return getattr(self.store, sync_name)(*args, **kwargs)

    async def add(self, nodes: list[BaseNode], **kwargs: Any) -> list[str]:
        for node in nodes:
            if node.embedding is None:
                node.embedding = bag_of_words(node.get_content())
        result: list[str] = await self._call("add", "async_add", nodes, **kwargs)
        return result

    async def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        result: VectorStoreQueryResult = await self._call("query", "aquery", query, **kwargs)
        return result

    async def delete(self, ref_doc_id: str, **kwargs: Any) -> None:
        await self._call("delete", "adelete", ref_doc_id, **kwargs)

    async def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> None:
        await self._call("delete_nodes", "adelete_nodes", node_ids, filters, **kwargs)

    async def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> list[BaseNode]:
        result: list[BaseNode] = await self._call("get_nodes", "aget_nodes", node_ids, filters, **kwargs)
        return result

    async def clear(self, **kwargs: Any) -> None:
        await self._call("clear", "aclear", **kwargs)

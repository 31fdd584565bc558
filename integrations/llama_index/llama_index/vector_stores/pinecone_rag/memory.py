"""Agent memory on this store: a session-safe ``VectorMemoryBlock`` and a reset that clears the store.

``Memory`` with a ``VectorMemoryBlock`` works on :class:`PineconeVectorStore` as it is. Two gaps in
llama-index-core are closed here:

* ``VectorMemoryBlock`` writes the first session's filter into its ``query_kwargs`` and keeps it, so a block
  shared by several ``Memory`` objects retrieves every session's memories from the first session only
  (llama_index #22701). :class:`SessionVectorMemoryBlock` builds the session filter per call instead.
* ``Memory.areset()`` deletes only the chat history, never what vector blocks stored. :func:`areset_memory`
  also deletes the session's nodes from each vector block's store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.memory.memory_blocks.vector import VectorMemoryBlock
from llama_index.core.schema import NodeWithScore
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters, VectorStoreQuery

if TYPE_CHECKING:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.memory import Memory

__all__ = ["SESSION_KEY", "SessionVectorMemoryBlock", "areset_memory", "reset_memory"]

SESSION_KEY = "session_id"
"""The metadata key ``VectorMemoryBlock`` stores the session id under."""


class SessionVectorMemoryBlock(VectorMemoryBlock):
    """A ``VectorMemoryBlock`` that one block instance can serve for many sessions.

    The session filter is AND-ed with any ``query_kwargs["filters"]`` on every call, without modifying
    ``query_kwargs``.

    Example:
        >>> block = SessionVectorMemoryBlock(vector_store=store, embed_model=embed)  # doctest: +SKIP
        >>> memory = Memory.from_defaults(session_id="alice", memory_blocks=[block])  # doctest: +SKIP
    """

    async def _aget(
        self,
        messages: list[ChatMessage] | None = None,
        session_id: str | None = None,
        **block_kwargs: Any,  # noqa: ARG002 - the block interface
    ) -> str:
        if not messages:
            return ""
        window = max(self.retrieval_context_window, 1)
        query_text = self._get_text_from_messages(messages[-window:])
        if not query_text:
            return ""
        query_kwargs = dict(self.query_kwargs)
        if session_id is not None:
            session = MetadataFilter(key=SESSION_KEY, value=session_id)
            user_filters = query_kwargs.get("filters")
            query_kwargs["filters"] = MetadataFilters(
                filters=[session] if user_filters is None else [user_filters, session]
            )
        query = VectorStoreQuery(
            query_str=query_text,
            query_embedding=await self.embed_model.aget_query_embedding(query_text),
            similarity_top_k=self.similarity_top_k,
            **query_kwargs,
        )
        result = await self.vector_store.aquery(query)
        scored = [
            NodeWithScore(node=node, score=score)
            for node, score in zip(result.nodes or [], result.similarities or [], strict=False)
        ]
        for postprocessor in self.node_postprocessors:
            scored = await postprocessor.apostprocess_nodes(scored, query_str=query_text)
        if not scored:
            return ""
        return self.format_template.format(text="\n\n".join(item.node.get_content() for item in scored))


async def areset_memory(memory: Memory) -> None:
    """Reset ``memory``: its chat history, and the nodes its vector blocks stored for its session.

    Raises:
        NotImplementedError: A block's vector store cannot delete by filter.
    """
    await memory.areset()
    session = MetadataFilters(filters=[MetadataFilter(key=SESSION_KEY, value=memory.session_id)])
    for block in memory.memory_blocks:
        if isinstance(block, VectorMemoryBlock):
            await block.vector_store.adelete_nodes(filters=session)


def reset_memory(memory: Memory) -> None:
    """The sync form of :func:`areset_memory` (not from inside a running event loop)."""
    memory.reset()
    session = MetadataFilters(filters=[MetadataFilter(key=SESSION_KEY, value=memory.session_id)])
    for block in memory.memory_blocks:
        if isinstance(block, VectorMemoryBlock):
            block.vector_store.delete_nodes(filters=session)

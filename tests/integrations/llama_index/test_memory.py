"""Agent memory: ``Memory`` with a ``VectorMemoryBlock`` on this store, two sessions kept apart, reset.

``Memory`` is async-first (its sync methods wrap the async ones in a private event loop), so these tests
drive the async API over the store's AsyncIndex.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory
from llama_index.core.memory.memory_blocks.vector import VectorMemoryBlock

from llama_index.vector_stores.pinecone_rag import SessionVectorMemoryBlock, areset_memory

from .support import HashEmbedding

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = [pytest.mark.asyncio, pytest.mark.parametrize("mode", ["async"], indirect=True)]

FACTS = {
    "alice": "My cat is called Whiskers and she likes tuna.",
    "bob": "My cat is called Shadow and he likes chicken.",
}


@pytest_asyncio.fixture
async def memory_for() -> AsyncIterator[Callable[[str, VectorMemoryBlock], Memory]]:
    """Memories sharing one chat-history database, disposed of after the test (aiosqlite warns otherwise)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine: AsyncEngine = create_async_engine("sqlite+aiosqlite:///:memory:")

    def make(session: str, block: VectorMemoryBlock) -> Memory:
        # A tiny short-term budget: all but the latest turn is flushed to the vector block.
        return Memory.from_defaults(
            session_id=session,
            token_limit=40,
            chat_history_token_ratio=0.05,
            token_flush_size=1,
            memory_blocks=[block],
            async_engine=engine,
        )

    yield make
    await engine.dispose()


async def remember(memory: Memory, fact: str) -> None:
    # Memory keeps the latest complete turn in short-term memory; the turn before it is flushed.
    for turn in (fact, "Thanks."):
        await memory.aput(ChatMessage(role="user", content=turn))
        await memory.aput(ChatMessage(role="assistant", content="Noted."))


async def recall(memory: Memory) -> str:
    messages = await memory.aget(input="What is my cat called and what does it like?")
    return "\n".join(str(m.content) for m in messages)


@pytest.mark.parametrize("shared_block", [False, True])
async def test_two_sessions_are_kept_apart(make_store, memory_for, shared_block: bool) -> None:
    h = await make_store()
    embed = HashEmbedding()
    if shared_block:
        # One block for both sessions: the stock VectorMemoryBlock would pin the first session's filter
        # (llama_index #22701); SessionVectorMemoryBlock builds it per call.
        block = SessionVectorMemoryBlock(vector_store=h.store, embed_model=embed, similarity_top_k=5)
        blocks = {"alice": block, "bob": block}
    else:
        blocks = {
            name: VectorMemoryBlock(vector_store=h.store, embed_model=embed, similarity_top_k=5)
            for name in FACTS
        }
    memories = {name: memory_for(name, blocks[name]) for name in FACTS}
    for name, fact in FACTS.items():
        await remember(memories[name], fact)
    assert len(await h.get_nodes()) >= 2  # the facts reached the vector store

    alice, bob = await recall(memories["alice"]), await recall(memories["bob"])
    assert "Whiskers" in alice
    assert "Shadow" not in alice
    assert "Shadow" in bob
    assert "Whiskers" not in bob


async def test_reset_clears_what_the_session_stored(make_store, memory_for) -> None:
    h = await make_store()
    block = SessionVectorMemoryBlock(vector_store=h.store, embed_model=HashEmbedding(), similarity_top_k=5)
    memories = {name: memory_for(name, block) for name in FACTS}
    for name, fact in FACTS.items():
        await remember(memories[name], fact)

    await areset_memory(memories["alice"])
    assert "Whiskers" not in await recall(memories["alice"])
    assert await memories["alice"].aget_all() == []
    sessions = {n.metadata.get("session_id") for n in await h.get_nodes()}
    assert sessions == {"bob"}
    assert "Shadow" in await recall(memories["bob"])

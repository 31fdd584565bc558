"""Fixtures for the LangChain adapter tests: clients on the session engine and fresh indexes.

langchain-tests' standard suites define plain ``async def`` tests; with pytest-asyncio in strict mode
they only run when marked, so coroutine tests collected under this folder get the ``asyncio`` mark.
"""

from __future__ import annotations

import inspect
import math
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from langchain_core.embeddings import Embeddings

from pinecone_rag import AsyncPineconeClient, PineconeClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator, Iterator

    from pinecone_rag.server import LocalServer

API_KEY = "test-key"  # the session engine runs in open mode: any non-empty key works


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> Generator[None, Any, Any]:
    # trylast: run inside pytest-asyncio's wrapper, so it sees the mark and makes an asyncio item.
    result = yield
    items = result if isinstance(result, list) else [result]
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.asyncio)
    return result


@pytest.fixture(scope="session")
def pc(server: LocalServer) -> Iterator[PineconeClient]:
    """A sync client on the session engine."""
    with PineconeClient(API_KEY, server.url) as client:
        yield client


@pytest_asyncio.fixture
async def apc(server: LocalServer) -> AsyncIterator[AsyncPineconeClient]:
    """An async client on the session engine, for this test's event loop."""
    async with AsyncPineconeClient(API_KEY, server.url) as client:
        yield client


def unique(prefix: str = "lc") -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def new_index(pc: PineconeClient) -> Iterator[Callable[..., str]]:
    """Create indexes for one test (deleted afterwards); returns the name."""
    names: list[str] = []

    def create(dimension: int, metric: str = "cosine") -> str:
        name = unique()
        pc.create_index(name, dimension=dimension, metric=metric)  # type: ignore[arg-type]
        names.append(name)
        return name

    yield create
    for name in names:
        pc.delete_index(name)


class KeywordEmbeddings(Embeddings):
    """Unit vectors counting vocabulary words: texts sharing words are close, so rankings are predictable.

    Also records every ``embed_documents`` batch size, for the batching tests.
    """

    VOCABULARY = ("apple", "banana", "cherry", "date", "elder", "fig", "grape", "other")

    def __init__(self) -> None:
        self.batches: list[int] = []

    @property
    def dimension(self) -> int:
        return len(self.VOCABULARY)

    def vector(self, text: str) -> list[float]:
        words = text.lower().split()
        counts = [float(words.count(word)) for word in self.VOCABULARY]
        if not any(counts):
            counts[-1] = 1.0
        norm = math.sqrt(sum(c * c for c in counts))
        return [c / norm for c in counts]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(len(texts))
        return [self.vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vector(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self.vector(text)

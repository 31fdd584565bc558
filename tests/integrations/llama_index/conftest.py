"""Fixtures for the LlamaIndex adapter: stores on the session's local engine, sync and async.

Every test gets a fresh namespace on one shared index per metric (creating an index per test would cost
more than the test), and runs once through the sync methods and once through the native async ones.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from llama_index.vector_stores.pinecone_rag import PineconeVectorStore
from pinecone_rag import AsyncPineconeClient, PineconeClient

from .support import API_KEY, DIM, METRICS, Harness

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from pinecone_rag.server import LocalServer


@pytest.fixture(scope="session")
def pc(server: LocalServer) -> Iterator[PineconeClient]:
    """A sync client of the session's engine."""
    with PineconeClient(api_key=API_KEY, host=server.url) as client:
        yield client


@pytest.fixture(scope="session")
def index_names(pc: PineconeClient) -> Iterator[dict[str, str]]:
    """One dense index per metric (dimension 64), shared by the session; tests use fresh namespaces."""
    names = {metric: f"li-{metric}-{uuid.uuid4().hex[:8]}" for metric in METRICS}
    for metric, name in names.items():
        pc.create_index(name, dimension=DIM, metric=metric)  # type: ignore[arg-type]
    yield names
    for name in names.values():
        pc.delete_index(name)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run the test through the sync methods, then through the async ones."""
    return str(request.param)


@pytest_asyncio.fixture
async def async_pc(server: LocalServer) -> AsyncIterator[AsyncPineconeClient]:
    """An async client bound to this test's event loop."""
    async with AsyncPineconeClient(api_key=API_KEY, host=server.url) as client:
        yield client


@pytest_asyncio.fixture
async def make_store(
    server: LocalServer, pc: PineconeClient, index_names: dict[str, str], mode: str
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Build a store on a fresh namespace of the ``metric`` index (or ``index_name``).

    Async-mode stores get an ``AsyncIndex`` too; its client (bound to this test's loop) is only created
    then, since creating one costs about 0.2 s.
    """
    clients: list[AsyncPineconeClient] = []

    async def make(metric: str = "cosine", *, index_name: str | None = None, **kwargs: Any) -> Harness:
        name = index_name or index_names[metric]
        kwargs.setdefault("namespace", f"ns-{uuid.uuid4().hex[:10]}")
        if mode == "async":
            if not clients:
                clients.append(AsyncPineconeClient(api_key=API_KEY, host=server.url))
            kwargs["async_index"] = await clients[0].index(name)
        return Harness(PineconeVectorStore(pc.index(name), **kwargs), mode)

    yield make
    for client in clients:
        await client.aclose()

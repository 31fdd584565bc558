"""Fixtures of the conformance suite: SDK clients, a transport parameter, and indexes that clean up.

Every data-plane scenario takes ``transport`` (``rest`` or ``grpc``) and so runs once per transport. Indexes
are created through the official control-plane client; ``new_index`` gives one per test, and modules build
populated indexes once with ``harness`` and ask ``harness.data(name, transport)`` for a client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .support import TRANSPORTS, Harness

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pinecone_rag.server import LocalServer


@pytest.fixture(scope="session")
def harness(server: LocalServer) -> Iterator[Harness]:
    """The official SDK pointed at the session's engine (control plane by URL, open mode)."""
    running = Harness(server)
    yield running
    running.close()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """``rest`` (``pinecone.Index``) or ``grpc`` (``pinecone.grpc.GRPCIndex``)."""
    return str(request.param)


@pytest.fixture
def new_index(harness: Harness, transport: str) -> Iterator[Callable[..., Any]]:
    """Create a fresh index (deleted after the test) and return its data client for ``transport``."""
    created: list[str] = []

    def make(**kwargs: Any) -> Any:
        name = harness.create_index(**kwargs)
        created.append(name)
        return harness.data(name, transport)

    yield make
    for name in created:
        harness.delete_index(name)


@pytest.fixture
def made_indexes(harness: Harness) -> Iterator[list[str]]:
    """Names appended here are deleted after the test (for lifecycle tests that create by hand)."""
    names: list[str] = []
    yield names
    for name in names:
        harness.delete_index(name)

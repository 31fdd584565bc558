"""Shared fixtures: a real local engine on loopback, port 0, in a temporary directory."""

from __future__ import annotations

import socket
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from pinecone_rag.server import LocalServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

API_KEY = "test-key"
HEADERS = {"Api-Key": API_KEY, "X-Pinecone-Api-Version": "2025-10"}
SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
# Without TCP_NODELAY each request waits ~40 ms for a delayed ACK.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def http_client(base_url: str, **kwargs: Any) -> httpx.Client:
    """An httpx client with TCP_NODELAY, the test key and API version 2025-10."""
    headers = {**HEADERS, **kwargs.pop("headers", {})}
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    return httpx.Client(base_url=base_url, headers=headers, transport=transport, timeout=30, **kwargs)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One engine for the whole session (open mode: any non-empty key is accepted)."""
    with LocalServer(tmp_path_factory.mktemp("engine"), port=0) as running:
        yield running


@pytest.fixture
def control(server: LocalServer) -> Iterator[httpx.Client]:
    """An HTTP client for the control plane."""
    with http_client(server.url) as client:
        yield client


@pytest.fixture
def make_index(control: httpx.Client) -> Iterator[Callable[..., dict[str, Any]]]:
    """Create indexes with unique names (deleted after the test); returns the IndexModel JSON."""
    created: list[str] = []

    def make(dimension: int | None = 8, metric: str = "cosine", vector_type: str = "dense") -> dict[str, Any]:
        name = f"t-{uuid.uuid4().hex[:12]}"
        body: dict[str, Any] = {"name": name, "metric": metric, "vector_type": vector_type}
        body["spec"] = SERVERLESS
        if dimension is not None:
            body["dimension"] = dimension
        response = control.post("/indexes", json=body)
        assert response.status_code == 201, response.text
        created.append(name)
        model: dict[str, Any] = response.json()
        return model

    yield make
    for name in created:
        control.delete(f"/indexes/{name}")

"""The profile of the fuzz tests and the server they run against.

``PINECONE_RAG_FUZZ_EXAMPLES`` sets the inputs per fuzz test: the quick profile (default) keeps
``make test`` fast; ``make stress`` raises it so the run tries well over 100k inputs in total.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING

import httpx
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from pinecone_rag.server import LocalServer

KEY = "fuzz-key"
EXAMPLES = int(os.environ.get("PINECONE_RAG_FUZZ_EXAMPLES", "300"))
SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
"""Hypothesis settings of every fuzz test: no per-example deadline (requests have timeouts instead)."""


class Tally:
    """What the fuzz test running now saw: one outcome per input tried (an HTTP status, a gRPC code...).

    ``conftest.py`` resets it before each test and writes it to the opt-in stress report after it
    (``tests/stress_report.py``), so ``bench/stress.py`` can say how many inputs each target took.
    """

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()

    def note(self, outcome: str) -> None:
        """Count one input and what it got."""
        self.outcomes[outcome] += 1

    def reset(self) -> None:
        """Forget the previous test's inputs."""
        self.outcomes.clear()


TALLY = Tally()


class FuzzTarget:
    """A running server with one dense, one sparse and one integrated index."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.hosts: dict[str, str] = {}
        self.grpc_ports: dict[str, int] = {}
        self._clients: dict[str, httpx.Client] = {}

    def control(self) -> httpx.Client:
        """The shared control-plane client (one per run: building a client costs an SSL context)."""
        return self._client(self.server.url)

    def data(self, name: str) -> httpx.Client:
        """The shared client of an index's data plane."""
        return self._client(self.hosts[name])

    def _client(self, url: str) -> httpx.Client:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = httpx.Client(base_url=url, headers={"Api-Key": KEY}, timeout=30)
        return client

    def close(self) -> None:
        """Close the shared clients."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def healthy(self) -> None:
        """The server still answers on every plane."""
        assert self.control().get("/indexes").status_code == 200
        for name in self.hosts:
            assert self.data(name).post("/describe_index_stats", json={}).status_code == 200

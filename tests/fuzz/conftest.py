"""The server the fuzz tests run against: one dense, one sparse and one integrated index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pinecone_rag.server import LocalServer
from pinecone_rag.server.settings import ENV_API_KEYS

from .support import KEY, SERVERLESS, FuzzTarget

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="package")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ENV_API_KEYS, raising=False)
        server = LocalServer(tmp_path_factory.mktemp("fuzz"), port=0, api_keys=(KEY,))
    with server:
        state = FuzzTarget(server)
        bodies: dict[str, dict[str, Any]] = {
            "dense": {"name": "dense", "dimension": 4, "metric": "cosine", "spec": SERVERLESS},
            "sparse": {"name": "sparse", "vector_type": "sparse", "metric": "dotproduct", "spec": SERVERLESS},
        }
        control = state.control()
        for name, body in bodies.items():
            created = control.post("/indexes", json=body)
            assert created.status_code == 201, created.text
            state.hosts[name] = created.json()["host"]
            state.grpc_ports[name] = int(created.headers["x-pinecone-rag-grpc-port"])
        created = control.post(
            "/indexes/create-for-model",
            json={
                "name": "docs",
                "cloud": "aws",
                "region": "us-east-1",
                "embed": {"model": "pinecone-rag-bm25", "field_map": {"text": "text"}},
            },
        )
        assert created.status_code == 201, created.text
        state.hosts["docs"] = created.json()["host"]
        state.grpc_ports["docs"] = int(created.headers["x-pinecone-rag-grpc-port"])
        try:
            yield state
        finally:
            state.close()

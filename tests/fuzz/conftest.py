"""The server the fuzz tests run against (a dense, a sparse and an integrated index), and their report."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from pinecone_rag.server import LocalServer
from pinecone_rag.server.settings import ENV_API_KEYS
from stress_report import append_entry

from .support import EXAMPLES, KEY, SERVERLESS, TALLY, FuzzTarget

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


@pytest.fixture(autouse=True)
def _report_inputs(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each fuzz test, one stress-report entry: the inputs it tried and the outcomes they got."""
    TALLY.reset()
    started = time.monotonic()
    yield
    if TALLY.outcomes:  # the "still answers" checks after fuzzing note nothing
        append_entry(
            {
                "kind": "fuzz",
                "test": request.node.name,
                "max_examples": EXAMPLES,
                "inputs": sum(TALLY.outcomes.values()),
                "outcomes": dict(sorted(TALLY.outcomes.items())),
                "wall_seconds": round(time.monotonic() - started, 1),
            }
        )

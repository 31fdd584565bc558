"""Back-pressure: a full freshness layer refuses writes with a retry hint, and our client absorbs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tests.conftest import http_client

from pinecone_rag import PineconeClient
from pinecone_rag.config import RetryConfig
from pinecone_rag.errors import ResourceExhaustedError
from pinecone_rag.server import LocalServer
from pinecone_rag.server.engine_config import EngineConfig

if TYPE_CHECKING:
    from pathlib import Path

DIM = 4


def _vectors(start: int, count: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(start)
    return [
        {"id": f"r{start + i}", "values": rng.standard_normal(DIM).astype(np.float32).tolist()}
        for i in range(count)
    ]


def test_full_freshness_layer_answers_429_and_resource_exhausted_with_hints(tmp_path: Path) -> None:
    config = EngineConfig(builder=False, build_min_records=10, freshness_max_records=100)
    with LocalServer(tmp_path, port=0, engine=config) as server:
        pc = PineconeClient(api_key="k", host=server.url)
        pc.create_index("bp", dimension=DIM, metric="cosine")
        host = pc.describe_index("bp").host
        with http_client(host) as data:
            assert data.post("/vectors/upsert", json={"vectors": _vectors(0, 100)}).status_code == 200
            refused = data.post("/vectors/upsert", json={"vectors": _vectors(100, 1)})
            assert refused.status_code == 429, refused.text
            assert float(refused.headers["retry-after"]) > 0
            assert "freshness layer is full" in refused.json()["message"]
        pc.close()
    # Over gRPC: RESOURCE_EXHAUSTED with grpc-retry-pushback-ms, which becomes ``retry_after``.
    with LocalServer(tmp_path, port=0, engine=config) as server:
        pc = PineconeClient(
            api_key="k", host=server.url, retries=RetryConfig(max_attempts=1, backpressure_budget=0)
        )
        result = pc.index("bp").upsert([("late", [0.1] * DIM)], show_progress=False)
        assert not result.ok
        error = result.failed[0].error
        assert isinstance(error, ResourceExhaustedError), error
        assert error.retry_after is not None
        assert error.retry_after > 0
        pc.close()


def test_client_rides_out_back_pressure_while_the_builder_catches_up(tmp_path: Path) -> None:
    # The builder only runs when asked: the cap itself asks it, as soon as a write is refused.
    config = EngineConfig(build_min_records=20_000, build_idle_s=3600, freshness_max_records=20_001)
    with LocalServer(tmp_path, port=0, engine=config) as server:
        pc = PineconeClient(api_key="k", host=server.url)
        pc.create_index("bp", dimension=DIM, metric="cosine")
        for transport in ("grpc", "rest"):
            index = pc.index("bp", transport=transport)
            matrix = np.random.default_rng(7).standard_normal((50_000, DIM)).astype(np.float32)
            ids = [f"{transport}-{i}" for i in range(len(matrix))]
            result = index.upsert(matrix, ids=ids, namespace=transport, batch_size=1000, show_progress=False)
            assert result.upserted_count == len(ids), result
            assert not result.failed_ids
            assert index.describe_index_stats().namespaces[transport].vector_count == len(ids)
        pc.close()

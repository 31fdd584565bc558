"""``scanFactor`` and ``maxCandidates``: encoded as the generated classes do, validated, honoured."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from pinecone_rag import PineconeClient
from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.server import LocalServer
from pinecone_rag.server.control_db import DEFAULT_PROJECT
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.wire import messages as pb
from pinecone_rag.wire.encode import encode_query_request

if TYPE_CHECKING:
    from pathlib import Path


def test_scan_fields_parse_as_the_generated_query_request() -> None:
    data = encode_query_request(np.ones(3, dtype=np.float32), 5, scan_factor=1.5, max_candidates=700)
    parsed = pb.QueryRequest.FromString(data)
    assert parsed.HasField("scan_factor")
    assert parsed.scan_factor == pytest.approx(1.5)
    assert parsed.max_candidates == 700
    assert not pb.QueryRequest.FromString(encode_query_request(None, 5)).HasField("scan_factor")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_scan_factor_widens_the_scan_and_max_candidates_caps_it(tmp_path: Path, transport: str) -> None:
    # Tiny clusters and a one-cluster default probe make the effect of each parameter visible.
    config = EngineConfig(
        target_cluster_size=50, flat_records=0, min_probe=1, probe_fraction=0.01, build_idle_s=0.05
    )
    with LocalServer(tmp_path, port=0, engine=config) as server:
        pc = PineconeClient(api_key="k", host=server.url)
        pc.create_index("scan", dimension=8, metric="euclidean")
        index = pc.index("scan", transport=transport)
        rng = np.random.default_rng(1)
        matrix = rng.standard_normal((2000, 8)).astype(np.float32)
        index.upsert(matrix, ids=[str(i) for i in range(len(matrix))], show_progress=False)
        assert server.manager is not None
        assert server.manager.get(DEFAULT_PROJECT, "scan").engine.wait_until_indexed(60)
        query = rng.standard_normal(8).astype(np.float32)
        exact = set(np.argsort(((matrix - query) ** 2).sum(axis=1))[:10].astype(str).tolist())

        def recall(**params: object) -> float:
            result = index.query(query, top_k=10, **params)
            return len(exact & {m.id for m in result.matches}) / 10

        assert recall(scan_factor=4.0) >= recall()
        assert len(index.query(query, top_k=10, max_candidates=10).matches) == 10
        with pytest.raises(InvalidArgumentError, match="scanFactor"):
            index.query(query, top_k=10, scan_factor=9.0)
        with pytest.raises(InvalidArgumentError, match="maxCandidates"):
            index.query(query, top_k=10, max_candidates=5)
        pc.close()

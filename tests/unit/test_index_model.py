"""API version negotiation, host formats and IndexModel shapes per version."""

from __future__ import annotations

import pytest

from pinecone_rag.server.control_db import IndexRecord
from pinecone_rag.server.index_model import index_host, index_json, negotiate_version


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "2025-10"),
        ("", "2025-10"),
        ("unstable", "2025-10"),
        ("2024-07", "2025-01"),
        ("2025-01", "2025-01"),
        ("2025-04", "2025-04"),
        ("2025-07", "2025-04"),
        ("2025-10", "2025-10"),
        ("2026-04", "2025-10"),
        ("2026-07", "2026-07"),
        ("2027-01", "2026-07"),
        ("2026-01.alpha", "2025-10"),
    ],
)
def test_negotiate_version(header: str | None, expected: str) -> None:
    assert negotiate_version(header) == expected


def test_host_format_follows_what_each_sdk_line_can_dial() -> None:
    assert index_host("2025-01", "localhost", 5081, "http") == "localhost:5081"
    assert index_host("2025-04", "localhost", 5081, "http") == "localhost:5081"
    assert index_host("2025-10", "localhost", 5081, "http") == "http://localhost:5081"
    assert index_host("2025-10", "localhost", 5081, "bare") == "localhost:5081"
    assert index_host("2026-07", "localhost", 5081, "bare") == "http://localhost:5081"


DENSE = IndexRecord(
    id="x",
    project_id="default",
    name="docs",
    dimension=8,
    metric="euclidean",
    vector_type="dense",
    spec={"serverless": {"cloud": "aws", "region": "us-east-1"}},
    tags={"env": "test"},
)
SPARSE = IndexRecord(
    id="y",
    project_id="default",
    name="words",
    dimension=None,
    metric="dotproduct",
    vector_type="sparse",
    spec={"serverless": {"cloud": "gcp", "region": "europe-west1"}},
)


def test_2025_shapes() -> None:
    body = index_json(DENSE, "2025-10", "http://localhost:5081")
    assert body["dimension"] == 8
    assert body["metric"] == "euclidean"
    assert body["status"] == {"ready": True, "state": "Ready"}
    assert body["spec"]["serverless"]["read_capacity"]["mode"] == "OnDemand"
    assert body["tags"] == {"env": "test"}
    older = index_json(DENSE, "2025-01", "localhost:5081")
    assert "read_capacity" not in older["spec"]["serverless"]
    sparse = index_json(SPARSE, "2025-10", "h")
    assert "dimension" not in sparse
    assert sparse["vector_type"] == "sparse"
    assert "tags" not in sparse


def test_2026_07_shapes() -> None:
    dense = index_json(DENSE, "2026-07", "http://localhost:5081")
    assert set(dense) >= {"name", "host", "status", "deployment", "schema", "deletion_protection"}
    assert "dimension" not in dense
    assert dense["deployment"] == {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}
    fields = dense["schema"]["fields"]
    assert fields["_values"] == {"type": "dense_vector", "dimension": 8, "metric": "euclidean"}
    assert fields["_sparse_values"] == {"type": "sparse_vector"}
    sparse = index_json(SPARSE, "2026-07", "h")
    assert sparse["schema"]["fields"] == {"_sparse_values": {"type": "sparse_vector"}}
    assert sparse["tags"] is None

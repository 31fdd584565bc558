"""Index lifecycle through the official control-plane client (``Pinecone``), and reaching the data plane.

Covers create (each metric, sparse), describe, list, has_index, configure (tags, deletion protection),
delete, and the control-plane errors: 400 bad name or sparse dimension, 403 deletion protection, 404
missing index, 409 duplicate, 422 missing spec.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from pinecone.exceptions import PineconeApiValueError
from pinecone.grpc import GRPCClientConfig

from .reference import assert_topk, dense_dataset, dense_expected
from .support import API_KEY, SPEC, Harness, api_error, unique_name

if TYPE_CHECKING:
    import httpx

pytestmark = pytest.mark.conformance

METRICS = ("cosine", "dotproduct", "euclidean")


def raw_create(control: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    """A CreateIndex request the SDK refuses to send (it validates some fields client-side)."""
    return control.post("/indexes", json=body, headers={"Api-Key": API_KEY})


def grpc_port(harness: Harness, name: str) -> int:
    description = harness.pc.describe_index(name)
    headers = description._response_info["raw_headers"]
    return int(headers["x-pinecone-rag-grpc-port"])


@pytest.mark.parametrize("metric", METRICS)
def test_create_dense_index_each_metric(harness: Harness, made_indexes: list[str], metric: str) -> None:
    name = unique_name()
    started = time.monotonic()
    created = harness.pc.create_index(name=name, dimension=16, metric=metric, spec=SPEC)
    made_indexes.append(name)
    # The SDK polls describe_index every 5 s until ready; the engine is ready at once.
    assert time.monotonic() - started < 2.0
    assert created.status.ready is True
    described = harness.pc.describe_index(name)
    assert described.name == name
    assert described.dimension == 16
    assert described.metric == metric
    assert described.vector_type == "dense"
    assert described.status.ready is True
    assert described.status.state == "Ready"
    assert described.deletion_protection == "disabled"
    assert described.spec.serverless.cloud == "aws"
    assert described.spec.serverless.region == "us-east-1"
    # API 2025-10 with the default host format: a scheme the REST client can dial by name.
    assert described.host.startswith("http://127.0.0.1:")
    assert name in harness.pc.list_indexes().names()
    assert harness.pc.has_index(name)


def test_create_sparse_index(harness: Harness, made_indexes: list[str]) -> None:
    name = unique_name()
    harness.pc.create_index(name=name, metric="dotproduct", vector_type="sparse", spec=SPEC)
    made_indexes.append(name)
    described = harness.pc.describe_index(name)
    assert described.vector_type == "sparse"
    assert described.metric == "dotproduct"
    assert getattr(described, "dimension", None) is None
    assert described.status.ready is True


def test_create_with_timeout_minus_one_returns_ready_index(harness: Harness, made_indexes: list[str]) -> None:
    name = unique_name()
    created = harness.pc.create_index(name=name, dimension=4, spec=SPEC, timeout=-1)
    made_indexes.append(name)
    assert created.status.ready is True
    assert created.metric == "cosine"  # the SDK's default


def test_list_indexes_and_has_index(harness: Harness, made_indexes: list[str]) -> None:
    names = [harness.create_index(dimension=4) for _ in range(3)]
    made_indexes.extend(names)
    listed = harness.pc.list_indexes()
    assert set(names) <= set(listed.names())
    for model in listed:
        if model.name in names:
            assert model.dimension == 4
            assert model.status.ready is True
    assert all(harness.pc.has_index(name) for name in names)
    assert not harness.pc.has_index(unique_name("absent"))


def test_duplicate_name_is_409(harness: Harness, made_indexes: list[str]) -> None:
    name = harness.create_index(dimension=4)
    made_indexes.append(name)
    with api_error("ALREADY_EXISTS", "already exists"):
        harness.pc.create_index(name=name, dimension=4, spec=SPEC)
    assert harness.pc.describe_index(name).dimension == 4


def test_describe_missing_index_is_404(harness: Harness) -> None:
    missing = unique_name("absent")
    with api_error("NOT_FOUND", missing, "not found"):
        harness.pc.describe_index(missing)


def test_delete_missing_index_is_404(harness: Harness) -> None:
    missing = unique_name("absent")
    with api_error("NOT_FOUND", "not found"):
        harness.pc.delete_index(missing)


@pytest.mark.parametrize(
    "bad_name",
    ["Upper-Case", "under_score", "-leading-dash", "trailing-dash-", "dot.name", "sp ace"],
)
def test_bad_index_name_is_400(harness: Harness, bad_name: str) -> None:
    with api_error("INVALID_ARGUMENT", "name"):
        harness.pc.create_index(name=bad_name, dimension=4, spec=SPEC)
    assert not harness.pc.has_index(bad_name)


def test_too_long_index_name_is_400(harness: Harness, control: httpx.Client) -> None:
    name = "x" * 46
    with pytest.raises(PineconeApiValueError, match="45"):  # SDK 8.x checks the length itself
        harness.pc.create_index(name=name, dimension=4, spec=SPEC)
    response = raw_create(
        control,
        {"name": name, "dimension": 4, "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}}},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert "45" in response.json()["error"]["message"]


def test_sparse_index_with_dimension_is_400(
    harness: Harness, control: httpx.Client, made_indexes: list[str]
) -> None:
    name = unique_name()
    # SDK 8.x refuses to send it ...
    with pytest.raises(ValueError, match="dimension"):
        harness.pc.create_index(name=name, dimension=8, metric="dotproduct", vector_type="sparse", spec=SPEC)
    # ... and the engine rejects it when someone does.
    response = raw_create(
        control,
        {
            "name": name,
            "dimension": 8,
            "metric": "dotproduct",
            "vector_type": "sparse",
            "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
        },
    )
    if response.status_code == 201:
        made_indexes.append(name)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"]["code"] == "INVALID_ARGUMENT"
    assert "dimension" in body["error"]["message"].lower()
    assert not harness.pc.has_index(name)


def test_sparse_index_with_other_metric_is_400(harness: Harness) -> None:
    name = unique_name()
    with api_error("INVALID_ARGUMENT", "dotproduct"):
        harness.pc.create_index(name=name, metric="cosine", vector_type="sparse", spec=SPEC)
    assert not harness.pc.has_index(name)


def test_missing_spec_is_422(harness: Harness, control: httpx.Client) -> None:
    name = unique_name()
    with pytest.raises(TypeError):
        harness.pc.create_index(name=name, dimension=8)  # type: ignore[call-arg]
    response = raw_create(control, {"name": name, "dimension": 8, "metric": "cosine"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status"] == 422
    assert body["error"]["code"] == "UNPROCESSABLE_ENTITY"
    assert "spec" in body["error"]["message"]
    assert not harness.pc.has_index(name)


def test_dense_index_without_dimension_is_rejected(harness: Harness) -> None:
    name = unique_name()
    with pytest.raises(Exception) as info:  # the SDK or the server, whichever catches it
        harness.pc.create_index(name=name, metric="cosine", spec=SPEC)
    assert "dimension" in str(info.value).lower()
    assert not harness.pc.has_index(name)


def test_deletion_protection(harness: Harness, made_indexes: list[str]) -> None:
    name = unique_name()
    harness.pc.create_index(name=name, dimension=4, spec=SPEC, deletion_protection="enabled")
    made_indexes.append(name)
    assert harness.pc.describe_index(name).deletion_protection == "enabled"
    with api_error("FORBIDDEN", "deletion protection"):
        harness.pc.delete_index(name)
    assert harness.pc.has_index(name)
    harness.pc.configure_index(name, deletion_protection="disabled")
    assert harness.pc.describe_index(name).deletion_protection == "disabled"
    started = time.monotonic()
    harness.pc.delete_index(name)  # the SDK polls until the index is gone; the engine deletes at once
    assert time.monotonic() - started < 2.0
    assert not harness.pc.has_index(name)
    with api_error("NOT_FOUND"):
        harness.pc.describe_index(name)


def test_configure_tags_merge_and_remove(harness: Harness, made_indexes: list[str]) -> None:
    name = unique_name()
    harness.pc.create_index(name=name, dimension=4, spec=SPEC, tags={"team": "search"})
    made_indexes.append(name)
    assert harness.pc.describe_index(name).tags.to_dict() == {"team": "search"}
    harness.pc.configure_index(name, tags={"env": "test"})
    assert harness.pc.describe_index(name).tags.to_dict() == {"team": "search", "env": "test"}
    harness.pc.configure_index(name, tags={"team": ""})
    assert harness.pc.describe_index(name).tags.to_dict() == {"env": "test"}
    # Configuring leaves the rest of the index as it was.
    described = harness.pc.describe_index(name)
    assert described.dimension == 4
    assert described.deletion_protection == "disabled"


def test_bad_tag_key_is_400(harness: Harness, made_indexes: list[str]) -> None:
    name = harness.create_index(dimension=4)
    made_indexes.append(name)
    with api_error("INVALID_ARGUMENT", "tag"):
        harness.pc.configure_index(name, tags={"bad key!": "x"})


def test_data_plane_reachable_by_rest_name_grpc_host_and_grpc_port(
    harness: Harness, made_indexes: list[str]
) -> None:
    name = harness.create_index(dimension=8, metric="cosine")
    made_indexes.append(name)
    data = dense_dataset(seed=7, n=30, dim=8)
    rest = harness.data(name, "rest")  # pc.Index(name): host from describe_index, http:// kept
    assert rest.upsert(vectors=data.vectors()).upserted_count == 30
    query = np.random.default_rng(1).normal(size=8).tolist()
    expected = dense_expected(data, query, "cosine")

    shared = harness.data(name, "grpc")  # the index port: HTTP/1.1 and h2c on one socket
    direct = harness.pcg.Index(
        host=f"127.0.0.1:{grpc_port(harness, name)}", grpc_config=GRPCClientConfig(secure=False)
    )
    try:
        for client in (rest, shared, direct):
            response = client.query(vector=query, top_k=5)
            assert_topk(response.matches, expected, 5, "cosine")
        assert direct.describe_index_stats().total_vector_count == 30
    finally:
        direct.close()

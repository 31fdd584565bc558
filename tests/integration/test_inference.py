"""The Inference API of the local engine (``/embed``, ``/rerank``, ``/models``) over real HTTP.

Driven three ways: raw HTTP (exact shapes and errors), the official SDK's ``pc.inference`` (unchanged),
and our own client's ``inference``. The dense model loads once per session (the engine shares it).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
from pinecone import Pinecone
from pinecone.exceptions import PineconeApiException

from pinecone_rag import AsyncPineconeClient, InvalidArgumentError, PineconeClient
from pinecone_rag.server.embedding_models import dense_extra_installed

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pinecone_rag.server import LocalServer

API_KEY = "test-key"
needs_models = pytest.mark.skipif(not dense_extra_installed(), reason="the models extra is not installed")
DENSE = "all-minilm-l6-v2"
SPARSE = "pinecone-rag-bm25"
TEXTS = ["The cat sat on the mat.", "A kitten naps on a rug.", "Bond yields climbed today."]


def http_client(base_url: str, api_key: str = API_KEY) -> httpx.Client:
    """An HTTP client for the control plane (TCP_NODELAY: no 40 ms delayed ACKs)."""
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    headers = {"Api-Key": api_key, "X-Pinecone-Api-Version": "2025-10"}
    return httpx.Client(base_url=base_url, headers=headers, transport=transport, timeout=120)


@pytest.fixture(scope="module")
def api(server: LocalServer) -> Iterator[httpx.Client]:
    with http_client(server.url) as client:
        yield client


def embed(api: httpx.Client, model: str, texts: list[str], parameters: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"model": model, "inputs": [{"text": t} for t in texts]}
    if parameters is not None:
        body["parameters"] = parameters
    return api.post("/embed", json=body)


# -------------------------------------------------------------------------------------------- raw HTTP
@needs_models
def test_dense_embed_answers_pinecones_embeddings_list(api: httpx.Client):
    response = embed(api, DENSE, TEXTS, {"input_type": "passage"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"model", "vector_type", "data", "usage"}
    assert (body["model"], body["vector_type"]) == (DENSE, "dense")
    assert [item["vector_type"] for item in body["data"]] == ["dense"] * 3
    vectors = np.array([item["values"] for item in body["data"]])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert body["usage"]["total_tokens"] > 10


def test_sparse_embed_answers_indices_values_and_tokens(api: httpx.Client):
    response = embed(api, SPARSE, ["cats chase cats"], {"input_type": "passage", "return_tokens": True})
    assert response.status_code == 200, response.text
    item = response.json()["data"][0]
    assert item["vector_type"] == "sparse"
    assert sorted(item["sparse_tokens"]) == ["cats", "chase"]
    assert len(item["sparse_indices"]) == len(item["sparse_values"]) == 2
    assert response.json()["usage"] == {"total_tokens": 3}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"model": "multilingual-e5-large", "inputs": [{"text": "x"}]},
            400,
            "Model multilingual-e5-large not found. Supported models: 'all-minilm-l6-v2', 'pinecone-rag-",
        ),
        ({"model": SPARSE, "inputs": [{"text": "x"}]}, 400, "requires the parameter 'input_type'"),
        (
            {"model": SPARSE, "inputs": [{"text": "x"}], "parameters": {"input_type": "question"}},
            400,
            "Invalid value 'question'",
        ),
        (
            {"model": SPARSE, "inputs": [{"text": "x"}] * 97, "parameters": {"input_type": "query"}},
            400,
            "Batch size 97 exceeds the maximum of 96",
        ),
        (
            {
                "model": SPARSE,
                "inputs": [{"text": "w " * 600}],
                "parameters": {"input_type": "query", "truncate": "NONE"},
            },
            400,
            "more than the 512",
        ),
        ({"model": SPARSE, "inputs": []}, 400, "inputs must be a non-empty list"),
        ({"inputs": [{"text": "x"}]}, 400, "needs a model"),
    ],
)
def test_bad_embed_requests_get_pinecones_error_shape(
    api: httpx.Client, body: dict[str, Any], status: int, message: str
):
    response = api.post("/embed", json=body)
    assert response.status_code == status
    error = response.json()
    assert error["status"] == status
    assert error["error"]["code"] == "INVALID_ARGUMENT"
    assert message in error["error"]["message"]


def test_malformed_json_and_a_missing_key_are_refused(server: LocalServer, api: httpx.Client):
    response = api.post("/embed", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "UNPROCESSABLE_ENTITY"
    with http_client(server.url, api_key="") as anonymous:
        refused = anonymous.post("/embed", json={"model": SPARSE, "inputs": [{"text": "x"}]})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "UNAUTHENTICATED"


def test_models_are_listed_filtered_and_described(api: httpx.Client):
    listed = api.get("/models").json()["models"]
    assert {m["model"] for m in listed} >= {DENSE, SPARSE, "pinecone-rag-bm25-rerank"}
    sparse_only = api.get("/models", params={"type": "embed", "vector_type": "sparse"}).json()["models"]
    assert {m["model"] for m in sparse_only} == {SPARSE, "pinecone-sparse-english-v0"}
    described = api.get(f"/models/{DENSE}").json()
    assert (described["default_dimension"], described["supported_metrics"]) == (384, ["cosine", "dotproduct"])
    missing = api.get("/models/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    assert "Supported models" in missing.json()["error"]["message"]


def test_rerank_orders_documents_and_honours_top_n_and_return_documents(api: httpx.Client):
    body = {
        "model": "pinecone-rag-bm25-rerank",
        "query": "python decorators",
        "documents": ["python lists", {"text": "python decorators wrap functions"}, "bread"],
        "top_n": 2,
        "return_documents": False,
    }
    response = api.post("/rerank", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [item["index"] for item in answer["data"]] == [1, 0]
    assert all("document" not in item for item in answer["data"])
    assert answer["usage"] == {"rerank_units": 1}
    missing_field = api.post("/rerank", json={**body, "rank_fields": ["title"]})
    assert missing_field.status_code == 400
    assert "no string field 'title'" in missing_field.json()["error"]["message"]


# --------------------------------------------------------------------------------------- official SDK
@pytest.fixture(scope="module")
def sdk(server: LocalServer) -> Pinecone:
    return Pinecone(api_key=API_KEY, host=server.url)


@needs_models
def test_official_sdk_embeds_with_the_dense_model_unchanged(sdk: Pinecone):
    result = sdk.inference.embed(model=DENSE, inputs=TEXTS, parameters={"input_type": "query"})
    assert result.vector_type == "dense"
    assert len(result.data) == 3
    assert len(result.data[0]["values"]) == 384
    assert result.usage["total_tokens"] > 10


def test_official_sdk_sparse_embed_rerank_models_and_errors(sdk: Pinecone):
    sparse = sdk.inference.embed(
        model="pinecone-sparse-english-v0", inputs="hello sparse world", parameters={"input_type": "query"}
    )
    assert sparse.vector_type == "sparse"
    assert len(sparse.data[0]["sparse_indices"]) == 3
    ranked = sdk.inference.rerank(
        model="pinecone-rag-bm25-rerank", query="cats", documents=["dogs bark", "cats purr"], top_n=1
    )
    assert ranked.data[0]["index"] == 1
    assert ranked.data[0]["document"]["text"] == "cats purr"
    assert sdk.inference.get_model(model_name=SPARSE).vector_type == "sparse"
    with pytest.raises(PineconeApiException) as error:
        sdk.inference.embed(model="nope", inputs=["x"])
    assert error.value.status == 400
    assert "Supported models" in str(error.value.body)


# ----------------------------------------------------------------------------------------- our client
@needs_models
def test_our_client_embeds_as_the_adapters_call_it(server: LocalServer):
    with PineconeClient(API_KEY, server.url) as pc:
        passages = pc.inference.embed(model=DENSE, inputs=TEXTS, parameters={"input_type": "passage"})
        query = pc.inference.embed(DENSE, ["a small cat"], {"input_type": "query"})
        assert [e.values.shape for e in passages] == [(384,)] * 3
        scores = [float(query[0].values @ e.values) for e in passages]
        assert scores.index(max(scores)) in (0, 1)
        batched = pc.inference.embed(
            SPARSE, [f"text {i}" for i in range(5)], {"input_type": "passage"}, max_batch=2
        )
        assert len(batched) == 5
        assert batched.total_tokens == 10
        with pytest.raises(InvalidArgumentError, match="Supported models"):
            pc.inference.embed("nope", ["x"])


async def _async_rerank(server: LocalServer) -> Any:
    async with AsyncPineconeClient(API_KEY, server.url) as pc:
        sparse = await pc.inference.embed(SPARSE, ["async text"], {"input_type": "query"})
        ranked = await pc.inference.rerank("pinecone-rag-bm25-rerank", "async", ["sync", "async io"])
        return sparse, ranked


@pytest.mark.asyncio
async def test_our_async_client_embeds_and_reranks(server: LocalServer):
    sparse, ranked = await _async_rerank(server)
    assert sparse.vector_type == "sparse"
    assert sparse[0].sparse_indices
    assert ranked.data[0].index == 1
    assert ranked.rerank_units == 1

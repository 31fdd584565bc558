"""Integrated indexes: ``create_index_for_model`` and the records API, through our client and the SDK."""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pinecone import Pinecone
from pinecone.exceptions import PineconeApiException

from pinecone_rag import AsyncPineconeClient, InvalidArgumentError, PineconeClient
from pinecone_rag.models import IntegratedIndexModel, SearchRecordsResponse
from pinecone_rag.server import LocalServer
from pinecone_rag.server.control_db import ControlDatabase
from pinecone_rag.server.embedding_models import dense_extra_installed

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

needs_models = pytest.mark.skipif(not dense_extra_installed(), reason="the models extra is not installed")
API_KEY = "test-key"
DOCS = [
    {
        "_id": "with",
        "chunk_text": "The with statement wraps a block in a context manager.",
        "topic": "syntax",
    },
    {"_id": "for", "chunk_text": "A for loop iterates over the items of any sequence.", "topic": "syntax"},
    {"id": "bread", "chunk_text": "Knead the dough and bake the bread for forty minutes.", "topic": "food"},
]
EMBED = {"field_map": {"text": "chunk_text"}}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def pc(server: LocalServer) -> Iterator[PineconeClient]:
    with PineconeClient(API_KEY, server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def sparse_index(pc: PineconeClient) -> Iterator[str]:
    name = unique("bm25")
    model = pc.create_index_for_model(name, "aws", "us-east-1", {"model": "pinecone-rag-bm25", **EMBED})
    assert model.vector_type == "sparse"
    pc.index(name).upsert_records("docs", DOCS)
    yield name
    pc.delete_index(name)


@pytest.fixture(scope="module")
def dense_index(pc: PineconeClient) -> Iterator[str]:
    if not dense_extra_installed():
        pytest.skip("the models extra is not installed")
    name = unique("minilm")
    pc.create_index_for_model(name, "aws", "us-east-1", {"model": "all-minilm-l6-v2", **EMBED})
    pc.index(name).upsert_records("docs", DOCS)
    yield name
    pc.delete_index(name)


# ---------------------------------------------------------------------------------------- our client
@needs_models
def test_create_for_model_describes_the_embed_config(pc: PineconeClient, dense_index: str):
    model = pc.create_index_for_model(
        unique("again"), "aws", "us-east-1", {"model": "all-minilm-l6-v2", "metric": "dotproduct", **EMBED}
    )
    try:
        assert isinstance(model, IntegratedIndexModel)
        assert (model.dimension, model.metric, model.ready) == (384, "dotproduct", True)
        assert model.embed is not None
        assert model.embed.field_map == {"text": "chunk_text"}
        assert model.embed.read_parameters["input_type"] == "query"
        assert model.embed.write_parameters == {"input_type": "passage", "truncate": "END"}
    finally:
        pc.delete_index(model.name)
    assert pc.describe_index(dense_index).dimension == 384


@needs_models
def test_text_search_finds_the_record_by_meaning_with_fields_and_filter(pc: PineconeClient, dense_index: str):
    index = pc.index(dense_index)  # gRPC data plane; records go over REST to the same host
    found = index.search("docs", {"top_k": 2, "inputs": {"text": "context managers in Python"}})
    assert isinstance(found, SearchRecordsResponse)
    assert found.hits[0].id == "with"
    assert found.hits[0].fields == {"chunk_text": DOCS[0]["chunk_text"], "topic": "syntax"}
    assert found.embed_total_tokens is not None
    food = index.search(
        "docs", {"top_k": 3, "inputs": {"text": "loops"}, "filter": {"topic": "food"}}, fields=["topic"]
    )
    assert [(hit.id, hit.fields) for hit in food] == [("bread", {"topic": "food"})]


@needs_models
def test_search_reranks_hits_with_either_local_reranker(pc: PineconeClient, dense_index: str):
    index = pc.index(dense_index, transport="rest")
    for model in ("pinecone-rag-bm25-rerank", "pinecone-rag-minilm-rerank"):
        ranked = index.search(
            "docs",
            {"top_k": 3, "inputs": {"text": "bake bread"}},
            rerank={"model": model, "rank_fields": ["chunk_text"], "top_n": 2},
        )
        assert [hit.id for hit in ranked][:1] == ["bread"]
        assert len(ranked) == 2
        assert ranked.rerank_units == 1
        assert all(0.0 <= hit.score <= 1.0 for hit in ranked)


def test_sparse_integrated_index_searches_by_terms(pc: PineconeClient, sparse_index: str):
    hits = pc.index(sparse_index).search("docs", {"top_k": 3, "inputs": {"text": "dough"}})
    assert [hit.id for hit in hits] == ["bread"]
    upserted = [{"_id": f"r{i}", "chunk_text": f"record number {i}"} for i in range(100)]
    pc.index(sparse_index).upsert_records("bulk", upserted)  # two requests: 96 + 4
    assert pc.index(sparse_index).describe_index_stats().namespaces["bulk"].vector_count == 100


@pytest.mark.asyncio
async def test_async_client_creates_upserts_and_searches(server: LocalServer):
    async with AsyncPineconeClient(API_KEY, server.url, timeout=120) as client:
        name = unique("async")
        model = await client.create_index_for_model(
            name, "aws", "us-east-1", {"model": "pinecone-rag-bm25", **EMBED}
        )
        assert model.embed is not None
        index = await client.index(name)
        await index.upsert_records("", DOCS)
        found = await index.search("", {"top_k": 1, "inputs": {"text": "iterates sequence"}})
        await client.delete_index(name)
    assert [hit.id for hit in found] == ["for"]


def test_records_errors_are_clear(pc: PineconeClient, server: LocalServer, sparse_index: str):
    with pytest.raises(InvalidArgumentError, match="Model text-embedding-3-large not found"):
        pc.create_index_for_model(
            unique("bad"), "aws", "us-east-1", {"model": "text-embedding-3-large", **EMBED}
        )
    with pytest.raises(InvalidArgumentError, match="supports the metrics dotproduct"):
        pc.create_index_for_model(
            unique("bad"), "aws", "us-east-1", {"model": "pinecone-rag-bm25", "metric": "cosine", **EMBED}
        )
    index = pc.index(sparse_index)
    with pytest.raises(InvalidArgumentError, match="needs a string field 'chunk_text'"):
        index.upsert_records("docs", [{"_id": "x", "text": "wrong field"}])
    classic = unique("classic")
    pc.create_index(classic, dimension=4)
    try:
        with pytest.raises(InvalidArgumentError, match="no integrated embedding"):
            pc.index(classic).upsert_records("docs", DOCS)
    finally:
        pc.delete_index(classic)
    host = pc.describe_index(sparse_index).host
    raw = httpx.post(
        f"{host}/records/namespaces/docs/upsert",
        content=b"\n".join(b'{"_id": "n%d", "chunk_text": "x"}' % i for i in range(97)),
        headers={"Api-Key": API_KEY, "content-type": "application/x-ndjson"},
    )
    assert raw.status_code == 400
    assert raw.json() == {
        "code": 3,
        "message": "Too many records (97) in one request; the limit is 96.",
        "details": [],
    }
    # Malformed query vectors are 400s naming the field, never 500s.
    for values in ["abc", [1, [2], 3, 4], [1, "x"], {"a": 1}]:
        bad = httpx.post(
            f"{host}/records/namespaces/docs/search",
            json={"query": {"top_k": 1, "vector": {"values": values}}},
            headers={"Api-Key": API_KEY},
        )
        assert bad.status_code == 400, bad.text
        assert "query.vector.values" in bad.json()["message"]


# ------------------------------------------------------------------------------------- official SDK
def test_official_sdk_creates_upserts_and_searches_unchanged(server: LocalServer):
    sdk = Pinecone(api_key=API_KEY, host=server.url)
    name = unique("sdk")
    model = sdk.create_index_for_model(
        name=name, cloud="aws", region="us-east-1", embed={"model": "pinecone-sparse-english-v0", **EMBED}
    )
    try:
        assert model.embed.model == "pinecone-sparse-english-v0"  # the alias keeps the name asked for
        assert model.embed.vector_type == "sparse"
        index = sdk.Index(host=model.host)
        index.upsert_records("docs", DOCS)
        result = index.search(
            namespace="docs",
            query={"top_k": 2, "inputs": {"text": "statement block"}},
            rerank={"model": "pinecone-rag-bm25-rerank", "rank_fields": ["chunk_text"]},
            fields=["topic"],
        )
        hits: list[Any] = result.result.hits
        assert hits[0]["_id"] == "with"
        assert hits[0]["fields"] == {"topic": "syntax"}
        assert result.usage.rerank_units == 1
        with pytest.raises(PineconeApiException) as error:
            sdk.create_index_for_model(
                name=unique("x"), cloud="aws", region="us-east-1", embed={"model": "nope", **EMBED}
            )
        assert error.value.status == 400
    finally:
        sdk.delete_index(name)


# ------------------------------------------------------------------------------------------ storage
def test_the_embed_config_survives_a_restart(tmp_path: Path):
    embed = {"model": "pinecone-rag-bm25", **EMBED}
    with LocalServer(tmp_path, port=0) as first, PineconeClient(API_KEY, first.url) as pc:
        pc.create_index_for_model("kept", "aws", "us-east-1", embed)
        pc.index("kept").upsert_records("docs", DOCS)
    with LocalServer(tmp_path, port=0) as second, PineconeClient(API_KEY, second.url) as pc:
        body = httpx.get(f"{second.url}/indexes/kept", headers={"Api-Key": API_KEY}).json()
        assert body["embed"]["model"] == "pinecone-rag-bm25"
        assert [
            hit.id for hit in pc.index("kept").search("docs", {"top_k": 1, "inputs": {"text": "dough"}})
        ] == ["bread"]


def test_a_control_database_from_before_integrated_indexes_opens(tmp_path: Path):
    path = tmp_path / "control.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE indexes (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, "
            "dimension INTEGER, metric TEXT NOT NULL, vector_type TEXT NOT NULL, spec TEXT NOT NULL, "
            "tags TEXT NOT NULL, deletion_protection TEXT NOT NULL, port INTEGER, created_at REAL NOT NULL, "
            "UNIQUE (project_id, name))"
        )
        old.execute(
            "INSERT INTO indexes VALUES "
            "('i1', 'default', 'old', 4, 'cosine', 'dense', '{}', '{}', 'disabled', NULL, 0)"
        )
    old.close()
    database = ControlDatabase(path)
    try:
        (record,) = database.indexes()
        assert (record.name, record.embed) == ("old", None)
    finally:
        database.close()

"""I/O-free parts of the control plane, discovery and inference (HTTP plumbing: test_client_http.py)."""

from __future__ import annotations

import inspect

import httpx
import numpy as np
import pytest

from pinecone_rag.client import _http
from pinecone_rag.client._http import (
    HttpCall,
    make_client,
)
from pinecone_rag.client.control import (
    AsyncControlPlane,
    ControlPlane,
    Poller,
    configure_index_call,
    create_index_call,
    delete_index_call,
    describe_index_call,
    list_indexes_call,
    parse_grpc_port,
    parse_index_list,
    parse_index_model,
)
from pinecone_rag.client.discovery import (
    DEFAULT_LEGACY_ENVIRONMENT,
    HostCache,
    address_for,
    is_loopback_host,
    legacy_controller_url,
    legacy_index_host,
    parse_whoami,
    whoami_call,
)
from pinecone_rag.client.inference import (
    AsyncInference,
    Inference,
    embed_call,
    embed_calls,
    merge_embeddings,
    parse_embeddings,
    parse_rerank,
    rerank_call,
)
from pinecone_rag.config import ClientConfig
from pinecone_rag.errors import (
    ApiError,
    ConfigurationError,
    PineconeTimeoutError,
)
from pinecone_rag.models import IndexModel, PodSpec, ServerlessSpec

SECRET = "pcsk_secret_key_value"

# --------------------------------------------------------------------------------- request builders


def test_create_index_call_dense_defaults():
    call = create_index_call("docs", dimension=384)
    assert (call.method, call.path) == ("POST", "/indexes")
    assert call.json == {
        "name": "docs",
        "dimension": 384,
        "metric": "cosine",
        "vector_type": "dense",
        "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
        "deletion_protection": "disabled",
    }


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_create_index_call_metrics_specs_and_tags(metric):
    call = create_index_call(
        "a-1",
        dimension=20_000,
        metric=metric,
        spec=PodSpec(environment="us-west1-gcp"),
        tags={"team": "search", "env_x-1": ""},
        deletion_protection="enabled",
    )
    assert call.json["metric"] == metric
    assert call.json["spec"]["pod"]["environment"] == "us-west1-gcp"
    assert call.json["tags"] == {"team": "search", "env_x-1": ""}
    assert call.json["deletion_protection"] == "enabled"
    raw = create_index_call("b", dimension=1, spec={"serverless": {"cloud": "gcp", "region": "x"}})
    assert raw.json["spec"] == {"serverless": {"cloud": "gcp", "region": "x"}}
    assert create_index_call("c", dimension=2, spec=ServerlessSpec("azure", "eastus2")).json["spec"] == {
        "serverless": {"cloud": "azure", "region": "eastus2"}
    }


def test_create_index_call_sparse():
    call = create_index_call("sparse-1", vector_type="sparse")
    assert "dimension" not in call.json
    assert call.json["metric"] == "dotproduct"
    assert call.json["vector_type"] == "sparse"
    assert create_index_call("s", vector_type="sparse", metric="dotproduct").json["metric"] == "dotproduct"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "", "dimension": 3}, "Invalid index name"),
        ({"name": "-docs", "dimension": 3}, "Invalid index name"),
        ({"name": "docs-", "dimension": 3}, "Invalid index name"),
        ({"name": "Docs", "dimension": 3}, "Invalid index name"),
        ({"name": "do_cs", "dimension": 3}, "Invalid index name"),
        ({"name": "a" * 46, "dimension": 3}, "Invalid index name"),
        ({"name": "docs"}, "dimension between 1 and 20000"),
        ({"name": "docs", "dimension": 0}, "dimension between 1 and 20000"),
        ({"name": "docs", "dimension": 20_001}, "dimension between 1 and 20000"),
        ({"name": "docs", "dimension": True}, "dimension between 1 and 20000"),
        ({"name": "docs", "dimension": 3.0}, "dimension between 1 and 20000"),
        ({"name": "docs", "dimension": 3, "metric": "manhattan"}, "metric must be one of"),
        ({"name": "docs", "vector_type": "sparse", "dimension": 3}, "has no dimension"),
        ({"name": "docs", "vector_type": "sparse", "metric": "cosine"}, "dotproduct"),
        ({"name": "docs", "vector_type": "hybrid", "dimension": 3}, "vector_type"),
        ({"name": "docs", "dimension": 3, "spec": {}}, "spec must be"),
        ({"name": "docs", "dimension": 3, "spec": {"cloud": "aws"}}, "spec must be"),
        ({"name": "docs", "dimension": 3, "deletion_protection": "on"}, "deletion_protection"),
        ({"name": "docs", "dimension": 3, "tags": {"bad key": "v"}}, "Invalid tag key"),
        ({"name": "docs", "dimension": 3, "tags": {"k": "v" * 121}}, "at most 120"),
        ({"name": "docs", "dimension": 3, "tags": {f"k{i}": "v" for i in range(21)}}, "at most 20 tags"),
    ],
)
def test_create_index_call_rejects_bad_arguments(kwargs, fragment):
    name = kwargs.pop("name")
    with pytest.raises(ConfigurationError, match=fragment):
        create_index_call(name, **kwargs)


def test_other_builders():
    assert describe_index_call("docs") == HttpCall("GET", "/indexes/docs")
    assert list_indexes_call() == HttpCall("GET", "/indexes")
    assert delete_index_call("docs") == HttpCall("DELETE", "/indexes/docs")
    # Path segments are quoted, so a name cannot reach another route.
    assert describe_index_call("a/../b?x").path == "/indexes/a%2F..%2Fb%3Fx"
    with pytest.raises(ConfigurationError):
        describe_index_call("")
    assert configure_index_call("docs").json == {}
    call = configure_index_call(
        "docs", deletion_protection="enabled", tags={"a": "1", "b": ""}, replicas=2, pod_type="p1.x2"
    )
    assert (call.method, call.path) == ("PATCH", "/indexes/docs")
    assert call.json == {
        "deletion_protection": "enabled",
        "tags": {"a": "1", "b": ""},
        "spec": {"pod": {"replicas": 2, "pod_type": "p1.x2"}},
    }
    for bad in ({"replicas": 0}, {"pod_type": ""}, {"deletion_protection": "yes"}, {"tags": {"": "x"}}):
        with pytest.raises(ConfigurationError):
            configure_index_call("docs", **bad)


# ---------------------------------------------------------------------------------------- parsers

INDEX_2025_10 = {
    "name": "docs",
    "dimension": 384,
    "metric": "euclidean",
    "host": "docs-abc1234.svc.aped-4627-b74a.pinecone.io",
    "private_host": "docs-abc1234.svc.private.aped-4627-b74a.pinecone.io",
    "deletion_protection": "enabled",
    "tags": {"team": "search"},
    "spec": {
        "serverless": {
            "cloud": "aws",
            "region": "us-east-1",
            "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}},
        }
    },
    "status": {"ready": True, "state": "Ready"},
    "vector_type": "dense",
}
SPARSE_2025_10 = {
    "name": "sparse-docs",
    "metric": "dotproduct",
    "host": "http://127.0.0.1:5081",
    "deletion_protection": "disabled",
    "tags": None,
    "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
    "status": {"ready": False, "state": "Initializing"},
    "vector_type": "sparse",
}


def test_parse_index_model_dense_and_sparse():
    dense = parse_index_model(INDEX_2025_10, httpx.Headers({"X-Pinecone-Rag-Grpc-Port": "41234"}))
    assert dense == IndexModel(
        name="docs",
        host="docs-abc1234.svc.aped-4627-b74a.pinecone.io",
        metric="euclidean",
        dimension=384,
        vector_type="dense",
        deletion_protection="enabled",
        tags={"team": "search"},
        spec=INDEX_2025_10["spec"],
        ready=True,
        state="Ready",
        grpc_port=41234,
    )
    sparse = parse_index_model(SPARSE_2025_10)
    assert sparse.dimension is None
    assert (sparse.vector_type, sparse.metric, sparse.tags) == ("sparse", "dotproduct", {})
    assert (sparse.ready, sparse.state, sparse.grpc_port) == (False, "Initializing", None)
    assert [m.name for m in parse_index_list({"indexes": [INDEX_2025_10, SPARSE_2025_10]})] == [
        "docs",
        "sparse-docs",
    ]
    assert parse_index_list({"indexes": []}) == []


def test_parse_index_model_rejects_garbage():
    with pytest.raises(ApiError, match="'host'"):
        parse_index_model({"name": "x"})
    with pytest.raises(ApiError):
        parse_index_model([1, 2])
    with pytest.raises(ApiError):
        parse_index_list({"indexes": "nope"})


@pytest.mark.parametrize(
    ("value", "expected"), [("41234", 41234), ("0", None), ("70000", None), ("x", None), (None, None)]
)
def test_parse_grpc_port(value, expected):
    headers = {} if value is None else {"x-pinecone-rag-grpc-port": value}
    assert parse_grpc_port(headers) == expected


def test_poller_grows_to_one_second_then_times_out():
    now = [0.0]
    poller = Poller("Index 'docs' was not ready", 3.0, clock=lambda: now[0])
    delays = []
    for _ in range(7):
        delays.append(poller.next_delay())
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    now[0] = 2.5
    assert poller.next_delay() == pytest.approx(0.5)  # never past the deadline
    now[0] = 3.0
    with pytest.raises(
        PineconeTimeoutError, match=r"Index 'docs' was not ready within 3 s \(last state: X\)"
    ):
        poller.next_delay("X")


# ------------------------------------------------------------------------------------------ clients


def test_make_client_settings():
    config = ClientConfig(api_key=SECRET, controller_host="http://127.0.0.1:5080", timeout=7.0)
    with make_client(config) as client:
        assert str(client.base_url) == "http://127.0.0.1:5080"
        assert client.headers["api-key"] == SECRET
        assert client.headers["x-pinecone-api-version"] == "2025-10"
        assert client.timeout.read == 7.0
    with make_client(config, "http://127.0.0.1:5081") as client:
        assert str(client.base_url) == "http://127.0.0.1:5081"
    assert _http.SOCKET_OPTIONS  # TCP_NODELAY


def public_methods(cls):
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_") and name not in ("close", "aclose")
    }


@pytest.mark.parametrize(
    ("sync", "asynchronous"), [(ControlPlane, AsyncControlPlane), (Inference, AsyncInference)]
)
def test_sync_async_twins_have_the_same_signatures(sync, asynchronous):
    sync_methods = public_methods(sync)
    async_methods = public_methods(asynchronous)
    assert sync_methods.keys() == async_methods.keys()
    for name, signature in sync_methods.items():
        assert list(signature.parameters) == list(async_methods[name].parameters), name
        for param in signature.parameters.values():
            twin = async_methods[name].parameters[param.name]
            assert (param.kind, param.default) == (twin.kind, twin.default), (name, param.name)
        assert inspect.iscoroutinefunction(getattr(asynchronous, name)), name


# ----------------------------------------------------------------------------------------- discovery


def test_legacy_flow_pieces():
    assert DEFAULT_LEGACY_ENVIRONMENT == "us-west1-gcp"
    assert legacy_controller_url() == "https://controller.us-west1-gcp.pinecone.io"
    assert legacy_controller_url("gcp-starter") == "https://controller.gcp-starter.pinecone.io"
    assert whoami_call() == HttpCall("GET", "/actions/whoami")
    assert whoami_call("http://127.0.0.1:5080/").path == "http://127.0.0.1:5080/actions/whoami"
    assert parse_whoami({"project_name": "abc1234", "user_label": "u", "user_name": "n"}) == "abc1234"
    assert legacy_index_host("docs", "abc1234", "us-west1-gcp") == "docs-abc1234.svc.us-west1-gcp.pinecone.io"
    for bad in ({}, {"project_name": ""}, [], None):
        with pytest.raises(ApiError):
            parse_whoami(bad)
    with pytest.raises(ConfigurationError):
        legacy_controller_url("evil.com/x")


def test_host_cache():
    cache = HostCache()
    assert cache.get("docs") is None
    cache.put("docs", "h:1", 9)
    cache.put_project("ctl", "proj")
    assert cache.get("docs") == ("h:1", 9)
    assert cache.get_project("ctl") == "proj"
    assert len(cache) == 1
    cache.invalidate("docs")
    assert cache.get("docs") is None
    cache.clear()
    assert cache.get_project("ctl") is None


@pytest.mark.parametrize(
    ("host", "grpc_port", "rest", "target", "secure", "direct"),
    [
        ("http://127.0.0.1:5081", None, "http://127.0.0.1:5081", "127.0.0.1:5081", False, None),
        ("http://127.0.0.1:5081", 41234, "http://127.0.0.1:5081", "127.0.0.1:5081", False, "127.0.0.1:41234"),
        ("localhost:5081", None, "http://localhost:5081", "localhost:5081", False, None),
        ("localhost:5081", 41234, "http://localhost:5081", "localhost:5081", False, "127.0.0.1:41234"),
        ("[::1]:5081", 7, "http://[::1]:5081", "[::1]:5081", False, "[::1]:7"),
        (
            "index-abc.svc.aws.pinecone.io",
            None,
            "https://index-abc.svc.aws.pinecone.io",
            "index-abc.svc.aws.pinecone.io:443",
            True,
            None,
        ),
        (
            "index-abc.svc.aws.pinecone.io",
            41234,  # a port hint means nothing for a remote host
            "https://index-abc.svc.aws.pinecone.io",
            "index-abc.svc.aws.pinecone.io:443",
            True,
            None,
        ),
        ("https://x.pinecone.io", None, "https://x.pinecone.io", "x.pinecone.io:443", True, None),
        ("https://x.pinecone.io/", 5, "https://x.pinecone.io", "x.pinecone.io:443", True, None),
        ("http://example.com:8080", None, "http://example.com:8080", "example.com:8080", False, None),
        ("http://example.com", None, "http://example.com", "example.com:80", False, None),
        ("https://localhost:8443", 9, "https://localhost:8443", "localhost:8443", True, "127.0.0.1:9"),
    ],
)
def test_address_for(host, grpc_port, rest, target, secure, direct):
    address = address_for(host, grpc_port)
    assert address.rest_base_url == rest
    assert address.grpc_target == target
    assert "://" not in address.grpc_target
    assert address.secure is secure
    assert address.direct_grpc_target == direct
    assert address.best_grpc_target == (direct or target)


@pytest.mark.parametrize("bad", ["", "   ", "ftp://x.io", "http://", "host:notaport"])
def test_address_for_rejects_malformed_hosts(bad):
    with pytest.raises(ConfigurationError):
        address_for(bad)


def test_is_loopback_host():
    assert is_loopback_host("127.0.0.2")
    assert is_loopback_host("LOCALHOST")
    assert is_loopback_host("[::1]")
    assert not is_loopback_host("10.0.0.1")
    assert not is_loopback_host("localhost.example.com")


# ----------------------------------------------------------------------------------------- inference


def test_embed_call_and_batches():
    call = embed_call("multilingual-e5-large", ["a", {"text": "b"}], {"input_type": "passage"})
    assert (call.method, call.path) == ("POST", "/embed")
    assert call.json == {
        "model": "multilingual-e5-large",
        "inputs": [{"text": "a"}, {"text": "b"}],
        "parameters": {"input_type": "passage"},
    }
    assert embed_call("m", "just one").json == {"model": "m", "inputs": [{"text": "just one"}]}
    calls = embed_calls("m", [str(i) for i in range(200)], max_batch=96)
    assert [len(c.json["inputs"]) for c in calls] == [96, 96, 8]
    assert [item["text"] for c in calls for item in c.json["inputs"]] == [str(i) for i in range(200)]
    for bad in ({"model": "", "inputs": ["a"]}, {"model": "m", "inputs": []}, {"model": "m", "inputs": [3]}):
        with pytest.raises(ConfigurationError):
            embed_call(bad["model"], bad["inputs"])
    with pytest.raises(ConfigurationError):
        embed_calls("m", ["a"], max_batch=0)


def test_rerank_call():
    call = rerank_call(
        "bge-reranker-v2-m3",
        "what is rag",
        ["doc a", {"text": "doc b", "source": "x"}],
        top_n=1,
        return_documents=False,
        rank_fields=["text"],
        parameters={"truncate": "END"},
    )
    assert (call.method, call.path) == ("POST", "/rerank")
    assert call.json == {
        "model": "bge-reranker-v2-m3",
        "query": "what is rag",
        "documents": [{"text": "doc a"}, {"text": "doc b", "source": "x"}],
        "top_n": 1,
        "return_documents": False,
        "rank_fields": ["text"],
        "parameters": {"truncate": "END"},
    }
    minimal = rerank_call("m", "q", ["a"]).json
    assert minimal == {"model": "m", "query": "q", "documents": [{"text": "a"}], "return_documents": True}
    for kwargs in ({"documents": []}, {"documents": "abc"}, {"top_n": 0}, {"rank_fields": []}, {"query": ""}):
        args = {"model": "m", "query": "q", "documents": ["a"], **kwargs}
        with pytest.raises(ConfigurationError):
            rerank_call(args.pop("model"), args.pop("query"), args.pop("documents"), **args)


def test_parse_embeddings_dense_and_sparse():
    dense = parse_embeddings(
        {
            "model": "multilingual-e5-large",
            "vector_type": "dense",
            "data": [{"values": [0.1, 0.2], "vector_type": "dense"}, {"values": [0.3, 0.4]}],
            "usage": {"total_tokens": 12},
        }
    )
    assert (dense.model, dense.vector_type, dense.total_tokens, len(dense)) == (
        "multilingual-e5-large",
        "dense",
        12,
        2,
    )
    assert dense[1].values.dtype == np.float32
    np.testing.assert_allclose(dense[1].values, [0.3, 0.4], rtol=1e-6)
    sparse = parse_embeddings(
        {
            "model": "pinecone-sparse-english-v0",
            "data": [{"sparse_values": [0.5, 1.5], "sparse_indices": [10, 3], "sparse_tokens": ["a", "b"]}],
            "usage": {"total_tokens": 3},
        }
    )
    assert sparse.vector_type == "sparse"
    assert sparse[0].values is None
    assert (sparse[0].sparse_indices, sparse[0].sparse_values, sparse[0].sparse_tokens) == (
        [10, 3],
        [0.5, 1.5],
        ["a", "b"],
    )
    no_tokens = parse_embeddings({"model": "m", "data": [{"sparse_values": [1.0], "sparse_indices": [1]}]})
    assert no_tokens[0].sparse_tokens is None
    assert no_tokens.total_tokens is None
    with pytest.raises(ApiError):
        parse_embeddings({"model": "m"})
    merged = merge_embeddings([dense, dense])
    assert (len(merged), merged.total_tokens) == (4, 24)


def test_parse_rerank():
    result = parse_rerank(
        {
            "model": "bge-reranker-v2-m3",
            "data": [
                {"index": 1, "score": 0.9, "document": {"text": "b"}},
                {"index": 0, "score": 0.1},
            ],
            "usage": {"rerank_units": 1},
        }
    )
    assert result.model == "bge-reranker-v2-m3"
    assert [(d.index, d.score, d.document) for d in result.data] == [(1, 0.9, {"text": "b"}), (0, 0.1, None)]
    assert result.rerank_units == 1
    with pytest.raises(ApiError):
        parse_rerank({"data": [{"score": 1.0}]})

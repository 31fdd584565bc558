"""The client's control plane, discovery and inference against a real local engine on loopback."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest

from pinecone_rag.client._http import HttpCall, make_client, raise_for_response, send
from pinecone_rag.client.control import AsyncControlPlane, ControlPlane
from pinecone_rag.client.discovery import HostCache, address_for, aresolve_host, resolve_host
from pinecone_rag.client.inference import AsyncInference, Inference
from pinecone_rag.config import ClientConfig, RetryConfig
from pinecone_rag.errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    PineconeConnectionError,
    UnauthenticatedError,
)
from pinecone_rag.models import PodSpec, ServerlessSpec
from pinecone_rag.server import LocalServer

if TYPE_CHECKING:
    from collections.abc import Iterator

KEY = "test-key"


def no_sleep(_seconds: float) -> None:
    return None


async def ano_sleep(_seconds: float) -> None:
    return None


def unique(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def config_for(url: str, key: str = KEY, **options: Any) -> ClientConfig:
    return ClientConfig.resolve(key, url, environ={}, **options)


@pytest.fixture
def control(server: LocalServer) -> Iterator[ControlPlane]:
    with ControlPlane(config_for(server.url), sleep=no_sleep) as plane:
        yield plane


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(tmp_path_factory.mktemp("keyed"), port=0, api_keys=("k",)) as running:
        yield running


# ------------------------------------------------------------------------------------------- sync


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_create_describe_list_delete_dense(control, metric):
    name = unique()
    created = control.create_index(name, dimension=8, metric=metric, tags={"team": "search"})
    assert (created.name, created.dimension, created.metric, created.vector_type) == (
        name,
        8,
        metric,
        "dense",
    )
    assert created.ready
    assert created.tags == {"team": "search"}
    assert created.grpc_port is not None
    described = control.describe_index(name)
    assert described == created
    assert name in [index.name for index in control.list_indexes()]
    assert control.has_index(name)
    control.delete_index(name)
    assert not control.has_index(name)
    assert name not in [index.name for index in control.list_indexes()]


def test_create_sparse(control):
    name = unique("sparse")
    created = control.create_index(name, vector_type="sparse", spec=ServerlessSpec("gcp", "europe-west4"))
    assert (created.dimension, created.metric, created.vector_type) == (None, "dotproduct", "sparse")
    assert created.spec["serverless"]["cloud"] == "gcp"
    assert control.describe_index(name).vector_type == "sparse"
    control.delete_index(name, timeout=None)
    assert not control.has_index(name)


def test_create_pod_spec_and_timeout_none(control):
    name = unique("pod")
    created = control.create_index(name, dimension=4, spec=PodSpec(environment="us-west1-gcp"), timeout=None)
    assert created.spec["pod"]["environment"] == "us-west1-gcp"
    configured = control.configure_index(name, replicas=2, pod_type="p1.x2")
    assert configured.spec["pod"]["replicas"] == 2
    assert configured.spec["pod"]["pod_type"] == "p1.x2"
    control.delete_index(name)


def test_configure_tags_and_deletion_protection(control):
    name = unique()
    control.create_index(name, dimension=3, tags={"a": "1", "b": "2"}, deletion_protection="enabled")
    merged = control.configure_index(name, tags={"b": "", "c": "3"})  # "" removes a tag
    assert merged.tags == {"a": "1", "c": "3"}
    assert merged.deletion_protection == "enabled"
    with pytest.raises(ForbiddenError) as caught:
        control.delete_index(name)
    assert "Deletion protection" in caught.value.message
    assert control.has_index(name)
    unprotected = control.configure_index(name, deletion_protection="disabled")
    assert unprotected.deletion_protection == "disabled"
    assert unprotected.tags == {"a": "1", "c": "3"}
    control.delete_index(name)
    assert not control.has_index(name)


def test_conflict_and_not_found(control):
    name = unique()
    control.create_index(name, dimension=3)
    with pytest.raises(AlreadyExistsError) as caught:
        control.create_index(name, dimension=3)
    assert isinstance(caught.value, ConflictError)
    assert caught.value.status == 409
    control.delete_index(name)
    for operation in (
        lambda: control.describe_index(name),
        lambda: control.delete_index(name),
        lambda: control.configure_index(name, tags={"x": "y"}),
    ):
        with pytest.raises(NotFoundError) as missing:
            operation()
        assert missing.value.status == 404
        assert name in missing.value.message


def test_bad_arguments_fail_before_io(control):
    with pytest.raises(ConfigurationError):
        control.create_index("Bad_Name", dimension=3)
    with pytest.raises(ConfigurationError):
        control.create_index(unique(), dimension=3, timeout=-1)
    with pytest.raises(ConfigurationError):
        control.create_index(unique(), vector_type="sparse", dimension=3)


def test_auth_failure_hides_the_key(keyed_server):
    wrong = "wrong-key-0123456789"
    with ControlPlane(config_for(keyed_server.url, key=wrong), sleep=no_sleep) as plane:
        with pytest.raises(UnauthenticatedError) as caught:
            plane.list_indexes()
    assert caught.value.status == 401
    assert caught.value.message == "Invalid API key."
    assert wrong not in str(caught.value)
    assert wrong not in repr(caught.value)
    with ControlPlane(config_for(keyed_server.url, key="k"), sleep=no_sleep) as plane:
        assert plane.list_indexes() == []


def test_plain_text_401_of_2026_07(keyed_server):
    transport = httpx.HTTPTransport()
    headers = {"Api-Key": "nope", "X-Pinecone-Api-Version": "2026-07"}
    with httpx.Client(base_url=keyed_server.url, headers=headers, transport=transport) as raw:
        response = raw.get("/indexes")
    assert response.headers["content-type"].startswith("text/plain")
    with pytest.raises(UnauthenticatedError) as caught:
        raise_for_response(response)
    assert caught.value.message == "Invalid API key."
    assert "nope" not in str(caught.value)


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = config_for(f"http://127.0.0.1:{port}", retries=RetryConfig(max_attempts=3))
    slept: list[float] = []
    with ControlPlane(config, sleep=slept.append) as plane:
        with pytest.raises(PineconeConnectionError) as caught:
            plane.list_indexes()
    assert f"http://127.0.0.1:{port}/indexes" in str(caught.value)
    assert len(slept) == 2


def test_borrowed_client_is_not_closed(server):
    config = config_for(server.url)
    client = make_client(config)
    with ControlPlane(config, client=client) as plane:
        plane.list_indexes()
    assert not client.is_closed
    client.close()


# ----------------------------------------------------------------------------------------- async


def test_async_lifecycle(server):
    async def main() -> None:
        async with AsyncControlPlane(config_for(server.url), sleep=ano_sleep) as plane:
            names = []
            for metric in ("cosine", "euclidean", "dotproduct"):
                name = unique("a")
                model = await plane.create_index(name, dimension=5, metric=metric)
                assert (model.metric, model.dimension, model.ready) == (metric, 5, True)
                assert model.grpc_port is not None
                names.append(name)
            sparse = unique("as")
            model = await plane.create_index(sparse, vector_type="sparse")
            assert (model.vector_type, model.dimension, model.metric) == ("sparse", None, "dotproduct")
            names.append(sparse)
            listed = {index.name for index in await plane.list_indexes()}
            assert set(names) <= listed
            assert (await plane.describe_index(names[0])).name == names[0]
            assert await plane.has_index(names[0])
            with pytest.raises(AlreadyExistsError):
                await plane.create_index(names[0], dimension=5)
            protected = await plane.configure_index(names[0], deletion_protection="enabled", tags={"k": "v"})
            assert (protected.deletion_protection, protected.tags) == ("enabled", {"k": "v"})
            with pytest.raises(ForbiddenError):
                await plane.delete_index(names[0])
            await plane.configure_index(names[0], deletion_protection="disabled")
            for name in names:
                await plane.delete_index(name)
                assert not await plane.has_index(name)
            with pytest.raises(NotFoundError):
                await plane.describe_index(names[0])
            with pytest.raises(NotFoundError):
                await plane.delete_index(names[0])

    asyncio.run(main())


def test_async_auth_failure(keyed_server):
    async def main() -> None:
        config = config_for(keyed_server.url, key="wrong-async-key")
        async with AsyncControlPlane(config, sleep=ano_sleep) as plane:
            with pytest.raises(UnauthenticatedError) as caught:
                await plane.has_index("x")
        assert "wrong-async-key" not in str(caught.value)

    asyncio.run(main())


# ------------------------------------------------------------------------------------- discovery


def test_modern_discovery_reaches_the_data_plane(control):
    name = unique("d")
    model = control.create_index(name, dimension=4)
    cache = HostCache()
    host, grpc_port = resolve_host(control, cache, name)
    assert (host, grpc_port) == (model.host, model.grpc_port)
    assert cache.get(name) == (host, grpc_port)
    address = address_for(host, grpc_port)
    assert not address.secure
    assert address.direct_grpc_target == f"127.0.0.1:{grpc_port}"
    with make_client(control.config, address.rest_base_url) as data:
        stats = send(data, HttpCall("POST", "/describe_index_stats", json={})).json()
    assert stats["dimension"] == 4
    for target in (address.grpc_target, address.direct_grpc_target):
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
    control.delete_index(name)
    cache.invalidate(name)
    with pytest.raises(NotFoundError):
        resolve_host(control, cache, name)


def test_legacy_discovery_via_whoami(server):
    config = config_for(server.url, environment="us-west1-gcp")
    cache = HostCache()
    with ControlPlane(config, sleep=no_sleep) as plane:
        entry = resolve_host(plane, cache, "docs", legacy_controller=server.url)
        assert entry == ("docs-default.svc.us-west1-gcp.pinecone.io", None)
        assert cache.get_project(server.url) == "default"
        other = resolve_host(plane, cache, "other", legacy_controller=server.url + "/")
        assert other == ("other-default.svc.us-west1-gcp.pinecone.io", None)
    address = address_for(entry[0])
    assert address.grpc_target == "docs-default.svc.us-west1-gcp.pinecone.io:443"
    assert address.secure

    async def main() -> tuple[str, int | None]:
        async with AsyncControlPlane(config, sleep=ano_sleep) as plane:
            return await aresolve_host(plane, HostCache(), "docs", legacy_controller=server.url)

    assert asyncio.run(main()) == entry


def test_legacy_discovery_rejects_a_wrong_key(keyed_server):
    config = config_for(keyed_server.url, key="bad", environment="us-west1-gcp")
    with ControlPlane(config, sleep=no_sleep) as plane, pytest.raises(UnauthenticatedError):
        resolve_host(plane, HostCache(), "docs", legacy_controller=keyed_server.url)


# ------------------------------------------------------------------------------------- inference


# The engine serves only its local models: Pinecone's hosted ones are unknown there, a clean 400 that
# lists the models it has, unretried.
def test_unknown_inference_models_fail_cleanly(server):
    slept: list[float] = []
    with ControlPlane(config_for(server.url), sleep=slept.append) as plane:
        inference = Inference(plane)
        with pytest.raises(InvalidArgumentError) as embed_error:
            inference.embed("multilingual-e5-large", ["hello"], {"input_type": "passage"})
        with pytest.raises(InvalidArgumentError) as rerank_error:
            inference.rerank("bge-reranker-v2-m3", "q", ["a", "b"], top_n=1)
    for error in (embed_error.value, rerank_error.value):
        assert error.status == 400
        assert "not found. Supported models:" in error.message
    assert slept == []

    async def main() -> None:
        async with AsyncControlPlane(config_for(server.url), sleep=ano_sleep) as plane:
            inference = AsyncInference(plane)
            with pytest.raises(InvalidArgumentError):
                await inference.embed("multilingual-e5-large", ["hello"])
            with pytest.raises(InvalidArgumentError):
                await inference.rerank("bge-reranker-v2-m3", "q", ["a"])

    asyncio.run(main())

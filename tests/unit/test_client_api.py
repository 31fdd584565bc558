"""The public API's shape: async twins, ``__all__``, configuration precedence, and the key staying secret."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import traceback
import uuid
from typing import TYPE_CHECKING, Any

import pytest

import pinecone_rag
from pinecone_rag import (
    AsyncIndex,
    AsyncPineconeClient,
    ConfigurationError,
    Index,
    PineconeClient,
    UnauthenticatedError,
)
from pinecone_rag.client.inference import AsyncInference, Inference
from pinecone_rag.config import (
    DEFAULT_CONTROLLER_HOST,
    ENV_ADDITIONAL_HEADERS,
    ENV_API_KEY,
    ENV_CONTROLLER_HOST,
    ENV_REGION,
    ClientConfig,
)
from pinecone_rag.server import LocalServer

if TYPE_CHECKING:
    from collections.abc import Iterator

# ------------------------------------------------------------------------------------------ async twins
TWINS = [(Index, AsyncIndex), (PineconeClient, AsyncPineconeClient), (Inference, AsyncInference)]
RENAMED = {"close": "aclose", "__enter__": "__aenter__", "__exit__": "__aexit__"}
DUNDERS = {"__init__", *RENAMED, *RENAMED.values()}
ASYNC_NAMES = {
    name: f"Async{name}"
    for name in ("PineconeClient", "Index", "Inference", "GrpcTransport", "RestTransport", "ControlPlane")
}


def public_methods(cls: type) -> dict[str, Any]:
    """Public methods and properties defined on ``cls`` (as stored in the class, so classmethods stay one)."""
    found = {}
    for klass in reversed(cls.__mro__[:-1]):
        for name, value in vars(klass).items():
            if name.startswith("_") and name not in DUNDERS:
                continue
            if callable(value) or isinstance(value, (classmethod, staticmethod, property)):
                found[name] = value
    return found


def as_async_annotation(annotation: Any) -> Any:
    """What the async twin's annotation should say, given the sync one (annotations are strings)."""
    if not isinstance(annotation, str):
        return annotation
    text = re.sub(r"\bIterator\[", "AsyncIterator[", annotation)
    return re.sub(r"\b(" + "|".join(ASYNC_NAMES) + r")\b", lambda m: ASYNC_NAMES[m.group(1)], text)


def parameters(function: Any, *, twin: bool = False) -> list[tuple[str, Any, Any, Any]]:
    """(name, kind, default, annotation) of every parameter; ``twin`` maps annotations to async names."""
    signature = inspect.signature(function)
    convert = as_async_annotation if twin else (lambda annotation: annotation)
    return [(p.name, p.kind, p.default, convert(p.annotation)) for p in signature.parameters.values()]


@pytest.mark.parametrize(("sync_cls", "async_cls"), TWINS, ids=[pair[0].__name__ for pair in TWINS])
def test_async_twin_has_every_method_with_identical_parameters(sync_cls: type, async_cls: type):
    sync_methods = public_methods(sync_cls)
    async_methods = public_methods(async_cls)
    expected_names = {RENAMED.get(name, name) for name in sync_methods}
    checked: list[str] = []
    assert set(async_methods) == expected_names
    for name, sync_attr in sync_methods.items():
        async_name = RENAMED.get(name, name)
        async_attr = async_methods[async_name]
        assert type(async_attr) is type(sync_attr), name
        if isinstance(sync_attr, property):
            continue
        sync_fn = sync_attr.__func__ if isinstance(sync_attr, classmethod) else sync_attr
        async_fn = async_attr.__func__ if isinstance(async_attr, classmethod) else async_attr
        assert parameters(async_fn) == parameters(sync_fn, twin=True), name
        checked.append(name)
        if isinstance(sync_attr, classmethod):  # local(): a plain constructor on both
            assert not inspect.iscoroutinefunction(async_fn), name
            continue
        if name == "__init__":
            continue
        assert not inspect.iscoroutinefunction(sync_fn), name
        assert not inspect.isasyncgenfunction(sync_fn), name
        if inspect.isgeneratorfunction(sync_fn):
            assert inspect.isasyncgenfunction(async_fn), f"{async_name} should be an async generator"
        else:
            assert inspect.iscoroutinefunction(async_fn), f"{async_name} should be a coroutine function"
        sync_return = inspect.signature(sync_fn).return_annotation
        async_return = inspect.signature(async_fn).return_annotation
        assert async_return == as_async_annotation(sync_return), name
    assert {"__init__", "close", "__enter__", "__exit__"} <= set(checked) or sync_cls is Inference
    assert len(checked) >= 3


def test_twins_cover_the_data_plane():
    """The parity test above would pass vacuously if the method lists were empty."""
    names = set(public_methods(Index))
    assert {
        "upsert",
        "upsert_from_dataframe",
        "query",
        "query_namespaces",
        "fetch",
        "fetch_by_metadata",
        "update",
        "delete",
        "list",
        "list_paginated",
        "describe_index_stats",
        "list_namespaces",
        "list_namespaces_paginated",
        "describe_namespace",
        "create_namespace",
        "delete_namespace",
        "close",
    } <= names
    assert {"local", "create_index", "describe_index", "index", "delete_index", "close"} <= set(
        public_methods(PineconeClient)
    )


# ---------------------------------------------------------------------------------------------- __all__
def test_all_is_sorted_and_every_name_resolves():
    names = pinecone_rag.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(pinecone_rag, name) is not None, name
    assert {"PineconeClient", "AsyncPineconeClient", "Index", "AsyncIndex", "UpsertResult"} <= set(names)


# -------------------------------------------------------------------------------------- configuration
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (ENV_API_KEY, ENV_CONTROLLER_HOST, ENV_ADDITIONAL_HEADERS, ENV_REGION):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def make_client(kind: str, *args: Any, **kwargs: Any) -> ClientConfig:
    """The resolved config of a sync or async client (closed again at once)."""
    if kind == "sync":
        with PineconeClient(*args, **kwargs) as client:
            return client.config

    async def build() -> ClientConfig:
        async with AsyncPineconeClient(*args, **kwargs) as client:
            return client.config

    return asyncio.run(build())


KINDS = ["sync", "async"]


@pytest.mark.parametrize("kind", KINDS)
def test_defaults_apply_when_nothing_is_set(clean_env: pytest.MonkeyPatch, kind: str):
    config = make_client(kind, "arg-key")
    assert config.api_key == "arg-key"
    assert config.controller_host == DEFAULT_CONTROLLER_HOST
    assert dict(config.additional_headers) == {}
    assert config.timeout == 30.0
    assert config.environment is None


@pytest.mark.parametrize("kind", KINDS)
def test_environment_overrides_defaults(clean_env: pytest.MonkeyPatch, kind: str):
    clean_env.setenv(ENV_API_KEY, "env-key")
    clean_env.setenv(ENV_CONTROLLER_HOST, "http://env-host:7000")
    clean_env.setenv(ENV_ADDITIONAL_HEADERS, '{"X-Env": "from-env"}')
    config = make_client(kind)
    assert config.api_key == "env-key"
    assert config.controller_host == "http://env-host:7000"
    assert dict(config.additional_headers) == {"X-Env": "from-env"}
    assert config.http_headers()["X-Env"] == "from-env"
    assert ("x-env", "from-env") in config.grpc_metadata()


@pytest.mark.parametrize("kind", KINDS)
def test_arguments_override_environment(clean_env: pytest.MonkeyPatch, kind: str):
    clean_env.setenv(ENV_API_KEY, "env-key")
    clean_env.setenv(ENV_CONTROLLER_HOST, "http://env-host:7000")
    clean_env.setenv(ENV_ADDITIONAL_HEADERS, '{"X-Env": "from-env"}')
    config = make_client(
        kind, "arg-key", "http://arg-host:8000", additional_headers={"X-Arg": "a"}, timeout=5
    )
    assert config.api_key == "arg-key"
    assert config.controller_host == "http://arg-host:8000"
    assert dict(config.additional_headers) == {"X-Arg": "a"}
    assert config.timeout == 5.0


def test_bare_hosts_get_a_scheme(clean_env: pytest.MonkeyPatch):
    assert make_client("sync", "k", "localhost:5080").controller_host == "http://localhost:5080"
    assert make_client("sync", "k", "127.0.0.1:5080/").controller_host == "http://127.0.0.1:5080"
    assert make_client("sync", "k", "api.example.com").controller_host == "https://api.example.com"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", [None, ""])
def test_missing_key_names_the_variable(clean_env: pytest.MonkeyPatch, kind: str, value: str | None):
    if value is not None:
        clean_env.setenv(ENV_API_KEY, value)
    with pytest.raises(ConfigurationError) as caught:
        make_client(kind)
    assert ENV_API_KEY in str(caught.value)


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"X": 1}'])
def test_bad_additional_headers_name_the_variable(clean_env: pytest.MonkeyPatch, raw: str):
    clean_env.setenv(ENV_ADDITIONAL_HEADERS, raw)
    with pytest.raises(ConfigurationError, match=ENV_ADDITIONAL_HEADERS):
        make_client("sync", "k")


def test_bad_transport_is_a_configuration_error(clean_env: pytest.MonkeyPatch):
    with pytest.raises(ConfigurationError, match="transport"):
        PineconeClient("k", transport="http")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ the key is secret
SECRET = "sk-SECRET-123"
RIGHT = "sk-RIGHT-456"


def test_key_is_not_in_reprs(clean_env: pytest.MonkeyPatch):
    clean_env.setenv(ENV_API_KEY, SECRET)
    with PineconeClient(additional_headers={"X-Team": "t"}) as client:
        shown = [repr(client), str(client), repr(client.config), str(client.config)]
        index = client.index(host="http://127.0.0.1:1")
        shown.append(repr(index))
        rest_index = client.index(host="http://127.0.0.1:1", transport="rest")
        shown.append(repr(rest_index))

    async def build() -> list[str]:
        async with AsyncPineconeClient() as client:
            index = await client.index(host="http://127.0.0.1:1")
            return [repr(client), repr(client.config), repr(index)]

    shown.extend(asyncio.run(build()))
    for text in shown:
        assert SECRET not in text, text
    assert "***" in repr(ClientConfig.resolve(SECRET, environ={}))


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServer, str]]:
    """An engine that accepts only RIGHT, with one index; yields the server and the index host."""
    with LocalServer(tmp_path_factory.mktemp("keyed-api"), port=0, api_keys=(RIGHT,)) as server:
        name = f"k-{uuid.uuid4().hex[:10]}"
        with PineconeClient(RIGHT, server.url) as owner:
            host = owner.create_index(name, 4).host
            assert owner.index(name).upsert([("a", [1, 2, 3, 4])]).ok
        yield server, host


def assert_secret_free(exc: BaseException) -> None:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    if isinstance(exc, UnauthenticatedError):
        texts.append(exc.message)
    for text in texts:
        assert SECRET not in text, text
        assert RIGHT not in text, text


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_wrong_key_error_and_logs_never_show_a_key(
    keyed_server: tuple[LocalServer, str], transport: str, caplog: pytest.LogCaptureFixture
):
    server, host = keyed_server
    caplog.set_level(logging.DEBUG)
    with PineconeClient(SECRET, server.url, transport=transport, retries=0) as client:  # type: ignore[arg-type]
        with pytest.raises(UnauthenticatedError) as control_error:
            client.list_indexes()
        assert_secret_free(control_error.value)
        with pytest.raises(UnauthenticatedError) as data_error:
            client.index(host=host).query([1, 2, 3, 4], top_k=1)
        assert_secret_free(data_error.value)
        assert data_error.value.status == 401

    async def failing() -> list[BaseException]:
        errors: list[BaseException] = []
        async with AsyncPineconeClient(SECRET, server.url, transport=transport, retries=0) as client:  # type: ignore[arg-type]
            index = await client.index(host=host)
            for call in (client.list_indexes(), index.fetch(["a"])):
                try:
                    await call
                except UnauthenticatedError as exc:
                    errors.append(exc)
        return errors

    errors = asyncio.run(failing())
    assert len(errors) == 2
    for error in errors:
        assert_secret_free(error)
    # The right key, used successfully, must not be logged either.
    with PineconeClient(RIGHT, server.url, transport=transport) as client:  # type: ignore[arg-type]
        assert client.index(host=host).fetch(["a"]).vectors.keys() == {"a"}
    assert caplog.records, "DEBUG logging was not captured"
    assert SECRET not in caplog.text
    assert RIGHT not in caplog.text

"""``PineconeClient`` and ``AsyncPineconeClient``: control plane, discovery, data-plane indexes.

Both talk to Pinecone's cloud (``PINECONE_API_KEY``) or to any Pinecone-compatible server, and
``PineconeClient.local()`` starts the bundled engine in-process and binds a client to it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pinecone_rag.client._http import response_json
from pinecone_rag.client.async_index import AsyncIndex
from pinecone_rag.client.control import AsyncControlPlane, ControlPlane, Poller, describe_index_call
from pinecone_rag.client.discovery import HostCache, address_for, aresolve_host, resolve_host
from pinecone_rag.client.index import Index
from pinecone_rag.client.inference import AsyncInference, Inference
from pinecone_rag.client.integrated import create_index_for_model_call, parse_integrated_index_model
from pinecone_rag.client.transport import AsyncGrpcTransport, AsyncRestTransport, GrpcTransport, RestTransport
from pinecone_rag.config import ClientConfig, RetryConfig
from pinecone_rag.errors import ApiError, ConfigurationError

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping
    from types import TracebackType

    from pinecone_rag.models import (
        DeletionProtection,
        IndexModel,
        IntegratedIndexModel,
        Metric,
        PodSpec,
        ServerlessSpec,
        VectorType,
    )
    from pinecone_rag.server import LocalServer

Transport = Literal["grpc", "rest"]
LOCAL_API_KEY = "pinecone-rag-local"


def _ready(model: IndexModel) -> bool:
    if model.state in ("InitializationFailed", "Failed"):
        raise ApiError(f"Index {model.name!r} failed to initialize (state {model.state}).")
    return model.ready


def _check_transport(transport: str) -> Transport:
    if transport not in ("grpc", "rest"):
        raise ConfigurationError(f"transport must be 'grpc' or 'rest', got {transport!r}.")
    return transport  # type: ignore[return-value]


class _LocalEngine:
    """The in-process engine a ``local()`` client owns (and the temporary directory, if it made one)."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        from pinecone_rag.server import LocalServer  # noqa: PLC0415  (the only client -> server import)

        self._temporary = path is None
        self.path = Path(tempfile.mkdtemp(prefix="pinecone-rag-")) if path is None else Path(path)
        self.server: LocalServer = LocalServer(self.path, port=0).start()

    def stop(self) -> None:
        self.server.stop()
        if self._temporary:
            shutil.rmtree(self.path, ignore_errors=True)


class PineconeClient:
    """A Pinecone client: index lifecycle over HTTP, data plane over gRPC (or REST).

    Args:
        api_key: The API key (default: ``PINECONE_API_KEY``).
        host: The control plane (default: ``PINECONE_CONTROLLER_HOST``, else ``https://api.pinecone.io``).
        timeout: Seconds per call.
        retries: Retries of retryable failures: a ``RetryConfig``, or an int (that many retries and no
            more). By default a call that cannot reach the service keeps retrying for
            ``RetryConfig.reconnect_budget`` (15 s), so calls survive a restart of the local engine:
            a long ``upsert`` reports every batch written, and a query issued while the engine is
            down answers once it is back.
        source_tag: Names your integration in the User-Agent.
        additional_headers: Extra headers (default: ``PINECONE_ADDITIONAL_HEADERS``, a JSON object).
        environment: A legacy environment such as ``us-west1-gcp`` (also ``PINECONE_REGION``): index hosts
            are then ``{index}-{project}.svc.{environment}.pinecone.io``, the project from ``whoami``.
        transport: ``"grpc"`` (default) or ``"rest"`` for the data plane, e.g. where gRPC is blocked.
        ssl_ca_certs: A PEM file of CA certificates to trust, e.g. the certificate of a local engine
            started with ``--tls-cert`` (None: the system's trust store).

    Example:
        >>> with PineconeClient.local() as pc:  # doctest: +SKIP
        ...     pc.create_index("docs", dimension=3)
        ...     index = pc.index("docs")
        ...     index.upsert([("a", [0.1, 0.2, 0.3])])
    """

    def __init__(
        self,
        api_key: str | None = None,
        host: str | None = None,
        *,
        timeout: float | None = None,
        retries: int | RetryConfig | None = None,
        source_tag: str | None = None,
        additional_headers: Mapping[str, str] | None = None,
        environment: str | None = None,
        transport: Transport = "grpc",
        ssl_ca_certs: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(
            api_key,
            host,
            timeout=timeout,
            retries=retries,
            source_tag=source_tag,
            additional_headers=additional_headers,
            environment=environment,
            ssl_ca_certs=ssl_ca_certs,
        )
        self.transport = _check_transport(transport)
        self._control = ControlPlane(self.config)
        self._hosts = HostCache()
        self._transports: dict[tuple[str, str], GrpcTransport | RestTransport] = {}
        self._lock = threading.Lock()
        self._engine: _LocalEngine | None = None
        self.inference = Inference(self._control)

    def __repr__(self) -> str:
        return f"PineconeClient(host={self.config.controller_host!r}, transport={self.transport!r})"

    @classmethod
    def local(cls, path: str | os.PathLike[str] | None = None, **options: Any) -> PineconeClient:
        """Start the bundled engine in-process (loopback, free ports) and return a client bound to it.

        Args:
            path: The data directory (kept); None uses a temporary one, deleted on close.
            **options: Other ``PineconeClient`` arguments (``transport``, ``timeout`` ...).

        The engine stops when the client is closed (or leaves its ``with`` block).
        """
        engine = _LocalEngine(path)
        try:
            client = cls(options.pop("api_key", LOCAL_API_KEY), engine.server.url, **options)
        except BaseException:
            engine.stop()
            raise
        client._engine = engine
        return client

    @property
    def local_server(self) -> LocalServer | None:
        """The engine started by :meth:`local`, if any."""
        return None if self._engine is None else self._engine.server

    # ----------------------------------------------------------------------------------- control plane
    def create_index(
        self,
        name: str,
        dimension: int | None = None,
        metric: Metric | None = None,
        spec: ServerlessSpec | PodSpec | dict[str, Any] | None = None,
        *,
        vector_type: VectorType = "dense",
        tags: dict[str, str] | None = None,
        deletion_protection: DeletionProtection = "disabled",
        timeout: float | None = 300,
    ) -> IndexModel:
        """Create an index and wait until it is ready (``timeout=None`` returns at once).

        ``metric`` defaults to cosine (dotproduct for sparse indexes), ``spec`` to ``ServerlessSpec()``.
        """
        return self._control.create_index(
            name,
            dimension,
            metric,
            spec,
            vector_type=vector_type,
            tags=tags,
            deletion_protection=deletion_protection,
            timeout=timeout,
        )

    def create_index_for_model(
        self,
        name: str,
        cloud: str,
        region: str,
        embed: Mapping[str, Any],
        *,
        tags: dict[str, str] | None = None,
        deletion_protection: DeletionProtection = "disabled",
        timeout: float | None = 300,
    ) -> IntegratedIndexModel:
        """Create an index that embeds text itself, and wait until it is ready.

        Args:
            name: The index name.
            cloud: ``aws``, ``gcp`` or ``azure``.
            region: The region, e.g. ``us-east-1``.
            embed: ``{"model": ..., "field_map": {"text": "<record field>"}}``, optionally with ``metric``,
                ``read_parameters`` and ``write_parameters``. The local engine's models are
                ``all-minilm-l6-v2`` (dense) and ``pinecone-rag-bm25`` (sparse).
            tags: Index tags.
            deletion_protection: enabled or disabled.
            timeout: Seconds to wait for readiness; None returns at once.

        Example:
            >>> pc.create_index_for_model("docs", "aws", "us-east-1",
            ...     {"model": "all-minilm-l6-v2", "field_map": {"text": "chunk_text"}})  # doctest: +SKIP
        """
        call = create_index_for_model_call(
            name, cloud, region, embed, tags=tags, deletion_protection=deletion_protection
        )
        response = self._control.request(call, idempotent=False)
        model = parse_integrated_index_model(response_json(response), response.headers)
        if timeout is None or _ready(model):
            return model
        poller = Poller(f"Index {name!r} was not ready", timeout)
        while True:
            time.sleep(poller.next_delay(model.state))
            response = self._control.request(describe_index_call(name))
            model = parse_integrated_index_model(response_json(response), response.headers)
            if _ready(model):
                return model

    def describe_index(self, name: str) -> IndexModel:
        """The index's host, dimension, metric, spec and status."""
        return self._control.describe_index(name)

    def list_indexes(self) -> list[IndexModel]:
        """Every index of the project."""
        return self._control.list_indexes()

    def has_index(self, name: str) -> bool:
        """Whether an index with this name exists."""
        return self._control.has_index(name)

    def configure_index(
        self,
        name: str,
        *,
        deletion_protection: DeletionProtection | None = None,
        tags: dict[str, str] | None = None,
        replicas: int | None = None,
        pod_type: str | None = None,
    ) -> IndexModel:
        """Change deletion protection, tags (merged; ``""`` removes one), or pod replicas and type."""
        return self._control.configure_index(
            name, deletion_protection=deletion_protection, tags=tags, replicas=replicas, pod_type=pod_type
        )

    def delete_index(self, name: str, *, timeout: float | None = 300) -> None:
        """Delete an index and wait until it is gone."""
        self._control.delete_index(name, timeout=timeout)
        self._hosts.invalidate(name)

    # ------------------------------------------------------------------------------------- data plane
    def index(
        self, name: str | None = None, *, host: str | None = None, transport: Transport | None = None
    ) -> Index:
        """The data plane of an index, by ``name`` (host looked up once and cached) or by ``host``.

        Index objects share one connection per host; closing the client closes them all.
        """
        kind = _check_transport(transport or self.transport)
        if host is None:
            if name is None:
                raise ConfigurationError("index() needs a name or host=.")
            host, grpc_port = resolve_host(self._control, self._hosts, name)
        else:
            grpc_port = None
        key = (kind, host)
        with self._lock:
            connection = self._transports.get(key)
            if connection is None:
                address = address_for(host, grpc_port)
                if kind == "grpc":
                    connection = GrpcTransport(
                        address.best_grpc_target,
                        secure=address.secure,
                        config=self.config,
                        fallback_target=address.grpc_target if address.direct_grpc_target else None,
                    )
                else:
                    connection = RestTransport(address.rest_base_url, config=self.config)
                self._transports[key] = connection
            records = (
                connection if isinstance(connection, RestTransport) else self._transports.get(("rest", host))
            )
            if records is None:
                records = RestTransport(address_for(host, grpc_port).rest_base_url, config=self.config)
                self._transports[("rest", host)] = records
        assert isinstance(records, RestTransport)
        return Index(connection, name=name, owns_transport=False, records_transport=records)

    # -------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close every connection, and stop the engine started by :meth:`local`."""
        with self._lock:
            transports = list(self._transports.values())
            self._transports.clear()
        for connection in transports:
            connection.close()
        self._control.close()
        if self._engine is not None:
            self._engine.stop()
            self._engine = None

    def __enter__(self) -> PineconeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncPineconeClient:
    """The asyncio twin of :class:`PineconeClient` (httpx.AsyncClient and grpc.aio).

    Example:
        >>> async with AsyncPineconeClient.local() as pc:  # doctest: +SKIP
        ...     await pc.create_index("docs", dimension=3)
        ...     index = await pc.index("docs")
        ...     await index.upsert([("a", [0.1, 0.2, 0.3])])
    """

    def __init__(
        self,
        api_key: str | None = None,
        host: str | None = None,
        *,
        timeout: float | None = None,
        retries: int | RetryConfig | None = None,
        source_tag: str | None = None,
        additional_headers: Mapping[str, str] | None = None,
        environment: str | None = None,
        transport: Transport = "grpc",
        ssl_ca_certs: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(
            api_key,
            host,
            timeout=timeout,
            retries=retries,
            source_tag=source_tag,
            additional_headers=additional_headers,
            environment=environment,
            ssl_ca_certs=ssl_ca_certs,
        )
        self.transport = _check_transport(transport)
        self._control = AsyncControlPlane(self.config)
        self._hosts = HostCache()
        self._transports: dict[tuple[str, str], AsyncGrpcTransport | AsyncRestTransport] = {}
        self._engine: _LocalEngine | None = None
        self.inference = AsyncInference(self._control)

    def __repr__(self) -> str:
        return f"AsyncPineconeClient(host={self.config.controller_host!r}, transport={self.transport!r})"

    @classmethod
    def local(cls, path: str | os.PathLike[str] | None = None, **options: Any) -> AsyncPineconeClient:
        """Start the bundled engine in-process and return an async client bound to it."""
        engine = _LocalEngine(path)
        try:
            client = cls(options.pop("api_key", LOCAL_API_KEY), engine.server.url, **options)
        except BaseException:
            engine.stop()
            raise
        client._engine = engine
        return client

    @property
    def local_server(self) -> LocalServer | None:
        """The engine started by :meth:`local`, if any."""
        return None if self._engine is None else self._engine.server

    async def create_index(
        self,
        name: str,
        dimension: int | None = None,
        metric: Metric | None = None,
        spec: ServerlessSpec | PodSpec | dict[str, Any] | None = None,
        *,
        vector_type: VectorType = "dense",
        tags: dict[str, str] | None = None,
        deletion_protection: DeletionProtection = "disabled",
        timeout: float | None = 300,
    ) -> IndexModel:
        """Create an index and wait until it is ready; see :meth:`PineconeClient.create_index`."""
        return await self._control.create_index(
            name,
            dimension,
            metric,
            spec,
            vector_type=vector_type,
            tags=tags,
            deletion_protection=deletion_protection,
            timeout=timeout,
        )

    async def create_index_for_model(
        self,
        name: str,
        cloud: str,
        region: str,
        embed: Mapping[str, Any],
        *,
        tags: dict[str, str] | None = None,
        deletion_protection: DeletionProtection = "disabled",
        timeout: float | None = 300,
    ) -> IntegratedIndexModel:
        """Create an index that embeds text itself; see :meth:`PineconeClient.create_index_for_model`."""
        call = create_index_for_model_call(
            name, cloud, region, embed, tags=tags, deletion_protection=deletion_protection
        )
        response = await self._control.request(call, idempotent=False)
        model = parse_integrated_index_model(response_json(response), response.headers)
        if timeout is None or _ready(model):
            return model
        poller = Poller(f"Index {name!r} was not ready", timeout)
        while True:
            await asyncio.sleep(poller.next_delay(model.state))
            response = await self._control.request(describe_index_call(name))
            model = parse_integrated_index_model(response_json(response), response.headers)
            if _ready(model):
                return model

    async def describe_index(self, name: str) -> IndexModel:
        """The index's host, dimension, metric, spec and status."""
        return await self._control.describe_index(name)

    async def list_indexes(self) -> list[IndexModel]:
        """Every index of the project."""
        return await self._control.list_indexes()

    async def has_index(self, name: str) -> bool:
        """Whether an index with this name exists."""
        return await self._control.has_index(name)

    async def configure_index(
        self,
        name: str,
        *,
        deletion_protection: DeletionProtection | None = None,
        tags: dict[str, str] | None = None,
        replicas: int | None = None,
        pod_type: str | None = None,
    ) -> IndexModel:
        """Change deletion protection, tags, or pod replicas and type."""
        return await self._control.configure_index(
            name, deletion_protection=deletion_protection, tags=tags, replicas=replicas, pod_type=pod_type
        )

    async def delete_index(self, name: str, *, timeout: float | None = 300) -> None:
        """Delete an index and wait until it is gone."""
        await self._control.delete_index(name, timeout=timeout)
        self._hosts.invalidate(name)

    async def index(
        self, name: str | None = None, *, host: str | None = None, transport: Transport | None = None
    ) -> AsyncIndex:
        """The data plane of an index, by ``name`` (looked up once, cached) or by ``host``."""
        kind = _check_transport(transport or self.transport)
        if host is None:
            if name is None:
                raise ConfigurationError("index() needs a name or host=.")
            host, grpc_port = await aresolve_host(self._control, self._hosts, name)
        else:
            grpc_port = None
        key = (kind, host)
        connection = self._transports.get(key)
        if connection is None:
            address = address_for(host, grpc_port)
            if kind == "grpc":
                connection = AsyncGrpcTransport(
                    address.best_grpc_target,
                    secure=address.secure,
                    config=self.config,
                    fallback_target=address.grpc_target if address.direct_grpc_target else None,
                )
            else:
                connection = AsyncRestTransport(address.rest_base_url, config=self.config)
            self._transports[key] = connection
        records = (
            connection if isinstance(connection, AsyncRestTransport) else self._transports.get(("rest", host))
        )
        if records is None:
            records = AsyncRestTransport(address_for(host, grpc_port).rest_base_url, config=self.config)
            self._transports[("rest", host)] = records
        assert isinstance(records, AsyncRestTransport)
        return AsyncIndex(connection, name=name, owns_transport=False, records_transport=records)

    async def aclose(self) -> None:
        """Close every connection, and stop the engine started by :meth:`local`."""
        transports = list(self._transports.values())
        self._transports.clear()
        for connection in transports:
            await connection.aclose()
        await self._control.aclose()
        if self._engine is not None:
            self._engine.stop()
            self._engine = None

    async def __aenter__(self) -> AsyncPineconeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

"""Data-plane transports: gRPC (grpcio, grpc.aio) and REST (httpx), sync and async.

A transport moves an operation's bytes and turns failures into the shared error tree; it knows nothing
about what the bytes mean (:mod:`pinecone_rag.client._ops` does). gRPC calls pass raw bytes through
grpcio (no serializer): requests come from the fast encoders and responses go to the fast decoders.

Surviving a restart of the service: every call is retried by the config's
:class:`~pinecone_rag.config.RetryConfig`, and connection failures (refused, reset, UNAVAILABLE) keep being
retried for ``reconnect_budget`` seconds, so calls in flight when the local engine is killed, and calls
issued while it is down, complete once it is back (upserts, fetches and queries are idempotent, so a
repeated attempt cannot apply anything twice). httpx opens fresh connections on its own; a gRPC channel
reconnects on its own too (its reconnect backoff is capped low for that, and a sync channel is watched
while it reconnects, see :meth:`GrpcTransport._watch`). The one thing that does not survive a restart
is the local engine's direct gRPC port, which is picked anew at each start: a gRPC transport given a
``fallback_target`` (the index's data-plane port, which is stable across restarts) moves there on the
first connection failure and stays there.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio
import httpx
import orjson

from pinecone_rag.client._http import (
    Reachability,
    acall_with_retries,
    call_with_retries,
    make_async_client,
    make_client,
    raise_for_response,
    translate_transport_error,
)
from pinecone_rag.client._records import DEFAULT_MAX_BATCH_BYTES
from pinecone_rag.errors import ApiError, PineconeConnectionError, error_for_grpc_code
from pinecone_rag.wire.messages import SERVICE_NAME

if TYPE_CHECKING:
    from collections.abc import Callable

    from pinecone_rag.client._ops import DataOp
    from pinecone_rag.config import ClientConfig

T = TypeVar("T")

MAX_MESSAGE_BYTES = 128 * 1024 * 1024
# Upsert batches are sized by their protobuf estimate (4 bytes per float). JSON spells a float32 in up to
# 16 characters ("-1.2345678e-38,"), so REST requests get a quarter of the budget to stay under 2 MB.
REST_MAX_UPSERT_BYTES = DEFAULT_MAX_BATCH_BYTES // 4
# The first and the longest wait of a gRPC channel between attempts to reconnect, in ms.
_RECONNECT_BACKOFF_MS = (200, 1000)


def _channel_options(config: ClientConfig) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.primary_user_agent", config.user_agent),
        # Retries are ours (jittered, honouring pushback); grpcio's own would double them.
        ("grpc.enable_retries", 0),
        # grpcio waits up to 120 s between reconnection attempts by default, and a call made meanwhile
        # fails at once: a service that restarted would stay unreachable long after it is back.
        ("grpc.initial_reconnect_backoff_ms", _RECONNECT_BACKOFF_MS[0]),
        ("grpc.max_reconnect_backoff_ms", _RECONNECT_BACKOFF_MS[1]),
    ]


def translate_rpc_error(error: grpc.RpcError) -> ApiError | PineconeConnectionError:
    """A grpcio error as the shared error tree (with retry pushback and request id when sent)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or str(code)
    trailers: Any = ()
    if hasattr(error, "trailing_metadata"):
        trailers = error.trailing_metadata() or ()
    retry_after = None
    request_id = None
    for key, value in trailers:
        if key == "grpc-retry-pushback-ms":
            try:
                retry_after = int(value) / 1000
            except ValueError:
                retry_after = None
        elif key in ("x-pinecone-request-id", "x-request-id"):
            request_id = value if isinstance(value, str) else value.decode()
    cls = error_for_grpc_code(code.value[0] if isinstance(code, grpc.StatusCode) else 2)
    return cls(details, request_id=request_id, retry_after=retry_after)


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


class _MetadataInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Adds ``api-key``, ``x-pinecone-api-version`` and extra headers to every call."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        metadata = (*(client_call_details.metadata or ()), *self._metadata)
        details = _CallDetails(
            client_call_details.method,
            client_call_details.timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
            client_call_details.compression,
        )
        return continuation(details, request)


class _AsyncMetadataInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """The grpc.aio twin of :class:`_MetadataInterceptor`."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()), *self._metadata)
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            client_call_details.timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


class GrpcTransport:
    """Sync gRPC transport over one channel per host (reused by every call).

    Args:
        target: ``host:port`` to dial.
        secure: Whether to use TLS.
        config: Metadata, timeout and retry policy.
        fallback_target: Where to go once ``target`` cannot be reached (see the module docstring): the
            index's data-plane port when ``target`` is the local engine's direct gRPC port.
    """

    max_upsert_bytes = DEFAULT_MAX_BATCH_BYTES
    """The estimated-size budget of one upsert request."""

    def __init__(
        self, target: str, *, secure: bool, config: ClientConfig, fallback_target: str | None = None
    ) -> None:
        self._secure = secure
        self._config = config
        self._reachability = Reachability()
        self._fallback_target = fallback_target
        self._lock = threading.Lock()
        # Channels left behind by a move to the fallback target: calls may still be running on them.
        self._retired: list[grpc.Channel] = []
        self._watched: grpc.Channel | None = None
        self._open(target)

    def _open(self, target: str) -> None:
        options = _channel_options(self._config)
        if self._secure:
            credentials = grpc.ssl_channel_credentials(root_certificates=self._config.root_certificates())
            channel = grpc.secure_channel(target, credentials, options=options)
        else:
            channel = grpc.insecure_channel(target, options=options)
        self.target = target
        self._channel = grpc.intercept_channel(channel, _MetadataInterceptor(self._config.grpc_metadata()))
        self._raw_channel = channel
        self._stubs: dict[str, Callable[..., bytes]] = {}

    def _stub(self, method: str) -> Callable[..., bytes]:
        stub = self._stubs.get(method)
        if stub is None:
            with self._lock:
                # No serializers: requests and responses stay bytes for the fast codec.
                stub = self._channel.unary_unary(
                    f"/{SERVICE_NAME}/{method}", request_serializer=None, response_deserializer=None
                )
                self._stubs[method] = stub
        return stub

    def _fall_back(self) -> None:
        """Move to the fallback target (once); the old channel closes with the transport."""
        with self._lock:
            if self._fallback_target is None:
                return
            self._retired.append(self._raw_channel)
            self._open(self._fallback_target)
            self._fallback_target = None

    def _watch(self) -> None:
        """Watch the current channel's connectivity until it is ready again.

        A sync grpcio channel notices that a reconnection attempt finished only while some thread
        polls it, and calls fail at once (without polling) while it is in TRANSIENT_FAILURE: unwatched,
        a service that restarted stayed unreachable for another 5-10 s (measured, grpcio 1.67). A
        subscription makes grpcio poll the channel (every 0.2 s, on its own thread) and connect at
        once; it is dropped when the channel is READY, so healthy channels cost nothing.
        """
        with self._lock:
            channel = self._raw_channel
            if self._watched is channel:
                return
            self._watched = channel

        def on_change(state: grpc.ChannelConnectivity) -> None:
            if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.SHUTDOWN):
                channel.unsubscribe(on_change)
                with self._lock:
                    if self._watched is channel:
                        self._watched = None

        channel.subscribe(on_change, try_to_connect=True)

    def call(self, op: DataOp[T], timeout: float | None = None) -> T:
        """Send ``op`` (retrying retryable failures, reconnecting as needed) and parse its answer."""
        payload = op.grpc_payload()
        deadline = timeout if timeout is not None else self._config.timeout

        def once() -> T:
            try:
                data = self._stub(op.method)(payload, timeout=deadline)
            except grpc.RpcError as error:
                exc = translate_rpc_error(error)
                if isinstance(exc, PineconeConnectionError):
                    self._fall_back()
                    self._watch()
                raise exc from None
            return op.parse_grpc(data)

        return call_with_retries(
            once, self._config.retries, idempotent=op.idempotent, reachability=self._reachability
        )

    def close(self) -> None:
        """Close the channel (and any channel left behind by a move to the fallback target)."""
        with self._lock:
            channels, self._retired = [*self._retired, self._raw_channel], []
        for channel in channels:
            channel.close()


class AsyncGrpcTransport:
    """Async gRPC transport (grpc.aio); create and use it on one event loop.

    Args:
        target: ``host:port`` to dial.
        secure: Whether to use TLS.
        config: Metadata, timeout and retry policy.
        fallback_target: Where to go once ``target`` cannot be reached, as for :class:`GrpcTransport`.
    """

    max_upsert_bytes = DEFAULT_MAX_BATCH_BYTES
    """The estimated-size budget of one upsert request."""

    def __init__(
        self, target: str, *, secure: bool, config: ClientConfig, fallback_target: str | None = None
    ) -> None:
        self._secure = secure
        self._config = config
        self._reachability = Reachability()
        self._fallback_target = fallback_target
        self._retired: list[grpc.aio.Channel] = []
        self._open(target)

    def _open(self, target: str) -> None:
        options = _channel_options(self._config)
        interceptors: Any = [_AsyncMetadataInterceptor(self._config.grpc_metadata())]
        if self._secure:
            credentials = grpc.ssl_channel_credentials(root_certificates=self._config.root_certificates())
            self._channel = grpc.aio.secure_channel(
                target, credentials, options=options, interceptors=interceptors
            )
        else:
            self._channel = grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
        self.target = target
        self._stubs: dict[str, Any] = {}

    def _stub(self, method: str) -> Any:
        stub = self._stubs.get(method)
        if stub is None:
            stub = self._stubs[method] = self._channel.unary_unary(
                f"/{SERVICE_NAME}/{method}", request_serializer=None, response_deserializer=None
            )
        return stub

    async def call(self, op: DataOp[T], timeout: float | None = None) -> T:
        """Send ``op`` (retrying retryable failures, reconnecting as needed) and parse its answer."""
        payload = op.grpc_payload()
        deadline = timeout if timeout is not None else self._config.timeout

        async def once() -> T:
            try:
                data = await self._stub(op.method)(payload, timeout=deadline)
            except grpc.RpcError as error:
                exc = translate_rpc_error(error)
                if isinstance(exc, PineconeConnectionError) and self._fallback_target is not None:
                    # Single-threaded (one event loop): no lock needed to move once.
                    self._retired.append(self._channel)
                    self._open(self._fallback_target)
                    self._fallback_target = None
                raise exc from None
            return op.parse_grpc(data)

        return await acall_with_retries(
            once, self._config.retries, idempotent=op.idempotent, reachability=self._reachability
        )

    async def aclose(self) -> None:
        """Close the channel (and any channel left behind by a move to the fallback target)."""
        channels, self._retired = [*self._retired, self._channel], []
        for channel in channels:
            await channel.close(grace=None)


def _decode(response: httpx.Response) -> Any:
    raise_for_response(response)
    return orjson.loads(response.content) if response.content else {}


class RestTransport:
    """Sync REST transport (httpx, keep-alive, TCP_NODELAY) for networks where gRPC is blocked."""

    max_upsert_bytes = REST_MAX_UPSERT_BYTES
    """The estimated-size budget of one upsert request."""

    def __init__(self, base_url: str, *, config: ClientConfig) -> None:
        self.base_url = base_url
        self._config = config
        self._reachability = Reachability()
        self._client = make_client(config, base_url)

    def call(self, op: DataOp[T], timeout: float | None = None) -> T:
        """Send ``op`` (retrying retryable failures) and parse its answer."""
        request = op.rest_call()
        headers = {"content-type": request.content_type} if request.body is not None else None

        def once() -> T:
            try:
                response = self._client.request(
                    request.method,
                    request.path,
                    params=httpx.QueryParams(tuple(request.params)) if request.params else None,
                    content=request.body,
                    headers=headers,
                    timeout=timeout if timeout is not None else self._config.timeout,
                )
            except httpx.HTTPError as error:
                raise translate_transport_error(error) from None
            return op.parse_rest(_decode(response))

        return call_with_retries(
            once, self._config.retries, idempotent=op.idempotent, reachability=self._reachability
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class AsyncRestTransport:
    """Async REST transport (httpx.AsyncClient)."""

    max_upsert_bytes = REST_MAX_UPSERT_BYTES
    """The estimated-size budget of one upsert request."""

    def __init__(self, base_url: str, *, config: ClientConfig) -> None:
        self.base_url = base_url
        self._config = config
        self._reachability = Reachability()
        self._client = make_async_client(config, base_url)

    async def call(self, op: DataOp[T], timeout: float | None = None) -> T:
        """Send ``op`` (retrying retryable failures) and parse its answer."""
        request = op.rest_call()
        headers = {"content-type": request.content_type} if request.body is not None else None

        async def once() -> T:
            try:
                response = await self._client.request(
                    request.method,
                    request.path,
                    params=httpx.QueryParams(tuple(request.params)) if request.params else None,
                    content=request.body,
                    headers=headers,
                    timeout=timeout if timeout is not None else self._config.timeout,
                )
            except httpx.HTTPError as error:
                raise translate_transport_error(error) from None
            return op.parse_rest(_decode(response))

        return await acall_with_retries(
            once, self._config.retries, idempotent=op.idempotent, reachability=self._reachability
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

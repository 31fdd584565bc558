"""HTTP plumbing shared by the control plane, discovery, inference and the REST data plane.

Connection setup, one mapping from HTTP failures to the error tree, and the retry loops (sync and async
twins over the same decision, :func:`is_retryable`). Nothing here knows what a request means.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson

from pinecone_rag.errors import (
    AlreadyExistsError,
    ApiError,
    ConfigurationError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    ForbiddenError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
    PineconeConnectionError,
    PineconeError,
    PineconeTimeoutError,
    ResourceExhaustedError,
    ServiceError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnprocessableEntityError,
    error_for_grpc_code,
    error_for_http_status,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from pinecone_rag.config import ClientConfig, RetryConfig

T = TypeVar("T")

SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
"""Without TCP_NODELAY, Python HTTP on loopback waits ~40 ms per request for a delayed ACK (measured)."""
DEFAULT_MAX_CONNECTIONS = 64
KEEPALIVE_SECONDS = 60.0
MAX_MESSAGE_CHARS = 2_000
REQUEST_ID_HEADERS = ("x-pinecone-request-id", "x-request-id")
_JSON_HEADERS = {"Content-Type": "application/json"}
_REQUEST_TIMEOUT = 408


@dataclass(frozen=True)
class HttpCall:
    """One HTTP request, built without I/O and sent by :func:`send` / :func:`asend`.

    Attributes:
        method: The HTTP method, e.g. ``"GET"``.
        path: A path relative to the client's base URL, or an absolute URL.
        json: The JSON body, if any (encoded with orjson; numpy arrays are allowed).
        params: Query parameters, if any.

    Example:
        >>> HttpCall("GET", "/indexes").method
        'GET'
    """

    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None


def _limits(max_connections: int) -> httpx.Limits:
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )


def make_client(
    config: ClientConfig, base_url: str | None = None, *, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> httpx.Client:
    """A keep-alive HTTP/1.1 client with TCP_NODELAY, the config's timeout and default headers.

    Args:
        config: Supplies the headers (API key, API version, User-Agent) and the timeout.
        base_url: Where relative paths go; the control plane (``config.controller_host``) by default.
        max_connections: Size of the connection pool.

    Example:
        >>> from pinecone_rag.config import ClientConfig
        >>> with make_client(ClientConfig(api_key="k"), "http://127.0.0.1:5080") as client:
        ...     str(client.base_url)
        'http://127.0.0.1:5080'
    """
    transport = httpx.HTTPTransport(
        socket_options=SOCKET_OPTIONS,
        http1=True,
        http2=False,
        limits=_limits(max_connections),
        verify=_verify(config),
    )
    return httpx.Client(
        base_url=base_url or config.controller_host,
        headers=config.http_headers(),
        timeout=httpx.Timeout(config.timeout),
        transport=transport,
        follow_redirects=False,
    )


def _verify(config: ClientConfig) -> ssl.SSLContext | bool:
    """The TLS verification httpx uses: the caller's CA bundle, else the system's trust store."""
    if config.ssl_ca_certs is None:
        return True
    return ssl.create_default_context(cafile=config.ssl_ca_certs)


def make_async_client(
    config: ClientConfig, base_url: str | None = None, *, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> httpx.AsyncClient:
    """The asyncio twin of :func:`make_client`."""
    transport = httpx.AsyncHTTPTransport(
        socket_options=SOCKET_OPTIONS,
        http1=True,
        http2=False,
        limits=_limits(max_connections),
        verify=_verify(config),
    )
    return httpx.AsyncClient(
        base_url=base_url or config.controller_host,
        headers=config.http_headers(),
        timeout=httpx.Timeout(config.timeout),
        transport=transport,
        follow_redirects=False,
    )


# ------------------------------------------------------------------------------------------- errors
def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date.

    Example:
        >>> parse_retry_after("2.5")
        2.5
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:  # a Response built by hand has no request
        return None


def _redact(text: str, request: httpx.Request | None) -> str:
    # A server (or proxy) may echo request headers back; the key must never reach a message or a log.
    if request is not None:
        key = request.headers.get("api-key")
        if key:
            text = text.replace(key, "***")
    return text


def _message_and_body(response: httpx.Response) -> tuple[str, dict[str, Any] | None]:
    body: Any = None
    if response.content:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"], body
        if isinstance(body.get("message"), str):
            return body["message"], body
    text = response.text.strip()
    if not text:
        text = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return text, body if isinstance(body, dict) else None


def _class_for(status: int, body: dict[str, Any] | None) -> type[ApiError]:
    by_status = error_for_http_status(status)
    if body is None:
        return by_status
    # The body's code can be more precise than the status (500 is both INTERNAL and DATA_LOSS).
    candidate: type[ApiError] | None = None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        candidate = _BY_CODE_NAME.get(error["code"])
    elif isinstance(body.get("code"), int) and not isinstance(body["code"], bool):
        candidate = error_for_grpc_code(body["code"])
    if candidate is not None and candidate.status == status:
        return candidate
    return by_status


_BY_CODE_NAME: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        UnauthenticatedError,
        ForbiddenError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        PayloadTooLargeError,
        UnprocessableEntityError,
        ResourceExhaustedError,
        DeadlineExceededError,
        InternalError,
        DataLossError,
        UnimplementedError,
        UnavailableError,
    )
}
_BY_CODE_NAME["SERVICE_UNAVAILABLE"] = UnavailableError  # the 2026-07 spelling


def error_from_response(response: httpx.Response) -> ApiError:
    """The error an HTTP error response stands for (the caller raises it).

    The message comes from ``body.error.message`` (control plane), then ``body.message`` (data plane),
    then the raw text (2026-07 answers 401 as ``text/plain``).
    """
    status = response.status_code
    message, body = _message_and_body(response)
    request = _request_of(response)
    message = _redact(message, request)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + "..."
    details: Any = None
    if body is not None:
        error = body.get("error")
        details = error.get("details") if isinstance(error, dict) else body.get("details") or None
    request_id = next((response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), None)
    cls = _class_for(status, body)
    exc = cls(
        message,
        details=details,
        request_id=request_id,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )
    if cls.status != status:
        # Statuses without a class of their own (402, 405, 502...) keep the status actually received.
        vars(exc)["status"] = status
        if cls is ApiError and body is not None and isinstance(body.get("error"), dict):
            code = body["error"].get("code")
            if isinstance(code, str):
                vars(exc)["code"] = code
    return exc


def raise_for_response(response: httpx.Response) -> None:
    """Raise the matching :class:`~pinecone_rag.errors.ApiError` if ``response`` is an error (>= 400).

    Example:
        >>> raise_for_response(httpx.Response(200, json={}))
    """
    if response.status_code >= 400:
        raise error_from_response(response)


def _safe_url(exc: httpx.HTTPError) -> str:
    try:
        url = exc.request.url
    except RuntimeError:
        return "the server"
    # Credentials and the query string (fetch ids can be ~0.5 MB) stay out of messages.
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


def translate_transport_error(exc: httpx.HTTPError) -> PineconeError:
    """An httpx failure as the error tree, naming the URL (never credentials or the query string).

    Timeouts become :class:`PineconeTimeoutError`; refused, reset or broken connections become
    :class:`PineconeConnectionError`; an error response (``HTTPStatusError``) becomes its ApiError.
    """
    if isinstance(exc, httpx.HTTPStatusError):
        return error_from_response(exc.response)
    url = _safe_url(exc)
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        what = {
            httpx.ConnectTimeout: "connecting to",
            httpx.ReadTimeout: "waiting for an answer from",
            httpx.WriteTimeout: "sending to",
            httpx.PoolTimeout: "waiting for a free connection to",
        }.get(type(exc), "calling")
        return PineconeTimeoutError(f"Timed out {what} {url} ({detail}).")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConfigurationError(f"Cannot call {url}: {detail} (use an http:// or https:// URL).")
    return PineconeConnectionError(f"Could not reach {url}: {detail}")


def _never_sent(exc: BaseException) -> bool:
    # Translated errors keep the httpx error as cause or context: a connect or pool timeout means the
    # request never left, so retrying cannot apply it twice.
    for origin in (exc, exc.__cause__, exc.__context__):
        if isinstance(origin, (httpx.ConnectTimeout, httpx.PoolTimeout)):
            return True
    return False


def is_retryable(exc: BaseException, *, idempotent: bool = True) -> bool:
    """Whether retrying ``exc`` may succeed and is safe.

    Retried: connection failures (including UNAVAILABLE), 429, 5xx except UNIMPLEMENTED and DATA_LOSS,
    and, for idempotent calls only, timeouts and 408.

    Example:
        >>> is_retryable(ResourceExhaustedError("slow down"))
        True
    """
    if isinstance(exc, (UnimplementedError, DataLossError)):
        return False
    if isinstance(exc, (PineconeConnectionError, ResourceExhaustedError, ServiceError)):
        return True
    if isinstance(exc, ApiError) and exc.status == _REQUEST_TIMEOUT:
        return idempotent
    if isinstance(exc, PineconeTimeoutError):
        return idempotent or _never_sent(exc)
    return False


def _as_error(exc: BaseException) -> BaseException:
    return translate_transport_error(exc) if isinstance(exc, httpx.HTTPError) else exc


class Reachability:
    """Whether a connection (a transport, a control-plane client) has ever had an answer.

    Until it has, a failure to connect is more likely a wrong host than a restart, so the retry policy's
    ``reconnect_budget`` does not apply.
    """

    __slots__ = ("reached",)

    def __init__(self) -> None:
        self.reached = False


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryConfig,
    *,
    idempotent: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    reachability: Reachability | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying retryable failures with jittered exponential backoff.

    httpx errors escaping ``fn`` are translated first. A ``retry_after`` the service sent (HTTP
    ``Retry-After``, gRPC pushback) is honoured when it is longer than the drawn backoff.

    Args:
        fn: One attempt.
        policy: Attempts and backoff.
        idempotent: Whether a timed-out attempt may be repeated.
        sleep: How to wait (tests pass a no-op).
        reachability: The connection's record of having been reached, updated here; while it has not
            been, connection failures get ``max_attempts`` only. None: treat it as reached.

    Example:
        >>> from pinecone_rag.config import RetryConfig
        >>> call_with_retries(lambda: 42, RetryConfig())
        42
    """
    attempt = 1
    started = time.monotonic()
    while True:
        try:
            result = fn()
        except (PineconeError, httpx.HTTPError) as raw:
            exc = _as_error(raw)
            reconnect = reachability is None or reachability.reached
            if not is_retryable(exc, idempotent=idempotent) or not policy.should_retry(
                attempt, exc, started, reconnect=reconnect
            ):
                if exc is raw:
                    raise
                raise exc from raw
        else:
            if reachability is not None:
                reachability.reached = True
            return result
        sleep(policy.backoff(attempt, getattr(exc, "retry_after", None)))
        attempt += 1


async def acall_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryConfig,
    *,
    idempotent: bool = True,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    reachability: Reachability | None = None,
) -> T:
    """The asyncio twin of :func:`call_with_retries` (``fn`` returns an awaitable per attempt)."""
    attempt = 1
    started = time.monotonic()
    while True:
        try:
            result = await fn()
        except (PineconeError, httpx.HTTPError) as raw:
            exc = _as_error(raw)
            reconnect = reachability is None or reachability.reached
            if not is_retryable(exc, idempotent=idempotent) or not policy.should_retry(
                attempt, exc, started, reconnect=reconnect
            ):
                if exc is raw:
                    raise
                raise exc from raw
        else:
            if reachability is not None:
                reachability.reached = True
            return result
        await sleep(policy.backoff(attempt, getattr(exc, "retry_after", None)))
        attempt += 1


# ------------------------------------------------------------------------------------------ sending
def _request_args(call: HttpCall) -> dict[str, Any]:
    args: dict[str, Any] = {"params": call.params}
    if call.json is not None:
        args["content"] = orjson.dumps(call.json, option=orjson.OPT_SERIALIZE_NUMPY)
        args["headers"] = _JSON_HEADERS
    return args


def send(client: httpx.Client, call: HttpCall) -> httpx.Response:
    """Send one call (no retries); transport failures and error statuses raise the error tree."""
    try:
        response = client.request(call.method, call.path, **_request_args(call))
    except httpx.HTTPError as exc:
        raise translate_transport_error(exc) from exc
    raise_for_response(response)
    return response


async def asend(client: httpx.AsyncClient, call: HttpCall) -> httpx.Response:
    """The asyncio twin of :func:`send`."""
    try:
        response = await client.request(call.method, call.path, **_request_args(call))
    except httpx.HTTPError as exc:
        raise translate_transport_error(exc) from exc
    raise_for_response(response)
    return response


def response_json(response: httpx.Response) -> Any:
    """The decoded JSON body (``None`` when empty); a non-JSON body raises :class:`ApiError`."""
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        kind = response.headers.get("content-type", "no content type")
        raise ApiError(f"Expected a JSON answer, got {kind}: {response.text[:200]!r}") from exc


__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "SOCKET_OPTIONS",
    "HttpCall",
    "Reachability",
    "acall_with_retries",
    "asend",
    "call_with_retries",
    "error_from_response",
    "is_retryable",
    "make_async_client",
    "make_client",
    "parse_retry_after",
    "raise_for_response",
    "response_json",
    "send",
    "translate_transport_error",
]

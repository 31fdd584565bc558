"""The control plane: index lifecycle over REST.

Requests are built and answers parsed by I/O-free functions (``*_call`` builders, ``parse_*``
parsers, :class:`Poller`); :class:`ControlPlane` and :class:`AsyncControlPlane` are thin twins that send
them with retries. Arguments are checked before any I/O and rejected with
:class:`~pinecone_rag.errors.ConfigurationError`.

Example:
    >>> from pinecone_rag.config import ClientConfig
    >>> config = ClientConfig.resolve("key", "http://127.0.0.1:5080")
    >>> with ControlPlane(config) as control:  # doctest: +SKIP
    ...     control.create_index("docs", dimension=384).ready
    True
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pinecone_rag.client._http import (
    HttpCall,
    Reachability,
    acall_with_retries,
    asend,
    call_with_retries,
    make_async_client,
    make_client,
    response_json,
    send,
)
from pinecone_rag.errors import ApiError, ConfigurationError, NotFoundError, PineconeTimeoutError
from pinecone_rag.models import IndexModel, PodSpec, ServerlessSpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from types import TracebackType

    import httpx

    from pinecone_rag.config import ClientConfig
    from pinecone_rag.models import DeletionProtection, Metric, VectorType

GRPC_PORT_HEADER = "x-pinecone-rag-grpc-port"
"""The local engine's hint: a port serving gRPC directly, without the shared-port splice."""
MAX_DIMENSION = 20_000
MAX_TAGS = 20
DEFAULT_WAIT_SECONDS = 300.0
FAILED_STATES = frozenset({"InitializationFailed", "Failed"})

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_METRICS = ("cosine", "euclidean", "dotproduct")
_SPEC_KINDS = ("serverless", "pod", "byoc")


# ----------------------------------------------------------------------------------------- checks
def check_index_name(name: object) -> str:
    """A valid index name: 1-45 characters of ``a-z0-9-``, not starting or ending with ``-``.

    Raises:
        ConfigurationError: the name breaks Pinecone's rules.

    Example:
        >>> check_index_name("docs-2024")
        'docs-2024'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"Invalid index name {name!r}: use 1-45 characters of lowercase letters, digits or '-', "
            "starting and ending with a letter or digit."
        )
    return name


def _path_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"An index name must be a non-empty string, got {name!r}.")
    return quote(name, safe="")


def _check_tags(tags: Mapping[str, str] | None) -> dict[str, str] | None:
    if tags is None:
        return None
    if not hasattr(tags, "items"):
        raise ConfigurationError("tags must be a mapping of strings to strings.")
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY.match(key):
            raise ConfigurationError(
                f"Invalid tag key {key!r}: use 1-80 characters of letters, digits, '_' or '-'."
            )
        if not isinstance(value, str) or len(value) > 120:
            raise ConfigurationError(f"Tag {key!r} needs a string value of at most 120 characters.")
        checked[key] = value
    if len(checked) > MAX_TAGS:
        raise ConfigurationError(f"An index can have at most {MAX_TAGS} tags, got {len(checked)}.")
    return checked


def _check_protection(value: object) -> str:
    if value not in ("enabled", "disabled"):
        raise ConfigurationError(f"deletion_protection must be 'enabled' or 'disabled', got {value!r}.")
    return str(value)


def _spec_json(spec: ServerlessSpec | PodSpec | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(spec, (ServerlessSpec, PodSpec)):
        return spec.to_json()
    if not hasattr(spec, "items") or len(spec) != 1 or next(iter(spec)) not in _SPEC_KINDS:
        raise ConfigurationError(
            "spec must be a ServerlessSpec, a PodSpec, or a mapping with exactly one of "
            f"{', '.join(_SPEC_KINDS)}; got {spec!r}."
        )
    return {key: dict(value) if hasattr(value, "items") else value for key, value in spec.items()}


def _check_dimension(dimension: object) -> int:
    if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= MAX_DIMENSION:
        raise ConfigurationError(
            f"A dense index needs an integer dimension between 1 and {MAX_DIMENSION}, got {dimension!r}."
        )
    return dimension


# --------------------------------------------------------------------------------------- builders
def create_index_call(
    name: str,
    *,
    dimension: int | None = None,
    metric: Metric | None = None,
    spec: ServerlessSpec | PodSpec | Mapping[str, Any] | None = None,
    vector_type: VectorType = "dense",
    tags: Mapping[str, str] | None = None,
    deletion_protection: DeletionProtection = "disabled",
) -> HttpCall:
    """``POST /indexes``, checked: dense indexes need a dimension, sparse ones none and dotproduct.

    ``metric`` defaults to cosine for dense and dotproduct for sparse indexes; ``spec`` to
    ``ServerlessSpec()``.

    Raises:
        ConfigurationError: an argument breaks Pinecone's rules.

    Example:
        >>> create_index_call("docs", dimension=3).json["metric"]
        'cosine'
    """
    body: dict[str, Any] = {"name": check_index_name(name)}
    if vector_type == "sparse":
        if dimension is not None:
            raise ConfigurationError("A sparse index has no dimension: leave dimension unset.")
        metric = metric or "dotproduct"
        if metric != "dotproduct":
            raise ConfigurationError(f"A sparse index must use the dotproduct metric, got {metric!r}.")
    elif vector_type == "dense":
        body["dimension"] = _check_dimension(dimension)
        metric = metric or "cosine"
    else:
        raise ConfigurationError(f"vector_type must be 'dense' or 'sparse', got {vector_type!r}.")
    if metric not in _METRICS:
        raise ConfigurationError(f"metric must be one of {', '.join(_METRICS)}; got {metric!r}.")
    body["metric"] = metric
    body["vector_type"] = vector_type
    body["spec"] = _spec_json(ServerlessSpec() if spec is None else spec)
    body["deletion_protection"] = _check_protection(deletion_protection)
    checked_tags = _check_tags(tags)
    if checked_tags:
        body["tags"] = checked_tags
    return HttpCall("POST", "/indexes", json=body)


def describe_index_call(name: str) -> HttpCall:
    """``GET /indexes/{name}``.

    Example:
        >>> describe_index_call("docs").path
        '/indexes/docs'
    """
    return HttpCall("GET", f"/indexes/{_path_name(name)}")


def list_indexes_call() -> HttpCall:
    """``GET /indexes``."""
    return HttpCall("GET", "/indexes")


def configure_index_call(
    name: str,
    *,
    deletion_protection: DeletionProtection | None = None,
    tags: Mapping[str, str] | None = None,
    replicas: int | None = None,
    pod_type: str | None = None,
) -> HttpCall:
    """``PATCH /indexes/{name}`` with only what changes.

    Tags are merged server-side into the existing ones (an empty value removes a tag); ``replicas`` and
    ``pod_type`` apply to pod indexes.

    Example:
        >>> configure_index_call("docs", tags={"team": "search"}).json
        {'tags': {'team': 'search'}}
    """
    body: dict[str, Any] = {}
    if deletion_protection is not None:
        body["deletion_protection"] = _check_protection(deletion_protection)
    checked_tags = _check_tags(tags)
    if checked_tags is not None:
        body["tags"] = checked_tags
    pod: dict[str, Any] = {}
    if replicas is not None:
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise ConfigurationError(f"replicas must be a positive integer, got {replicas!r}.")
        pod["replicas"] = replicas
    if pod_type is not None:
        if not isinstance(pod_type, str) or not pod_type:
            raise ConfigurationError(f"pod_type must be a non-empty string like 'p1.x1', got {pod_type!r}.")
        pod["pod_type"] = pod_type
    if pod:
        body["spec"] = {"pod": pod}
    return HttpCall("PATCH", f"/indexes/{_path_name(name)}", json=body)


def delete_index_call(name: str) -> HttpCall:
    """``DELETE /indexes/{name}``."""
    return HttpCall("DELETE", f"/indexes/{_path_name(name)}")


# ---------------------------------------------------------------------------------------- parsers
def parse_grpc_port(headers: Mapping[str, str]) -> int | None:
    """The direct gRPC port the local engine advertises in ``x-pinecone-rag-grpc-port``, if any.

    Example:
        >>> parse_grpc_port({"x-pinecone-rag-grpc-port": "41234"})
        41234
    """
    raw = headers.get(GRPC_PORT_HEADER)
    if raw is None:
        return None
    try:
        port = int(raw)
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def parse_index_model(body: Any, headers: Mapping[str, str] | None = None) -> IndexModel:
    """An :class:`IndexModel` from a 2025-xx IndexModel JSON body (and the gRPC-port header, if sent).

    Raises:
        ApiError: the body is not an IndexModel.
    """
    if not isinstance(body, dict):
        raise ApiError(f"Expected an IndexModel object, got {type(body).__name__}.")
    for key in ("name", "host"):
        if not isinstance(body.get(key), str):
            raise ApiError(f"The IndexModel answered has no {key!r}: {sorted(body)}.")
    return IndexModel.from_json(body, grpc_port=parse_grpc_port(headers or {}))


def parse_index_list(body: Any) -> list[IndexModel]:
    """The indexes of a ``GET /indexes`` answer (``{"indexes": [...]}``)."""
    if not isinstance(body, dict) or not isinstance(body.get("indexes", []), list):
        raise ApiError("Expected {'indexes': [...]} from list_indexes.")
    return [parse_index_model(item) for item in body.get("indexes") or []]


class Poller:
    """Delays between readiness checks, 0.05 s growing to 1 s, until ``timeout`` seconds have passed.

    I/O-free: the shells sleep for :meth:`next_delay` after each unsatisfied check.

    Example:
        >>> poller = Poller("Index 'docs' was not ready", 10.0)
        >>> poller.next_delay()
        0.05
    """

    def __init__(
        self,
        what: str,
        timeout: float,
        *,
        first: float = 0.05,
        cap: float = 1.0,
        factor: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.timeout = timeout
        self._clock = clock
        self._deadline = clock() + timeout
        self._delay = first
        self._cap = cap
        self._factor = factor

    def next_delay(self, state: str | None = None) -> float:
        """Seconds to wait before checking again.

        Raises:
            PineconeTimeoutError: the deadline has passed (the message says what and ``state``).
        """
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            last = f" (last state: {state})" if state else ""
            raise PineconeTimeoutError(f"{self.what} within {self.timeout:g} s{last}.")
        delay = min(self._delay, remaining)
        self._delay = min(self._cap, self._delay * self._factor)
        return delay


def _check_wait(timeout: float | None) -> None:
    if timeout is not None and (isinstance(timeout, bool) or timeout < 0):
        raise ConfigurationError(f"timeout must be a number of seconds >= 0, or None; got {timeout!r}.")


def _ready_or_state(model: IndexModel) -> bool:
    if model.state in FAILED_STATES:
        raise ApiError(f"Index {model.name!r} failed to initialize (state {model.state}).")
    return model.ready


def _not_ready(name: str) -> str:
    return f"Index {name!r} was not ready"


def _still_there(name: str) -> str:
    return f"Index {name!r} was still being deleted"


# ------------------------------------------------------------------------------------------ shells
class ControlPlane:
    """The control plane over a blocking HTTP client.

    Args:
        config: API key, controller URL, timeout and retry policy.
        client: An httpx client to borrow (not closed here); by default one is made and owned.
        sleep: How to wait between retries and readiness checks (tests pass a no-op).

    Example:
        >>> from pinecone_rag.config import ClientConfig
        >>> config = ClientConfig.resolve("key", "http://127.0.0.1:5080")
        >>> with ControlPlane(config) as control:  # doctest: +SKIP
        ...     [index.name for index in control.list_indexes()]
        []
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._owns_client = client is None
        self._client = client if client is not None else make_client(config)
        self._sleep = sleep
        self._reachability = Reachability()

    def request(self, call: HttpCall, *, idempotent: bool = True) -> httpx.Response:
        """Send ``call`` with the retry policy; error statuses raise the error tree."""
        return call_with_retries(
            lambda: send(self._client, call),
            self.config.retries,
            idempotent=idempotent,
            sleep=self._sleep,
            reachability=self._reachability,
        )

    def create_index(
        self,
        name: str,
        dimension: int | None = None,
        metric: Metric | None = None,
        spec: ServerlessSpec | PodSpec | Mapping[str, Any] | None = None,
        *,
        vector_type: VectorType = "dense",
        tags: Mapping[str, str] | None = None,
        deletion_protection: DeletionProtection = "disabled",
        timeout: float | None = DEFAULT_WAIT_SECONDS,
    ) -> IndexModel:
        """Create an index and wait until it is ready.

        Args:
            name: 1-45 characters of ``a-z0-9-``.
            dimension: Dense dimension (1-20000); leave unset for sparse indexes.
            metric: cosine (dense default), euclidean or dotproduct (sparse default and only choice).
            spec: Where the index lives; ``ServerlessSpec()`` by default.
            vector_type: dense or sparse.
            tags: Index tags.
            deletion_protection: enabled or disabled.
            timeout: Seconds to wait for readiness; None returns at once.

        Raises:
            ConfigurationError: an argument is invalid (nothing was sent).
            AlreadyExistsError: an index of that name exists.
            PineconeTimeoutError: the index was not ready in time.
        """
        _check_wait(timeout)
        call = create_index_call(
            name,
            dimension=dimension,
            metric=metric,
            spec=spec,
            vector_type=vector_type,
            tags=tags,
            deletion_protection=deletion_protection,
        )
        response = self.request(call, idempotent=False)
        model = parse_index_model(response_json(response), response.headers)
        if timeout is None or _ready_or_state(model):
            return model
        poller = Poller(_not_ready(name), timeout)
        while True:
            self._sleep(poller.next_delay(model.state))
            model = self.describe_index(name)
            if _ready_or_state(model):
                return model

    def describe_index(self, name: str) -> IndexModel:
        """The index as the control plane describes it (with the engine's direct gRPC port, if any).

        Raises:
            NotFoundError: no such index.
        """
        response = self.request(describe_index_call(name))
        return parse_index_model(response_json(response), response.headers)

    def list_indexes(self) -> list[IndexModel]:
        """Every index of the project."""
        return parse_index_list(response_json(self.request(list_indexes_call())))

    def has_index(self, name: str) -> bool:
        """Whether an index of that name exists."""
        try:
            self.describe_index(name)
        except NotFoundError:
            return False
        return True

    def configure_index(
        self,
        name: str,
        *,
        deletion_protection: DeletionProtection | None = None,
        tags: Mapping[str, str] | None = None,
        replicas: int | None = None,
        pod_type: str | None = None,
    ) -> IndexModel:
        """Change deletion protection, tags (merged; ``""`` removes one) or pod replicas/type."""
        call = configure_index_call(
            name, deletion_protection=deletion_protection, tags=tags, replicas=replicas, pod_type=pod_type
        )
        response = self.request(call)
        return parse_index_model(response_json(response), response.headers)

    def delete_index(self, name: str, *, timeout: float | None = DEFAULT_WAIT_SECONDS) -> None:
        """Delete an index and wait until it is gone.

        Raises:
            NotFoundError: no such index.
            ForbiddenError: deletion protection is enabled.
            PineconeTimeoutError: the index still existed after ``timeout`` seconds.
        """
        _check_wait(timeout)
        call = delete_index_call(name)
        attempts = 0

        def once() -> None:
            nonlocal attempts
            attempts += 1
            try:
                send(self._client, call)
            except NotFoundError:
                if attempts == 1:
                    raise
                # An earlier attempt deleted it but its answer was lost.

        call_with_retries(once, self.config.retries, sleep=self._sleep, reachability=self._reachability)
        if timeout is None:
            return
        poller = Poller(_still_there(name), timeout)
        while True:
            try:
                model = self.describe_index(name)
            except NotFoundError:
                return
            self._sleep(poller.next_delay(model.state))

    def close(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncControlPlane:
    """The asyncio twin of :class:`ControlPlane` (same methods, awaited; ``aclose`` instead of ``close``).

    Example:
        >>> async def main(config):  # doctest: +SKIP
        ...     async with AsyncControlPlane(config) as control:
        ...         return await control.has_index("docs")
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._owns_client = client is None
        self._client = client if client is not None else make_async_client(config)
        self._sleep = sleep
        self._reachability = Reachability()

    async def request(self, call: HttpCall, *, idempotent: bool = True) -> httpx.Response:
        """Send ``call`` with the retry policy; error statuses raise the error tree."""
        return await acall_with_retries(
            lambda: asend(self._client, call),
            self.config.retries,
            idempotent=idempotent,
            sleep=self._sleep,
            reachability=self._reachability,
        )

    async def create_index(
        self,
        name: str,
        dimension: int | None = None,
        metric: Metric | None = None,
        spec: ServerlessSpec | PodSpec | Mapping[str, Any] | None = None,
        *,
        vector_type: VectorType = "dense",
        tags: Mapping[str, str] | None = None,
        deletion_protection: DeletionProtection = "disabled",
        timeout: float | None = DEFAULT_WAIT_SECONDS,
    ) -> IndexModel:
        """Create an index and wait until it is ready (see :meth:`ControlPlane.create_index`)."""
        _check_wait(timeout)
        call = create_index_call(
            name,
            dimension=dimension,
            metric=metric,
            spec=spec,
            vector_type=vector_type,
            tags=tags,
            deletion_protection=deletion_protection,
        )
        response = await self.request(call, idempotent=False)
        model = parse_index_model(response_json(response), response.headers)
        if timeout is None or _ready_or_state(model):
            return model
        poller = Poller(_not_ready(name), timeout)
        while True:
            await self._sleep(poller.next_delay(model.state))
            model = await self.describe_index(name)
            if _ready_or_state(model):
                return model

    async def describe_index(self, name: str) -> IndexModel:
        """The index as the control plane describes it (see :meth:`ControlPlane.describe_index`)."""
        response = await self.request(describe_index_call(name))
        return parse_index_model(response_json(response), response.headers)

    async def list_indexes(self) -> list[IndexModel]:
        """Every index of the project."""
        return parse_index_list(response_json(await self.request(list_indexes_call())))

    async def has_index(self, name: str) -> bool:
        """Whether an index of that name exists."""
        try:
            await self.describe_index(name)
        except NotFoundError:
            return False
        return True

    async def configure_index(
        self,
        name: str,
        *,
        deletion_protection: DeletionProtection | None = None,
        tags: Mapping[str, str] | None = None,
        replicas: int | None = None,
        pod_type: str | None = None,
    ) -> IndexModel:
        """Change deletion protection, tags (merged; ``""`` removes one) or pod replicas/type."""
        call = configure_index_call(
            name, deletion_protection=deletion_protection, tags=tags, replicas=replicas, pod_type=pod_type
        )
        response = await self.request(call)
        return parse_index_model(response_json(response), response.headers)

    async def delete_index(self, name: str, *, timeout: float | None = DEFAULT_WAIT_SECONDS) -> None:
        """Delete an index and wait until it is gone (see :meth:`ControlPlane.delete_index`)."""
        _check_wait(timeout)
        call = delete_index_call(name)
        attempts = 0

        async def once() -> None:
            nonlocal attempts
            attempts += 1
            try:
                await asend(self._client, call)
            except NotFoundError:
                if attempts == 1:
                    raise
                # An earlier attempt deleted it but its answer was lost.

        await acall_with_retries(
            once, self.config.retries, sleep=self._sleep, reachability=self._reachability
        )
        if timeout is None:
            return
        poller = Poller(_still_there(name), timeout)
        while True:
            try:
                model = await self.describe_index(name)
            except NotFoundError:
                return
            await self._sleep(poller.next_delay(model.state))

    async def aclose(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncControlPlane:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


__all__ = [
    "GRPC_PORT_HEADER",
    "AsyncControlPlane",
    "ControlPlane",
    "HttpCall",
    "Poller",
    "check_index_name",
    "configure_index_call",
    "create_index_call",
    "delete_index_call",
    "describe_index_call",
    "list_indexes_call",
    "parse_grpc_port",
    "parse_index_list",
    "parse_index_model",
]

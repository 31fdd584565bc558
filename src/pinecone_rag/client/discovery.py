"""Data-plane discovery: index name -> host (cached per client), and host -> what to dial.

Modern Pinecone returns an index's host from ``describe_index``. With a legacy ``environment`` set, the
host is derived instead, as the archived Rust client did: ``GET /actions/whoami`` on
``controller.{environment}.pinecone.io`` gives the project name, and the host is
``{index}-{project}.svc.{environment}.pinecone.io``.

Example:
    >>> address_for("index-abc.svc.aws.pinecone.io").grpc_target
    'index-abc.svc.aws.pinecone.io:443'
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pinecone_rag.client._http import HttpCall, response_json
from pinecone_rag.config import DEFAULT_LEGACY_ENVIRONMENT
from pinecone_rag.errors import ApiError, ConfigurationError

if TYPE_CHECKING:
    from pinecone_rag.client.control import AsyncControlPlane, ControlPlane

__all__ = [
    "DEFAULT_LEGACY_ENVIRONMENT",
    "DataPlaneAddress",
    "HostCache",
    "address_for",
    "aresolve_host",
    "is_loopback_host",
    "legacy_controller_url",
    "legacy_index_host",
    "parse_whoami",
    "resolve_host",
    "whoami_call",
]

HostEntry = tuple[str, int | None]
"""An index's data-plane host and, from the local engine, its direct gRPC port."""


class HostCache:
    """Thread-safe name -> (host, grpc_port) cache, one per client instance.

    Also keeps the legacy project name per controller URL, so ``whoami`` runs once.

    Example:
        >>> cache = HostCache()
        >>> cache.put("docs", "docs-abc.svc.aws.pinecone.io")
        >>> cache.get("docs")
        ('docs-abc.svc.aws.pinecone.io', None)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, HostEntry] = {}
        self._projects: dict[str, str] = {}

    def get(self, name: str) -> HostEntry | None:
        """The cached entry of ``name``, if any."""
        with self._lock:
            return self._hosts.get(name)

    def put(self, name: str, host: str, grpc_port: int | None = None) -> None:
        """Remember where ``name`` lives."""
        with self._lock:
            self._hosts[name] = (host, grpc_port)

    def invalidate(self, name: str) -> None:
        """Forget ``name`` (after a delete, or when its host stops answering)."""
        with self._lock:
            self._hosts.pop(name, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._hosts.clear()
            self._projects.clear()

    def get_project(self, controller: str) -> str | None:
        """The legacy project name learned from ``controller``, if any."""
        with self._lock:
            return self._projects.get(controller)

    def put_project(self, controller: str, project: str) -> None:
        """Remember the legacy project name ``controller`` answered."""
        with self._lock:
            self._projects[controller] = project

    def __len__(self) -> int:
        with self._lock:
            return len(self._hosts)


# ---------------------------------------------------------------------------------------- legacy
def _check_environment(environment: str) -> str:
    if not environment or not all(ch.isalnum() or ch in "-_" for ch in environment):
        raise ConfigurationError(
            f"Invalid legacy environment {environment!r}: "
            f"expected something like {DEFAULT_LEGACY_ENVIRONMENT!r}."
        )
    return environment


def legacy_controller_url(environment: str = DEFAULT_LEGACY_ENVIRONMENT) -> str:
    """The legacy controller of an environment.

    Example:
        >>> legacy_controller_url("us-west1-gcp")
        'https://controller.us-west1-gcp.pinecone.io'
    """
    return f"https://controller.{_check_environment(environment)}.pinecone.io"


def whoami_call(controller: str | None = None) -> HttpCall:
    """``GET /actions/whoami``, relative, or absolute on ``controller`` when given.

    Example:
        >>> whoami_call("http://127.0.0.1:5080/").path
        'http://127.0.0.1:5080/actions/whoami'
    """
    base = controller.rstrip("/") if controller else ""
    return HttpCall("GET", f"{base}/actions/whoami")


def parse_whoami(body: Any) -> str:
    """The ``project_name`` of a whoami answer.

    Raises:
        ApiError: the answer has no project name.

    Example:
        >>> parse_whoami({"project_name": "abc1234", "user_label": "x", "user_name": "y"})
        'abc1234'
    """
    project = body.get("project_name") if isinstance(body, dict) else None
    if not isinstance(project, str) or not project:
        raise ApiError("The whoami answer has no project_name.")
    return project


def legacy_index_host(index: str, project: str, environment: str = DEFAULT_LEGACY_ENVIRONMENT) -> str:
    """The legacy data-plane host of an index.

    Example:
        >>> legacy_index_host("docs", "abc1234", "us-west1-gcp")
        'docs-abc1234.svc.us-west1-gcp.pinecone.io'
    """
    return f"{index}-{project}.svc.{_check_environment(environment)}.pinecone.io"


# -------------------------------------------------------------------------------------- resolving
def _legacy_plan(control: ControlPlane | AsyncControlPlane, legacy_controller: str | None) -> tuple[str, str]:
    environment = control.config.environment
    assert environment is not None
    controller = (legacy_controller or legacy_controller_url(environment)).rstrip("/")
    return environment, controller


def resolve_host(
    control: ControlPlane, cache: HostCache, name: str, *, legacy_controller: str | None = None
) -> HostEntry:
    """The data-plane host (and direct gRPC port, if any) of index ``name``, cached in ``cache``.

    Args:
        control: The control plane; its ``config.environment`` selects the legacy flow.
        cache: This client's cache.
        name: The index name.
        legacy_controller: Overrides ``https://controller.{environment}.pinecone.io`` (tests point it at
            the local engine, which serves ``/actions/whoami``).

    Raises:
        NotFoundError: no such index (modern flow).
    """
    cached = cache.get(name)
    if cached is not None:
        return cached
    if control.config.environment:
        environment, controller = _legacy_plan(control, legacy_controller)
        project = cache.get_project(controller)
        if project is None:
            project = parse_whoami(response_json(control.request(whoami_call(controller))))
            cache.put_project(controller, project)
        entry: HostEntry = (legacy_index_host(name, project, environment), None)
    else:
        model = control.describe_index(name)
        entry = (model.host, model.grpc_port)
    cache.put(name, *entry)
    return entry


async def aresolve_host(
    control: AsyncControlPlane, cache: HostCache, name: str, *, legacy_controller: str | None = None
) -> HostEntry:
    """The asyncio twin of :func:`resolve_host`."""
    cached = cache.get(name)
    if cached is not None:
        return cached
    if control.config.environment:
        environment, controller = _legacy_plan(control, legacy_controller)
        project = cache.get_project(controller)
        if project is None:
            project = parse_whoami(response_json(await control.request(whoami_call(controller))))
            cache.put_project(controller, project)
        entry: HostEntry = (legacy_index_host(name, project, environment), None)
    else:
        model = await control.describe_index(name)
        entry = (model.host, model.grpc_port)
    cache.put(name, *entry)
    return entry


# ---------------------------------------------------------------------------------------- address
def is_loopback_host(hostname: str) -> bool:
    """Whether ``hostname`` (no port, no brackets) is this machine.

    Example:
        >>> is_loopback_host("localhost"), is_loopback_host("::1"), is_loopback_host("x.pinecone.io")
        (True, True, False)
    """
    name = hostname.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class DataPlaneAddress:
    """How to reach an index's data plane.

    Attributes:
        rest_base_url: Base URL for REST, always with a scheme (``https://`` for cloud hosts).
        grpc_target: ``host:port`` for grpcio, no scheme (grpcio cannot dial ``http://...``).
        secure: Whether gRPC uses TLS (cloud hosts) or plaintext (loopback or ``http://`` hosts).
        direct_grpc_target: The engine's direct gRPC port on loopback, when it advertised one.
    """

    rest_base_url: str
    grpc_target: str
    secure: bool
    direct_grpc_target: str | None = None

    @property
    def best_grpc_target(self) -> str:
        """The direct target when there is one (it skips the shared port's splice), else ``grpc_target``."""
        return self.direct_grpc_target or self.grpc_target


def address_for(host: str, grpc_port: int | None = None) -> DataPlaneAddress:
    """What to dial for a host as ``describe_index`` returns it (bare or with a scheme).

    A scheme is kept; a bare loopback host gets ``http://``, any other bare host ``https://``. gRPC
    targets drop the scheme and default the port to 443 (80 for plaintext).

    Raises:
        ConfigurationError: ``host`` is empty or malformed.

    Example:
        >>> address = address_for("http://127.0.0.1:5081", grpc_port=41234)
        >>> address.grpc_target, address.secure, address.direct_grpc_target
        ('127.0.0.1:5081', False, '127.0.0.1:41234')
    """
    text = host.strip() if isinstance(host, str) else ""
    if not text:
        raise ConfigurationError(f"An index host must be a non-empty string, got {host!r}.")
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ConfigurationError(f"Unsupported scheme in index host {host!r}: use http:// or https://.")
        parts = urlsplit(text)
    else:
        parts = urlsplit(f"//{text}")
        scheme = ""
    try:
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"Malformed index host {host!r}: {exc}.") from exc
    if not hostname:
        raise ConfigurationError(f"Malformed index host {host!r}: no host name.")
    loopback = is_loopback_host(hostname)
    if not scheme:
        scheme = "http" if loopback else "https"
    secure = scheme == "https"
    netloc_host = f"[{hostname}]" if ":" in hostname else hostname
    port_suffix = f":{port}" if port is not None else ""
    rest_base_url = f"{scheme}://{netloc_host}{port_suffix}{parts.path.rstrip('/')}"
    grpc_target = f"{netloc_host}:{port if port is not None else (443 if secure else 80)}"
    direct = None
    if loopback and grpc_port is not None:
        # The engine binds its direct port on the loopback address it serves on; "localhost" may
        # resolve to ::1 first, which that port does not listen on.
        named = hostname == "localhost" or hostname.endswith(".localhost")
        direct_host = "127.0.0.1" if named else netloc_host
        direct = f"{direct_host}:{grpc_port}"
    return DataPlaneAddress(rest_base_url, grpc_target, secure, direct)

"""Settings of the local engine: arguments > ``PINECONE_RAG_*`` environment > defaults."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pinecone_rag.errors import ConfigurationError
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.http_limits import REQUEST_HEAD_TIMEOUT

HostFormat = Literal["http", "bare"]

ENV_API_KEYS = "PINECONE_RAG_API_KEYS"
ENV_ENGINE = "PINECONE_RAG_ENGINE"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSettings:
    """How ``pinecone-rag serve`` and ``LocalServer`` run.

    Attributes:
        data_dir: Where the control-plane database, WALs and index data live.
        host: The address to bind. Anything but loopback requires API keys.
        port: The control-plane port (0 picks a free one).
        data_port_start: The first port for index data planes (0: a free port per index).
        api_keys: Keys of the default project, in addition to keys stored in the database.
        advertise_host: The host name put into index hosts (default: the bound host).
        host_format: For API version 2025-10, whether index hosts carry ``http://`` (what the official
            REST clients need to reach a plaintext server by index name) or are bare ``host:port``.
        grpc_workers: Threads serving gRPC calls, shared by all indexes.
        log_level: Logging level of the server's own loggers.
        blas_threads: BLAS threads per query (see :mod:`pinecone_rag.server.blas`); 0 leaves BLAS alone.
        engine: Storage and search tuning of every index (builder thresholds, freshness cap, planner).
            ``PINECONE_RAG_ENGINE`` may hold a JSON object of :class:`EngineConfig` fields.
        tls_cert: A PEM certificate (chain) file; with ``tls_key``, every port speaks TLS (HTTPS and
            gRPC over TLS) and index hosts are advertised as ``https://``.
        tls_key: The PEM private key of ``tls_cert``.
        request_head_timeout: Seconds a client may take to send a request's line and headers (and to
            finish the TLS handshake); slower clients are disconnected.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 5080
    data_port_start: int = 5081
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    advertise_host: str | None = None
    host_format: HostFormat = "http"
    grpc_workers: int = 16
    log_level: str = "warning"
    blas_threads: int = 1
    engine: EngineConfig = field(default_factory=EngineConfig)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    request_head_timeout: float = REQUEST_HEAD_TIMEOUT

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigurationError("TLS needs both a certificate (--tls-cert) and its key (--tls-key).")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not Path(path).is_file():
                raise ConfigurationError(f"TLS file {str(path)!r} does not exist.")

    @property
    def tls(self) -> bool:
        """True when the server speaks TLS on every port."""
        return self.tls_cert is not None

    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self.tls else "http"

    def __repr__(self) -> str:
        keys = f"<{len(self.api_keys)} keys>"
        return (
            f"ServerSettings(data_dir={str(self.data_dir)!r}, host={self.host!r}, port={self.port}, "
            f"data_port_start={self.data_port_start}, api_keys={keys}, host_format={self.host_format!r}, "
            f"tls={self.tls})"
        )

    @classmethod
    def from_env(cls, data_dir: str | os.PathLike[str], **overrides: object) -> ServerSettings:
        """Settings with ``PINECONE_RAG_API_KEYS`` (comma-separated) added to any keys passed in."""
        settings = cls(data_dir=Path(data_dir))
        raw_engine = os.environ.get(ENV_ENGINE)
        if raw_engine and "engine" not in overrides:
            try:
                fields = json.loads(raw_engine)
                overrides["engine"] = EngineConfig(**fields)
            except (ValueError, TypeError) as exc:
                message = f"{ENV_ENGINE} is not a JSON object of engine settings: {exc}"
                raise ConfigurationError(message) from None
        env_keys = tuple(k.strip() for k in os.environ.get(ENV_API_KEYS, "").split(",") if k.strip())
        raw_keys: Any = overrides.pop("api_keys", ()) or ()
        passed = tuple(str(key) for key in raw_keys)
        for name in ("tls_cert", "tls_key"):
            value = overrides.get(name)
            if value is not None and not isinstance(value, Path):
                overrides[name] = Path(str(value))
        return replace(settings, api_keys=tuple(dict.fromkeys(passed + env_keys)), **overrides)  # type: ignore[arg-type]

    @property
    def public_host(self) -> str:
        """The host name index hosts are built from."""
        if self.advertise_host:
            return self.advertise_host
        if self.host in ("0.0.0.0", "::", ""):  # noqa: S104  (we name the wildcard, we do not bind it)
            return "localhost"
        return self.host

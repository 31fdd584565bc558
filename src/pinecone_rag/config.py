"""Client settings: arguments > ``PINECONE_*`` environment > defaults. Frozen; the key is never shown."""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from pinecone_rag._version import __version__
from pinecone_rag.errors import ConfigurationError, PineconeConnectionError, ResourceExhaustedError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_CONTROLLER_HOST = "https://api.pinecone.io"
DEFAULT_LEGACY_ENVIRONMENT = "us-west1-gcp"
API_VERSION = "2025-10"

ENV_API_KEY = "PINECONE_API_KEY"
ENV_CONTROLLER_HOST = "PINECONE_CONTROLLER_HOST"
ENV_ADDITIONAL_HEADERS = "PINECONE_ADDITIONAL_HEADERS"
ENV_REGION = "PINECONE_REGION"

_SOURCE_TAG_DROP = re.compile(r"[^a-z0-9_ :]")
_SPACES = re.compile(r" +")


def normalize_source_tag(tag: str) -> str:
    """Pinecone's source-tag rule: lowercase, only ``[a-z0-9_ :]``, trimmed, spaces joined by ``_``."""
    return _SPACES.sub("_", _SOURCE_TAG_DROP.sub("", tag.lower()).strip())


@dataclass(frozen=True)
class RetryConfig:
    """How retryable failures (UNAVAILABLE, RESOURCE_EXHAUSTED, HTTP 429 and 5xx) are retried.

    Attributes:
        max_attempts: Attempts in total, the first included (1 disables retries).
        initial_backoff: The first backoff ceiling, in seconds.
        max_backoff: The largest backoff ceiling, in seconds.
        multiplier: How much the ceiling grows per attempt.
        backpressure_budget: Seconds a call keeps retrying, beyond ``max_attempts``, while the service
            answers RESOURCE_EXHAUSTED / 429 *with* a retry hint: that is back-pressure (e.g. the local
            engine's freshness layer waiting for its index builder), not a failure.
        reconnect_budget: Seconds (counted from the first attempt) during which a call keeps retrying,
            beyond ``max_attempts``, while the service cannot be reached (connection refused or reset,
            UNAVAILABLE): long enough to ride out a restart of the local engine or a short network
            outage, so a long upsert stream or a query issued meanwhile completes once the service is
            back. ``0`` turns it off (a wrong host then fails after ``max_attempts``).
    """

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 8.0
    multiplier: float = 2.0
    backpressure_budget: float = 300.0
    reconnect_budget: float = 15.0

    def should_retry(
        self, attempt: int, exc: BaseException, started: float, *, reconnect: bool = True
    ) -> bool:
        """Whether attempt ``attempt`` failing with ``exc`` (retryable) is followed by another.

        ``reconnect`` False (the service was never reached) leaves out ``reconnect_budget``, so a wrong
        host fails after ``max_attempts`` instead of after the budget.
        """
        if attempt < self.max_attempts:
            return True
        if isinstance(exc, PineconeConnectionError):
            return reconnect and time.monotonic() - started < self.reconnect_budget
        hint = getattr(exc, "retry_after", None)
        return (
            isinstance(exc, ResourceExhaustedError)
            and hint is not None
            and time.monotonic() - started + hint <= self.backpressure_budget
        )

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (full jitter; a server hint wins if longer)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(0, attempt - 1))
        delay = random.uniform(0, ceiling)  # noqa: S311  (jitter, not cryptography)
        return max(delay, retry_after) if retry_after is not None else delay


@dataclass(frozen=True)
class ClientConfig:
    """Resolved client settings.

    Attributes:
        api_key: The API key (masked in ``repr``).
        controller_host: Base URL of the control plane, e.g. ``https://api.pinecone.io``.
        timeout: Seconds per call, for the control plane and each data-plane call.
        retries: Retry policy for retryable failures.
        source_tag: Identifies the integration calling Pinecone, appended to the User-Agent.
        additional_headers: Extra headers (and gRPC metadata) sent with every call.
        environment: A legacy environment (e.g. ``us-west1-gcp``) for ``controller.{env}`` discovery.
        ssl_ca_certs: A PEM file of CA certificates to trust (e.g. a local engine's self-signed one),
            for HTTPS and TLS gRPC; None trusts the system's store.
    """

    api_key: str = field(repr=False)
    controller_host: str = DEFAULT_CONTROLLER_HOST
    timeout: float = 30.0
    retries: RetryConfig = field(default_factory=RetryConfig)
    source_tag: str | None = None
    additional_headers: Mapping[str, str] = field(default_factory=dict)
    environment: str | None = None
    ssl_ca_certs: str | None = None

    def __repr__(self) -> str:
        return (
            f"ClientConfig(api_key='***', controller_host={self.controller_host!r}, timeout={self.timeout}, "
            f"retries={self.retries!r}, source_tag={self.source_tag!r}, "
            f"additional_headers=<{len(self.additional_headers)} headers>, environment={self.environment!r})"
        )

    @property
    def user_agent(self) -> str:
        """``pinecone-rag/<version>``, plus ``; source_tag=<tag>`` when one is set."""
        agent = f"pinecone-rag/{__version__}"
        if self.source_tag:
            agent += f"; source_tag={normalize_source_tag(self.source_tag)}"
        return agent

    def http_headers(self) -> dict[str, str]:
        """Headers for every REST call."""
        return {
            **self.additional_headers,
            "Api-Key": self.api_key,
            "X-Pinecone-Api-Version": API_VERSION,
            "User-Agent": self.user_agent,
        }

    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata for every gRPC call (keys are lowercase on the wire)."""
        extra = tuple((key.lower(), value) for key, value in self.additional_headers.items())
        return (*extra, ("api-key", self.api_key), ("x-pinecone-api-version", API_VERSION))

    @classmethod
    def resolve(
        cls,
        api_key: str | None = None,
        host: str | None = None,
        *,
        timeout: float | None = None,
        retries: int | RetryConfig | None = None,
        source_tag: str | None = None,
        additional_headers: Mapping[str, str] | None = None,
        environment: str | None = None,
        ssl_ca_certs: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        """Settings from arguments, then ``PINECONE_*`` variables, then defaults.

        Raises:
            ConfigurationError: no API key anywhere, or a malformed setting.
        """
        env = os.environ if environ is None else environ
        key = api_key if api_key is not None else env.get(ENV_API_KEY)
        if not key:
            raise ConfigurationError(
                f"No API key: pass api_key=... or set the {ENV_API_KEY} environment variable "
                "(for the local engine any non-empty key works unless keys are configured)."
            )
        controller = host or env.get(ENV_CONTROLLER_HOST) or DEFAULT_CONTROLLER_HOST
        if "://" not in controller:
            controller = ("http://" if _is_local(controller) else "https://") + controller
        headers = dict(additional_headers) if additional_headers is not None else _env_headers(env)
        if isinstance(retries, RetryConfig):
            retry = retries
        elif retries is None:
            retry = RetryConfig()
        elif retries < 0:
            raise ConfigurationError("retries must be >= 0.")
        else:
            # A count is a count: no time-based reconnect retries on top of it (retries=0: one attempt).
            retry = RetryConfig(max_attempts=retries + 1, reconnect_budget=0.0)
        if timeout is not None and timeout <= 0:
            raise ConfigurationError("timeout must be a positive number of seconds.")
        legacy = environment
        if legacy is None and env.get(ENV_REGION):
            legacy = env[ENV_REGION]
        return cls(
            api_key=key,
            controller_host=controller.rstrip("/"),
            timeout=30.0 if timeout is None else float(timeout),
            retries=retry,
            source_tag=source_tag,
            additional_headers=headers,
            environment=legacy,
            ssl_ca_certs=None if ssl_ca_certs is None else os.fspath(ssl_ca_certs),
        )

    def root_certificates(self) -> bytes | None:
        """The trusted CA certificates for TLS gRPC channels (None: grpcio's default roots).

        Raises:
            ConfigurationError: ``ssl_ca_certs`` cannot be read.
        """
        if self.ssl_ca_certs is None:
            return None
        try:
            with open(self.ssl_ca_certs, "rb") as handle:  # noqa: PTH123 - a path from the caller
                return handle.read()
        except OSError as exc:
            raise ConfigurationError(
                f"ssl_ca_certs: cannot read {self.ssl_ca_certs!r}: {exc.strerror}"
            ) from None


def _env_headers(env: Mapping[str, str]) -> dict[str, str]:
    raw = env.get(ENV_ADDITIONAL_HEADERS)
    if not raw:
        return {}
    try:
        parsed: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"{ENV_ADDITIONAL_HEADERS} must be a JSON object of strings.") from exc
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise ConfigurationError(f"{ENV_ADDITIONAL_HEADERS} must be a JSON object of strings.")
    return parsed


def _is_local(host: str) -> bool:
    name = host.rsplit("://", maxsplit=1)[-1].rsplit(":", 1)[0].strip("[]")
    return name in ("localhost", "::1") or name.startswith("127.")

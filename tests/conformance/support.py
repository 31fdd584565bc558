"""How the suite drives the official SDK: index bookkeeping, per-transport clients, error inspection.

REST and gRPC clients of SDK 8.x return slightly different objects (generated OpenAPI models, dataclasses
or plain dicts); the small adapters at the bottom read both the same way so each test body is shared.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from pinecone import Pinecone, ServerlessSpec
from pinecone.core.openapi.db_data.models import QueryRequest
from pinecone.core.openapi.db_data.models import Vector as OpenApiVector
from pinecone.exceptions import NotFoundException, PineconeApiException, PineconeException
from pinecone.grpc import GRPCClientConfig, GRPCVector, PineconeGRPC

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pinecone_rag.server import LocalServer

API_KEY = "conformance-key"
REST = "rest"
GRPC = "grpc"
TRANSPORTS = (REST, GRPC)
SPEC = ServerlessSpec(cloud="aws", region="us-east-1")
# Status name -> the HTTP status a REST client sees.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FORBIDDEN": 403,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "UNPROCESSABLE_ENTITY": 422,
}


def unique_name(prefix: str = "conf") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Harness:
    """SDK clients for one running engine, with a cache of data-plane clients per (index, transport)."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.pc = Pinecone(api_key=API_KEY, host=server.url)
        self.pcg = PineconeGRPC(api_key=API_KEY, host=server.url)
        self._clients: dict[tuple[str, str], Any] = {}

    def create_index(
        self,
        *,
        dimension: int | None = 8,
        metric: str = "cosine",
        vector_type: str = "dense",
        **kwargs: Any,
    ) -> str:
        name = unique_name()
        self.pc.create_index(
            name=name,
            dimension=dimension if vector_type == "dense" else None,
            metric=metric,
            vector_type=vector_type,
            spec=SPEC,
            **kwargs,
        )
        return name

    def data(self, name: str, transport: str) -> Any:
        """The data-plane client of ``name``: REST ``Index`` by name, or ``GRPCIndex`` by bare host."""
        key = (name, transport)
        if key not in self._clients:
            if transport == REST:
                self._clients[key] = self.pc.Index(name=name)
            else:
                host = self.pc.describe_index(name).host.removeprefix("http://")
                self._clients[key] = self.pcg.Index(host=host, grpc_config=GRPCClientConfig(secure=False))
        return self._clients[key]

    def forget(self, name: str) -> None:
        for key in [k for k in self._clients if k[0] == name]:
            self._clients.pop(key).close()

    def delete_index(self, name: str) -> None:
        """Delete an index the suite created (lifting deletion protection first); gone is fine."""
        self.forget(name)
        try:
            if self.pc.describe_index(name).deletion_protection == "enabled":
                self.pc.configure_index(name, deletion_protection="disabled")
            self.pc.delete_index(name)
        except NotFoundException:
            pass

    def close(self) -> None:
        for key in list(self._clients):
            self._clients.pop(key).close()


# ------------------------------------------------------------------------------------------- errors


@dataclass
class ApiFailure:
    """An error the engine answered, as read from either transport.

    Attributes:
        code: The status name: a gRPC code name (``INVALID_ARGUMENT``) for the data plane, the
            control-plane code (``FORBIDDEN``, ``UNPROCESSABLE_ENTITY``...) for the control plane.
        message: What the server said.
        http_status: The HTTP status (REST only).
    """

    code: str
    message: str
    http_status: int | None


_GRPC_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def failure(exc: BaseException) -> ApiFailure:
    """Decode the SDK exception of a server-side error (REST: PineconeApiException; gRPC: its cause)."""
    if isinstance(exc, PineconeApiException):
        assert exc.body, f"no response body in {exc!r}"
        body = json.loads(exc.body)
        if "error" in body:  # control plane: {"error": {"code", "message"}, "status"}
            assert body["status"] == exc.status
            return ApiFailure(body["error"]["code"], body["error"]["message"], exc.status)
        assert body.get("details") == [], body  # data plane: google.rpc.Status
        return ApiFailure(_GRPC_NAMES[body["code"]], body["message"], exc.status)
    assert isinstance(exc, PineconeException), f"not an SDK exception: {exc!r}"
    cause = exc.__cause__
    assert isinstance(cause, grpc.RpcError), f"gRPC SDK error without an RpcError cause: {exc!r}"
    return ApiFailure(cause.code().name, cause.details() or "", None)  # type: ignore[attr-defined]


@contextmanager
def api_error(code: str, *fragments: str, status: int | None = None) -> Iterator[list[ApiFailure]]:
    """Expect the SDK to raise for an error the *server* answered, with ``code`` and message fragments.

    ``status`` is the HTTP status a REST client must see (by default the gateway mapping of ``code``).
    Yields a list that holds the decoded failure afterwards.
    """
    found: list[ApiFailure] = []
    with pytest.raises(PineconeException) as info:
        yield found
    decoded = failure(info.value)
    found.append(decoded)
    assert decoded.code == code, f"expected {code}, got {decoded.code}: {decoded.message}"
    if decoded.http_status is not None:
        assert decoded.http_status == (status or HTTP_STATUS[code]), decoded
    lowered = decoded.message.lower()
    for fragment in fragments:
        assert fragment.lower() in lowered, f"{fragment!r} not in {decoded.message!r}"


def invalid(*fragments: str) -> Any:
    """Expect INVALID_ARGUMENT (HTTP 400) with a message containing every fragment."""
    return api_error("INVALID_ARGUMENT", *fragments)


# -------------------------------------------------------------------------------- request builders


def raw_vector(
    transport: str, record_id: str, values: list[float], metadata: dict[str, Any] | None = None
) -> Any:
    """A vector object the SDK sends as-is, skipping its client-side id checks (to reach the server)."""
    if transport == REST:
        kwargs: dict[str, Any] = {"metadata": metadata} if metadata is not None else {}
        return OpenApiVector(id=record_id, values=values, _enforce_validations=False, **kwargs)
    return GRPCVector(id=record_id, values=values)


def raw_rest_query(client: Any, **fields: Any) -> Any:
    """A REST query through the SDK's generated API without its client-side range checks."""
    return client._vector_api.query_vectors(QueryRequest(_enforce_validations=False, **fields))


# ------------------------------------------------------------------------------------------ adapters


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def sparse_pair(obj: Any) -> tuple[list[int], list[float]] | None:
    """(indices, values) of a sparse-values object from either transport, or None."""
    sparse = _get(obj, "sparse_values")
    if not sparse:
        return None
    indices = list(_get(sparse, "indices") or [])
    if not indices:
        return None
    return [int(i) for i in indices], [float(v) for v in _get(sparse, "values")]


def metadata_of(obj: Any) -> dict[str, Any]:
    return dict(_get(obj, "metadata") or {})


def values_of(obj: Any) -> list[float]:
    return [float(v) for v in (_get(obj, "values") or [])]


def list_page(client: Any, **kwargs: Any) -> tuple[list[str], str | None]:
    """One page of ``list_paginated``: the ids and the next-page token."""
    page = client.list_paginated(**kwargs)
    ids = [_get(item, "id") for item in (_get(page, "vectors") or [])]
    pagination = _get(page, "pagination")
    return ids, (_get(pagination, "next") if pagination else None) or None


def namespace_counts(stats: Any) -> dict[str, int]:
    namespaces = _get(stats, "namespaces") or {}
    return {name: int(_get(summary, "vector_count")) for name, summary in namespaces.items()}


def total_count(stats: Any) -> int:
    return int(_get(stats, "total_vector_count"))


def namespace_page(client: Any, **kwargs: Any) -> tuple[list[tuple[str, int]], str | None, int | None]:
    """One page of ``list_namespaces_paginated``: (name, record_count) pairs, next token, total count."""
    page = client.list_namespaces_paginated(**kwargs)
    items = [(_get(ns, "name"), int(_get(ns, "record_count"))) for ns in (_get(page, "namespaces") or [])]
    pagination = _get(page, "pagination")
    total = _get(page, "total_count")
    return items, (_get(pagination, "next") if pagination else None) or None, total

"""Data-plane operations as I/O-free values: how each call is encoded and how its answer is parsed.

An operation knows its gRPC method and payload, its REST route and body, and how to turn either answer
into a public model. Transports only move bytes, and :class:`~pinecone_rag.client.index.Index` and its
async twin only build operations, so both transports and both shells share every rule here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import numpy as np
import orjson

from pinecone_rag.models import (
    FetchResponse,
    IndexStats,
    ListNamespacesResponse,
    ListResponse,
    NamespaceDescription,
    NamespaceSummary,
    QueryResponse,
    ScoredVector,
    SparseValues,
    UpdateResult,
    Usage,
    Vector,
)
from pinecone_rag.wire import codec
from pinecone_rag.wire import messages as pb
from pinecone_rag.wire.structs import fill_struct

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy.typing as npt

    from pinecone_rag.client._records import RecordBatch

T = TypeVar("T")
SparseInput = tuple["npt.NDArray[np.uint32]", "npt.NDArray[np.float32]"]
_JSON = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class RestCall:
    """An HTTP request on the index host."""

    method: str
    path: str
    params: list[tuple[str, str]] | None = None
    body: bytes | None = None
    content_type: str = "application/json"


class DataOp(Generic[T]):
    """One data-plane call; subclasses define the encodings and the parsers."""

    method: str = ""
    idempotent: bool = True

    def grpc_payload(self) -> bytes:
        """The serialized request message."""
        raise NotImplementedError

    def parse_grpc(self, data: bytes) -> T:
        """The model for a serialized response message."""
        raise NotImplementedError

    def rest_call(self) -> RestCall:
        """The REST request."""
        raise NotImplementedError

    def parse_rest(self, body: Any) -> T:
        """The model for a decoded JSON response."""
        raise NotImplementedError


def _json(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=_JSON)


def _sparse_json(sparse: SparseInput) -> dict[str, Any]:
    return {"indices": sparse[0], "values": sparse[1]}


def _sparse_from_json(body: Any) -> SparseValues | None:
    if not body:
        return None
    return SparseValues.of(body.get("indices", []), body.get("values", []))


def _usage(body: Any) -> Usage | None:
    if not body:
        return None
    units = body.get("readUnits", body.get("read_units"))
    return Usage(read_units=None if units is None else int(units))


def _vector_from_json(body: dict[str, Any]) -> Vector:
    values = body.get("values")
    return Vector(
        id=body["id"],
        values=np.asarray(values, dtype=np.float32) if values else None,
        sparse_values=_sparse_from_json(body.get("sparseValues") or body.get("sparse_values")),
        metadata=body.get("metadata") or None,
    )


def _vector_from_decoded(item: codec.DecodedVector) -> Vector:
    sparse = None if item.sparse is None else SparseValues(item.sparse[0], item.sparse[1])
    return Vector(id=item.id, values=item.values, sparse_values=sparse, metadata=item.metadata)


@dataclass(frozen=True)
class UpsertOp(DataOp[int]):
    """Write one batch; returns the upserted count."""

    batch: RecordBatch
    namespace: str = ""
    method = "Upsert"

    def grpc_payload(self) -> bytes:
        batch = self.batch
        return codec.encode_upsert_request(
            batch.ids, batch.dense, batch.sparse, batch.metadata, self.namespace
        )

    def parse_grpc(self, data: bytes) -> int:
        return int(pb.UpsertResponse.FromString(data).upserted_count)

    def rest_call(self) -> RestCall:
        batch = self.batch
        vectors = []
        for i, record_id in enumerate(batch.ids):
            item: dict[str, Any] = {"id": record_id}
            if batch.dense is not None:
                item["values"] = batch.dense[i]
            if batch.sparse is not None and batch.sparse[i] is not None:
                item["sparseValues"] = _sparse_json(batch.sparse[i])  # type: ignore[arg-type]
            if batch.metadata is not None and batch.metadata[i]:
                item["metadata"] = batch.metadata[i]
            vectors.append(item)
        body: dict[str, Any] = {"vectors": vectors}
        if self.namespace:
            body["namespace"] = self.namespace
        return RestCall("POST", "/vectors/upsert", body=_json(body))

    def parse_rest(self, body: Any) -> int:
        return int(body.get("upsertedCount", body.get("upserted_count", 0)))


@dataclass(frozen=True)
class QueryOp(DataOp[QueryResponse]):
    """Top-k by vector, by id, sparse or hybrid, with an optional filter."""

    top_k: int
    vector: npt.NDArray[np.float32] | None = None
    record_id: str | None = None
    sparse: SparseInput | None = None
    namespace: str = ""
    filter: Mapping[str, Any] | None = None
    include_values: bool = False
    include_metadata: bool = False
    scan_factor: float | None = None
    max_candidates: int | None = None
    method = "Query"

    def grpc_payload(self) -> bytes:
        return codec.encode_query_request(
            self.vector,
            self.top_k,
            namespace=self.namespace,
            filter=self.filter,
            include_values=self.include_values,
            include_metadata=self.include_metadata,
            sparse=self.sparse,
            record_id=self.record_id,
            scan_factor=self.scan_factor,
            max_candidates=self.max_candidates,
        )

    def parse_grpc(self, data: bytes) -> QueryResponse:
        decoded = codec.decode_query_response(data)
        matches = [
            ScoredVector(
                id=m.id,
                values=m.values,
                sparse_values=None if m.sparse is None else SparseValues(m.sparse[0], m.sparse[1]),
                metadata=m.metadata,
                score=m.score,
            )
            for m in decoded.matches
        ]
        return QueryResponse(matches, decoded.namespace, Usage(decoded.read_units))

    def rest_call(self) -> RestCall:
        body: dict[str, Any] = {
            "topK": self.top_k,
            "includeValues": self.include_values,
            "includeMetadata": self.include_metadata,
        }
        if self.namespace:
            body["namespace"] = self.namespace
        if self.vector is not None:
            body["vector"] = self.vector
        if self.record_id is not None:
            body["id"] = self.record_id
        if self.sparse is not None:
            body["sparseVector"] = _sparse_json(self.sparse)
        if self.filter:
            body["filter"] = self.filter
        if self.scan_factor is not None:
            body["scanFactor"] = self.scan_factor
        if self.max_candidates is not None:
            body["maxCandidates"] = self.max_candidates
        return RestCall("POST", "/query", body=_json(body))

    def parse_rest(self, body: Any) -> QueryResponse:
        matches = []
        for item in body.get("matches", []):
            vector = _vector_from_json(item)
            matches.append(
                ScoredVector(
                    id=vector.id,
                    values=vector.values,
                    sparse_values=vector.sparse_values,
                    metadata=vector.metadata,
                    # JSON cannot carry NaN; a server that had one sends null.
                    score=float("nan") if item.get("score") is None else float(item["score"]),
                )
            )
        return QueryResponse(matches, body.get("namespace", ""), _usage(body.get("usage")))


@dataclass(frozen=True)
class FetchOp(DataOp[FetchResponse]):
    """Records by id."""

    ids: Sequence[str]
    namespace: str = ""
    method = "Fetch"

    def grpc_payload(self) -> bytes:
        return bytes(pb.FetchRequest(ids=list(self.ids), namespace=self.namespace).SerializeToString())

    def parse_grpc(self, data: bytes) -> FetchResponse:
        decoded = codec.decode_fetch_response(data)
        vectors = {key: _vector_from_decoded(item) for key, item in decoded.vectors.items()}
        return FetchResponse(vectors, decoded.namespace, Usage(decoded.read_units))

    def rest_call(self) -> RestCall:
        params = [("ids", record_id) for record_id in self.ids]
        if self.namespace:
            params.append(("namespace", self.namespace))
        return RestCall("GET", "/vectors/fetch", params=params)

    def parse_rest(self, body: Any) -> FetchResponse:
        vectors = {key: _vector_from_json(item) for key, item in (body.get("vectors") or {}).items()}
        return FetchResponse(vectors, body.get("namespace", ""), _usage(body.get("usage")))


@dataclass(frozen=True)
class FetchByMetadataOp(DataOp[FetchResponse]):
    """Records matching a filter, a page at a time."""

    filter: Mapping[str, Any]
    namespace: str = ""
    limit: int | None = None
    pagination_token: str | None = None
    method = "FetchByMetadata"

    def grpc_payload(self) -> bytes:
        request = pb.FetchByMetadataRequest(namespace=self.namespace)
        fill_struct(request.filter, dict(self.filter))
        if self.limit is not None:
            request.limit = self.limit
        if self.pagination_token:
            request.pagination_token = self.pagination_token
        return bytes(request.SerializeToString())

    def parse_grpc(self, data: bytes) -> FetchResponse:
        decoded = codec.decode_fetch_by_metadata_response(data)
        vectors = {key: _vector_from_decoded(item) for key, item in decoded.vectors.items()}
        return FetchResponse(vectors, decoded.namespace, Usage(decoded.read_units), decoded.next_token)

    def rest_call(self) -> RestCall:
        body: dict[str, Any] = {"filter": self.filter}
        if self.namespace:
            body["namespace"] = self.namespace
        if self.limit is not None:
            body["limit"] = self.limit
        if self.pagination_token:
            body["paginationToken"] = self.pagination_token
        return RestCall("POST", "/vectors/fetch_by_metadata", body=_json(body))

    def parse_rest(self, body: Any) -> FetchResponse:
        vectors = {key: _vector_from_json(item) for key, item in (body.get("vectors") or {}).items()}
        token = (body.get("pagination") or {}).get("next") or None
        return FetchResponse(vectors, body.get("namespace", ""), _usage(body.get("usage")), token)


@dataclass(frozen=True)
class UpdateOp(DataOp[UpdateResult]):
    """Update one record by id, or set metadata on every record matching a filter."""

    record_id: str | None = None
    values: npt.NDArray[np.float32] | None = None
    sparse: SparseInput | None = None
    set_metadata: Mapping[str, Any] | None = None
    namespace: str = ""
    filter: Mapping[str, Any] | None = None
    dry_run: bool = False
    method = "Update"

    def grpc_payload(self) -> bytes:
        request = pb.UpdateRequest(namespace=self.namespace)
        if self.record_id is not None:
            request.id = self.record_id
        if self.values is not None:
            request.values[:] = self.values.tolist()
        if self.sparse is not None:
            request.sparse_values.indices[:] = self.sparse[0].tolist()
            request.sparse_values.values[:] = self.sparse[1].tolist()
        if self.set_metadata is not None:
            fill_struct(request.set_metadata, dict(self.set_metadata))
        if self.filter is not None:
            fill_struct(request.filter, dict(self.filter))
        if self.dry_run:
            request.dry_run = True
        return bytes(request.SerializeToString())

    def parse_grpc(self, data: bytes) -> UpdateResult:
        response = pb.UpdateResponse.FromString(data)
        return UpdateResult(response.matched_records if response.HasField("matched_records") else None)

    def rest_call(self) -> RestCall:
        body: dict[str, Any] = {}
        if self.record_id is not None:
            body["id"] = self.record_id
        if self.values is not None:
            body["values"] = self.values
        if self.sparse is not None:
            body["sparseValues"] = _sparse_json(self.sparse)
        if self.set_metadata is not None:
            body["setMetadata"] = self.set_metadata
        if self.namespace:
            body["namespace"] = self.namespace
        if self.filter is not None:
            body["filter"] = self.filter
        if self.dry_run:
            body["dryRun"] = True
        return RestCall("POST", "/vectors/update", body=_json(body))

    def parse_rest(self, body: Any) -> UpdateResult:
        matched = body.get("matchedRecords", body.get("matched_records"))
        return UpdateResult(None if matched is None else int(matched))


@dataclass(frozen=True)
class DeleteOp(DataOp[None]):
    """Delete by ids, by filter, or everything in a namespace."""

    ids: Sequence[str] | None = None
    delete_all: bool = False
    namespace: str = ""
    filter: Mapping[str, Any] | None = None
    method = "Delete"

    def grpc_payload(self) -> bytes:
        request = pb.DeleteRequest(namespace=self.namespace, delete_all=self.delete_all)
        if self.ids:
            request.ids[:] = list(self.ids)
        if self.filter is not None:
            fill_struct(request.filter, dict(self.filter))
        return bytes(request.SerializeToString())

    def parse_grpc(self, data: bytes) -> None:
        return None

    def rest_call(self) -> RestCall:
        body: dict[str, Any] = {}
        if self.ids:
            body["ids"] = list(self.ids)
        if self.delete_all:
            body["deleteAll"] = True
        if self.namespace:
            body["namespace"] = self.namespace
        if self.filter is not None:
            body["filter"] = self.filter
        return RestCall("POST", "/vectors/delete", body=_json(body))

    def parse_rest(self, body: Any) -> None:
        return None


@dataclass(frozen=True)
class ListOp(DataOp[ListResponse]):
    """One page of ids in bitwise order."""

    prefix: str | None = None
    limit: int | None = None
    pagination_token: str | None = None
    namespace: str = ""
    method = "List"

    def grpc_payload(self) -> bytes:
        request = pb.ListRequest(namespace=self.namespace)
        if self.prefix:
            request.prefix = self.prefix
        if self.limit is not None:
            request.limit = self.limit
        if self.pagination_token:
            request.pagination_token = self.pagination_token
        return bytes(request.SerializeToString())

    def parse_grpc(self, data: bytes) -> ListResponse:
        response = pb.ListResponse.FromString(data)
        token = response.pagination.next if response.HasField("pagination") else None
        return ListResponse([item.id for item in response.vectors], token or None, response.namespace)

    def rest_call(self) -> RestCall:
        params = []
        if self.prefix:
            params.append(("prefix", self.prefix))
        if self.limit is not None:
            params.append(("limit", str(self.limit)))
        if self.pagination_token:
            params.append(("paginationToken", self.pagination_token))
        if self.namespace:
            params.append(("namespace", self.namespace))
        return RestCall("GET", "/vectors/list", params=params)

    def parse_rest(self, body: Any) -> ListResponse:
        token = (body.get("pagination") or {}).get("next") or None
        return ListResponse(
            [item["id"] for item in body.get("vectors", [])], token, body.get("namespace", "")
        )


@dataclass(frozen=True)
class StatsOp(DataOp[IndexStats]):
    """Record counts per namespace."""

    filter: Mapping[str, Any] | None = None
    method = "DescribeIndexStats"

    def grpc_payload(self) -> bytes:
        request = pb.DescribeIndexStatsRequest()
        if self.filter:
            fill_struct(request.filter, dict(self.filter))
        return bytes(request.SerializeToString())

    def parse_grpc(self, data: bytes) -> IndexStats:
        response = pb.DescribeIndexStatsResponse.FromString(data)
        return IndexStats(
            namespaces={name: NamespaceSummary(s.vector_count) for name, s in response.namespaces.items()},
            total_vector_count=response.total_vector_count,
            dimension=response.dimension if response.HasField("dimension") else None,
            index_fullness=response.index_fullness,
            metric=response.metric if response.HasField("metric") else None,
            vector_type=response.vector_type if response.HasField("vector_type") else None,
        )

    def rest_call(self) -> RestCall:
        body = {"filter": self.filter} if self.filter else {}
        return RestCall("POST", "/describe_index_stats", body=_json(body))

    def parse_rest(self, body: Any) -> IndexStats:
        namespaces = body.get("namespaces") or {}
        return IndexStats(
            namespaces={
                name: NamespaceSummary(int(s.get("vectorCount", s.get("vector_count", 0))))
                for name, s in namespaces.items()
            },
            total_vector_count=int(body.get("totalVectorCount", body.get("total_vector_count", 0))),
            dimension=body.get("dimension"),
            index_fullness=float(body.get("indexFullness", body.get("index_fullness", 0.0))),
            metric=body.get("metric"),
            vector_type=body.get("vectorType", body.get("vector_type")),
        )


def _namespace_from_pb(message: Any) -> NamespaceDescription:
    schema = None
    if message.HasField("schema"):
        schema = {"fields": {k: {"filterable": v.filterable} for k, v in message.schema.fields.items()}}
    fields = list(message.indexed_fields.fields) if message.HasField("indexed_fields") else None
    return NamespaceDescription(message.name, int(message.record_count), schema, fields)


def _namespace_from_json(body: dict[str, Any]) -> NamespaceDescription:
    indexed = body.get("indexed_fields") or body.get("indexedFields")
    return NamespaceDescription(
        name=body.get("name", ""),
        record_count=int(body.get("record_count", body.get("recordCount", 0))),
        schema=body.get("schema"),
        indexed_fields=None if indexed is None else list(indexed.get("fields", [])),
    )


@dataclass(frozen=True)
class ListNamespacesOp(DataOp[ListNamespacesResponse]):
    """One page of namespaces."""

    prefix: str | None = None
    limit: int | None = None
    pagination_token: str | None = None
    method = "ListNamespaces"

    def grpc_payload(self) -> bytes:
        request = pb.ListNamespacesRequest()
        if self.prefix:
            request.prefix = self.prefix
        if self.limit is not None:
            request.limit = self.limit
        if self.pagination_token:
            request.pagination_token = self.pagination_token
        return bytes(request.SerializeToString())

    def parse_grpc(self, data: bytes) -> ListNamespacesResponse:
        response = pb.ListNamespacesResponse.FromString(data)
        token = response.pagination.next if response.HasField("pagination") else None
        return ListNamespacesResponse(
            [_namespace_from_pb(ns) for ns in response.namespaces], token or None, response.total_count
        )

    def rest_call(self) -> RestCall:
        params = []
        if self.prefix:
            params.append(("prefix", self.prefix))
        if self.limit is not None:
            params.append(("limit", str(self.limit)))
        if self.pagination_token:
            params.append(("paginationToken", self.pagination_token))
        return RestCall("GET", "/namespaces", params=params)

    def parse_rest(self, body: Any) -> ListNamespacesResponse:
        token = (body.get("pagination") or {}).get("next") or None
        total = body.get("total_count", body.get("totalCount"))
        return ListNamespacesResponse(
            [_namespace_from_json(ns) for ns in body.get("namespaces", [])],
            token,
            None if total is None else int(total),
        )


@dataclass(frozen=True)
class DescribeNamespaceOp(DataOp[NamespaceDescription]):
    """One namespace."""

    namespace: str
    method = "DescribeNamespace"

    def grpc_payload(self) -> bytes:
        return bytes(pb.DescribeNamespaceRequest(namespace=self.namespace).SerializeToString())

    def parse_grpc(self, data: bytes) -> NamespaceDescription:
        return _namespace_from_pb(pb.NamespaceDescription.FromString(data))

    def rest_call(self) -> RestCall:
        return RestCall("GET", f"/namespaces/{_path_segment(self.namespace)}")

    def parse_rest(self, body: Any) -> NamespaceDescription:
        return _namespace_from_json(body)


@dataclass(frozen=True)
class CreateNamespaceOp(DataOp[NamespaceDescription]):
    """An empty namespace with an optional metadata schema (``{"fields": {name: {"filterable": True}}}``)."""

    name: str
    schema: Mapping[str, Any] | None = None
    method = "CreateNamespace"
    idempotent = False

    def grpc_payload(self) -> bytes:
        request = pb.CreateNamespaceRequest(name=self.name)
        if self.schema is not None:
            for field_name, props in (self.schema.get("fields") or {}).items():
                request.schema.fields[field_name].filterable = bool((props or {}).get("filterable"))
        return bytes(request.SerializeToString())

    def parse_grpc(self, data: bytes) -> NamespaceDescription:
        return _namespace_from_pb(pb.NamespaceDescription.FromString(data))

    def rest_call(self) -> RestCall:
        body: dict[str, Any] = {"name": self.name}
        if self.schema is not None:
            body["schema"] = self.schema
        return RestCall("POST", "/namespaces", body=_json(body))

    def parse_rest(self, body: Any) -> NamespaceDescription:
        return _namespace_from_json(body)


@dataclass(frozen=True)
class DeleteNamespaceOp(DataOp[None]):
    """A namespace and all its records."""

    namespace: str
    method = "DeleteNamespace"

    def grpc_payload(self) -> bytes:
        return bytes(pb.DeleteNamespaceRequest(namespace=self.namespace).SerializeToString())

    def parse_grpc(self, data: bytes) -> None:
        return None

    def rest_call(self) -> RestCall:
        return RestCall("DELETE", f"/namespaces/{_path_segment(self.namespace)}")

    def parse_rest(self, body: Any) -> None:
        return None


def _path_segment(name: str) -> str:
    return quote(name or "__default__", safe="")

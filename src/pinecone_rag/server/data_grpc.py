"""The data plane over gRPC: ``/VectorService/*`` on grpcio, one server per index.

Each handler checks the ``api-key`` metadata, decodes the protobuf request into plain values, calls the
shared :class:`DataService`, and encodes the result. Errors become gRPC statuses with Pinecone's codes;
LSNs go out as trailing metadata.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from pinecone_rag.errors import ApiError, InvalidArgumentError, NotFoundError
from pinecone_rag.server.data_service import DataService, QueryInput, UpdateInput, UpsertInput
from pinecone_rag.server.engine import display_namespace
from pinecone_rag.wire import messages as pb
from pinecone_rag.wire.codec import DecodedUpsertColumns, decode_upsert_columns
from pinecone_rag.wire.structs import fill_struct, struct_to_dict

if TYPE_CHECKING:
    from collections.abc import Callable

    from pinecone_rag.server.auth import KeyRing
    from pinecone_rag.server.engine import NamespaceSummary
    from pinecone_rag.server.records import Record

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 128 * 1024 * 1024
LSN_HEADER = "x-pinecone-request-lsn"
INDEXED_LSN_HEADER = "x-pinecone-max-indexed-lsn"
_STATUS = {code.value[0]: code for code in grpc.StatusCode}
_NO_VALUES = np.zeros(0, dtype=np.float32)


class _Malformed:
    """Stands in for a request whose bytes did not parse, so the handler can answer INVALID_ARGUMENT."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _deserializer(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def run(data: bytes) -> Any:
        try:
            return parse(data)
        # grpcio would answer INTERNAL for a parse error; it is the caller's, so INVALID_ARGUMENT.
        except Exception as exc:  # noqa: BLE001
            return _Malformed(str(exc) or type(exc).__name__)

    return run


def _sparse_pair(message: Any, field: str) -> tuple[Any, Any] | None:
    if not message.HasField(field):
        return None
    sparse = getattr(message, field)
    return np.asarray(sparse.indices, dtype=np.int64), np.asarray(sparse.values, dtype=np.float32)


def _fill_vector(target: Any, record: Record) -> None:
    target.id = record.id
    if record.values is not None:
        target.values[:] = record.values.tolist()
    if record.sparse is not None:
        target.sparse_values.indices[:] = record.sparse.indices.tolist()
        target.sparse_values.values[:] = record.sparse.values.tolist()
    if record.metadata:
        fill_struct(target.metadata, record.metadata)


def _namespace_description(summary: NamespaceSummary) -> Any:
    out = pb.NamespaceDescription(name=display_namespace(summary.name), record_count=summary.record_count)
    if summary.schema is not None:
        for name, props in summary.schema.get("fields", {}).items():
            out.schema.fields[name].filterable = bool(props.get("filterable"))
        out.indexed_fields.fields[:] = summary.indexed_fields or []
    return out


def _raw_upsert(data: bytes) -> bytes:
    # grpcio runs deserializers on its one network thread; decoding there would serialise every upsert
    # behind it (measured: two thirds of the engine's upsert time), so the handler's worker decodes.
    return data


class VectorServiceHandlers:
    """The RPC implementations for one index."""

    def __init__(self, service: DataService, keyring: KeyRing, project_id: str) -> None:
        self.service = service
        self._keyring = keyring
        self._project_id = project_id

    def _authorize(self, context: grpc.ServicerContext) -> None:
        key = None
        for name, value in context.invocation_metadata():
            if name == "api-key":
                key = value if isinstance(value, str) else value.decode()
                break
        if self._keyring.project_for(key) != self._project_id:
            raise NotFoundError("Index not found.")

    def _call(
        self, fn: Callable[[Any, grpc.ServicerContext], Any]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                self._authorize(context)
                if isinstance(request, _Malformed):
                    raise InvalidArgumentError(
                        f"The request is not a valid protobuf message: {request.reason}"
                    )
                return fn(request, context)
            except ApiError as error:
                if error.retry_after is not None:
                    # gRPC's standard back-pressure hint; clients (ours included) wait this long.
                    pushback = str(max(1, round(error.retry_after * 1000)))
                    context.set_trailing_metadata((("grpc-retry-pushback-ms", pushback),))
                context.abort(_STATUS[error.grpc_code], error.message)
            except Exception:  # a bug must still answer INTERNAL, never kill the call
                logger.exception("gRPC handler failed")
                context.abort(grpc.StatusCode.INTERNAL, "Internal error; see the server log.")

        return handler

    @staticmethod
    def _lsn(context: grpc.ServicerContext, header: str, lsn: int) -> None:
        context.set_trailing_metadata(((header, str(lsn)),))

    # ------------------------------------------------------------------------------------------- RPCs
    def upsert(self, request: bytes, context: grpc.ServicerContext) -> Any:
        """Upsert: write records durably."""
        try:
            # The hand-written decoder turns packed floats into one numpy matrix without per-float work.
            decoded: DecodedUpsertColumns = decode_upsert_columns(request)
        except ValueError as exc:
            raise InvalidArgumentError(f"The request is not a valid protobuf message: {exc}") from exc
        dense: Any = decoded.matrix
        if dense is None and any(values is not None for values in decoded.values):
            dense = [_NO_VALUES if values is None else values for values in decoded.values]
        result = self.service.upsert(
            UpsertInput(
                namespace=decoded.namespace,
                ids=decoded.ids,
                dense=dense,
                sparse=decoded.sparse,
                metadata=decoded.metadata,
                request_bytes=len(request),
            )
        )
        self._lsn(context, LSN_HEADER, result.lsn)
        return pb.UpsertResponse(upserted_count=len(decoded.ids))

    def query(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Query: top-k by vector, id, sparse or hybrid."""
        namespace, matches, lsn = self.service.query(
            QueryInput(
                namespace=request.namespace,
                top_k=request.top_k,
                vector=np.asarray(request.vector, dtype=np.float32) if len(request.vector) else None,
                sparse=_sparse_pair(request, "sparse_vector"),
                record_id=request.id or None,
                filter=struct_to_dict(request.filter) if request.HasField("filter") else None,
                include_values=request.include_values,
                include_metadata=request.include_metadata,
                has_queries=len(request.queries) > 0,
                scan_factor=request.scan_factor if request.HasField("scan_factor") else None,
                max_candidates=request.max_candidates if request.HasField("max_candidates") else None,
            )
        )
        response = pb.QueryResponse(namespace=namespace)
        for match in matches:
            scored = response.matches.add()
            _fill_vector(scored, match.record)
            scored.score = match.score
        response.usage.read_units = max(1, len(matches) // 100)
        self._lsn(context, INDEXED_LSN_HEADER, lsn)
        return response

    def fetch(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Fetch: records by id."""
        namespace, records, lsn = self.service.fetch(request.namespace, list(request.ids))
        response = pb.FetchResponse(namespace=namespace)
        for record in records:
            _fill_vector(response.vectors[record.id], record)
        response.usage.read_units = 1
        self._lsn(context, INDEXED_LSN_HEADER, lsn)
        return response

    def fetch_by_metadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        """FetchByMetadata: records matching a filter, paginated."""
        namespace, records, token, lsn = self.service.fetch_by_metadata(
            request.namespace,
            struct_to_dict(request.filter) if request.HasField("filter") else None,
            request.limit if request.HasField("limit") else None,
            request.pagination_token if request.HasField("pagination_token") else None,
        )
        response = pb.FetchByMetadataResponse(namespace=namespace)
        for record in records:
            _fill_vector(response.vectors[record.id], record)
        if token:
            response.pagination.next = token
        response.usage.read_units = 1
        self._lsn(context, INDEXED_LSN_HEADER, lsn)
        return response

    def update(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Update: one record by id, or metadata by filter."""
        result, matched = self.service.update(
            UpdateInput(
                namespace=request.namespace,
                record_id=request.id or None,
                values=np.asarray(request.values, dtype=np.float32) if len(request.values) else None,
                sparse=_sparse_pair(request, "sparse_values"),
                set_metadata=struct_to_dict(request.set_metadata)
                if request.HasField("set_metadata")
                else None,
                filter=struct_to_dict(request.filter) if request.HasField("filter") else None,
                dry_run=request.dry_run,
            )
        )
        self._lsn(context, LSN_HEADER, result.lsn)
        response = pb.UpdateResponse()
        if matched is not None:
            response.matched_records = matched
        return response

    def delete(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Delete: by ids, by filter, or everything."""
        result = self.service.delete(
            request.namespace,
            list(request.ids),
            request.delete_all,
            struct_to_dict(request.filter) if request.HasField("filter") else None,
        )
        self._lsn(context, LSN_HEADER, result.lsn)
        return pb.DeleteResponse()

    def list(self, request: Any, context: grpc.ServicerContext) -> Any:
        """List: ids in bitwise order, paginated."""
        namespace, page = self.service.list_ids(
            request.namespace,
            request.prefix if request.HasField("prefix") else None,
            request.limit if request.HasField("limit") else None,
            request.pagination_token if request.HasField("pagination_token") else None,
        )
        response = pb.ListResponse(namespace=namespace)
        for record_id in page.ids:
            response.vectors.add(id=record_id)
        if page.next_token:
            response.pagination.next = page.next_token
        response.usage.read_units = 1
        return response

    def describe_index_stats(self, request: Any, context: grpc.ServicerContext) -> Any:
        """DescribeIndexStats: record counts per namespace."""
        counts = self.service.stats(struct_to_dict(request.filter) if request.HasField("filter") else None)
        spec = self.service.engine.spec
        response = pb.DescribeIndexStatsResponse(
            index_fullness=0.0,
            total_vector_count=sum(counts.values()),
            metric=spec.metric,
            vector_type=spec.vector_type,
            memory_fullness=0.0,
            storage_fullness=0.0,
        )
        if spec.dimension is not None:
            response.dimension = spec.dimension
        for name, count in counts.items():
            response.namespaces[display_namespace(name)].vector_count = count
        return response

    def list_namespaces(self, request: Any, context: grpc.ServicerContext) -> Any:
        """ListNamespaces: namespaces in bitwise order, paginated."""
        summaries, token, total = self.service.list_namespaces(
            request.prefix if request.HasField("prefix") else None,
            request.limit if request.HasField("limit") else None,
            request.pagination_token if request.HasField("pagination_token") else None,
        )
        response = pb.ListNamespacesResponse(total_count=total)
        for summary in summaries:
            response.namespaces.append(_namespace_description(summary))
        if token:
            response.pagination.next = token
        return response

    def describe_namespace(self, request: Any, context: grpc.ServicerContext) -> Any:
        """DescribeNamespace: one namespace's record count and schema."""
        return _namespace_description(self.service.describe_namespace(request.namespace))

    def create_namespace(self, request: Any, context: grpc.ServicerContext) -> Any:
        """CreateNamespace: an empty namespace with an optional schema."""
        schema = None
        if request.HasField("schema"):
            schema = {
                "fields": {name: {"filterable": p.filterable} for name, p in request.schema.fields.items()}
            }
        return _namespace_description(self.service.create_namespace(request.name, schema))

    def delete_namespace(self, request: Any, context: grpc.ServicerContext) -> Any:
        """DeleteNamespace: a namespace and all its records."""
        self.service.delete_namespace(request.namespace)
        return pb.DeleteResponse()

    def generic_handler(self) -> grpc.GenericRpcHandler:  # type: ignore[type-arg]
        """All RPCs of ``VectorService`` as one grpcio handler."""
        implementations: dict[str, Callable[[Any, grpc.ServicerContext], Any]] = {
            "Upsert": self.upsert,
            "Delete": self.delete,
            "Fetch": self.fetch,
            "List": self.list,
            "Query": self.query,
            "Update": self.update,
            "DescribeIndexStats": self.describe_index_stats,
            "ListNamespaces": self.list_namespaces,
            "DescribeNamespace": self.describe_namespace,
            "DeleteNamespace": self.delete_namespace,
            "CreateNamespace": self.create_namespace,
            "FetchByMetadata": self.fetch_by_metadata,
        }
        handlers = {}
        for name, (request_class, _response_class) in pb.METHODS.items():
            parse = request_class.FromString
            if name == "Upsert":
                parse = _raw_upsert
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                self._call(implementations[name]),
                request_deserializer=_deserializer(parse),
                response_serializer=lambda message: message.SerializeToString(),
            )
        return grpc.method_handlers_generic_handler(pb.SERVICE_NAME, handlers)

"""Data-plane operations on decoded requests, shared by the REST routes and the gRPC service.

Transports decode their wire format into plain values (strings, lists or numpy arrays, dicts for
filters and metadata) and call one method here; this layer applies Pinecone's request rules and limits,
calls the engine, and returns engine results for the transport to encode. So REST and gRPC agree on every
check and every message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pinecone_rag.errors import InvalidArgumentError
from pinecone_rag.server.filters import Filter, parse_filter
from pinecone_rag.server.metadata import validate_metadata
from pinecone_rag.server.validation import (
    DEFAULT_LIST_LIMIT,
    MAX_FETCH_BY_METADATA_LIMIT,
    MAX_LIST_LIMIT,
    MAX_NAMESPACES_PAGE,
    MAX_UPSERT_BYTES,
    check_id,
    check_ids,
    check_limit,
    check_namespace,
    check_sparse,
    check_top_k,
    check_upsert,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pinecone_rag.server.engine import IndexEngine, NamespaceSummary, Page
    from pinecone_rag.server.namespace import WriteResult
    from pinecone_rag.server.records import FloatArray, Record, ScoredRecord, SparseVector

SparsePair = tuple[Any, Any]
"""Raw sparse values as decoded: (indices, values)."""


@dataclass(frozen=True, slots=True)
class UpsertInput:
    """A decoded upsert request."""

    namespace: object
    ids: list[str]
    dense: Sequence[Any] | None
    sparse: list[SparsePair | None]
    metadata: Sequence[object]
    request_bytes: int


MAX_CANDIDATES = 100_000
"""The largest ``maxCandidates`` Pinecone accepts."""


@dataclass(frozen=True, slots=True)
class QueryInput:
    """A decoded query request."""

    namespace: object
    top_k: object
    vector: Any | None
    sparse: SparsePair | None
    record_id: str | None
    filter: object
    include_values: bool
    include_metadata: bool
    has_queries: bool = False
    scan_factor: object = None
    max_candidates: object = None


@dataclass(frozen=True, slots=True)
class UpdateInput:
    """A decoded update request."""

    namespace: object
    record_id: str | None
    values: Any | None
    sparse: SparsePair | None
    set_metadata: object
    filter: object
    dry_run: bool


def _filter(raw: object, *, required_message: str | None = None) -> Filter | None:
    flt = parse_filter(raw)
    if flt is None and required_message is not None:
        raise InvalidArgumentError(required_message)
    return flt


def _sparse(pair: SparsePair | None, where: str) -> SparseVector | None:
    return None if pair is None else check_sparse(pair[0], pair[1], where)


class DataService:
    """Pinecone's data-plane API over one :class:`IndexEngine`."""

    def __init__(self, engine: IndexEngine) -> None:
        self.engine = engine

    def upsert(self, request: UpsertInput) -> WriteResult:
        """Validate and durably write an upsert."""
        if request.request_bytes > MAX_UPSERT_BYTES:
            raise InvalidArgumentError(
                f"Request size {request.request_bytes / (1024 * 1024):.1f}MB exceeds the maximum supported "
                f"size of {MAX_UPSERT_BYTES // (1024 * 1024)}MB."
            )
        namespace = check_namespace(request.namespace)
        # The label is only built for records that have sparse values (an f-string per record showed up
        # in profiles of dense upserts).
        sparse = [
            None if pair is None else _sparse(pair, f"Record {record_id!r}")
            for record_id, pair in zip(request.ids, request.sparse, strict=True)
        ]
        batch = check_upsert(self.engine.spec, request.ids, request.dense, sparse, request.metadata)
        return self.engine.upsert(namespace, batch)

    def query(self, request: QueryInput) -> tuple[str, list[ScoredRecord], int]:
        """Validate and run a query; returns the namespace, the matches and the LSN read."""
        if request.has_queries:
            raise InvalidArgumentError("The 'queries' field is deprecated and not supported; use 'vector'.")
        namespace = check_namespace(request.namespace)
        top_k = check_top_k(
            self.engine.spec, request.top_k, include_data=request.include_values or request.include_metadata
        )
        record_id = request.record_id or None
        has_vector = request.vector is not None and len(request.vector) > 0
        if record_id is not None:
            check_id(record_id, "Query")
            if has_vector:
                raise InvalidArgumentError("A query takes either a vector or an id, not both.")
        flt = _filter(request.filter)
        scan_factor, max_candidates = check_scan(request.scan_factor, request.max_candidates, top_k)
        matches, lsn = self.engine.query(
            namespace,
            top_k=top_k,
            vector=request.vector if has_vector else None,
            sparse=_sparse(request.sparse, "Query"),
            record_id=record_id,
            flt=flt,
            include_values=request.include_values,
            include_metadata=request.include_metadata,
            scan_factor=scan_factor,
            max_candidates=max_candidates,
        )
        return namespace, matches, lsn

    def fetch(self, namespace: object, ids: Sequence[object]) -> tuple[str, list[Record], int]:
        """Fetch records by id."""
        ns = check_namespace(namespace)
        if not ids:
            raise InvalidArgumentError("Fetch requires at least one id.")
        records, lsn = self.engine.fetch(ns, check_ids(ids, "Fetch"))
        return ns, records, lsn

    def fetch_by_metadata(
        self, namespace: object, raw_filter: object, limit: object, token: str | None
    ) -> tuple[str, list[Record], str | None, int]:
        """Fetch records matching a filter, a page at a time."""
        ns = check_namespace(namespace)
        flt = _filter(raw_filter, required_message="Empty filter provided for fetch by metadata request")
        assert flt is not None
        page_size = check_limit(limit, default=100, maximum=MAX_FETCH_BY_METADATA_LIMIT, what="limit")
        records, next_token, lsn = self.engine.fetch_by_metadata(ns, flt, limit=page_size, token=token)
        return ns, records, next_token, lsn

    def update(self, request: UpdateInput) -> tuple[WriteResult, int | None]:
        """Update one record by id, or set metadata on every match of a filter.

        Returns the write and, for updates by filter, the number of matched records.
        """
        ns = check_namespace(request.namespace)
        record_id = request.record_id or None
        set_metadata = validate_metadata(
            request.set_metadata, record_id=record_id or "(matched by filter)", field="setMetadata"
        )
        if request.filter is not None and request.filter != {}:
            if record_id is not None:
                raise InvalidArgumentError("An update takes either an id or a filter, not both.")
            if (request.values is not None and len(request.values)) or request.sparse is not None:
                raise InvalidArgumentError("An update by filter can only set metadata, not values.")
            if set_metadata is None and not request.dry_run:
                raise InvalidArgumentError("An update by filter needs setMetadata.")
            flt = _filter(request.filter)
            assert flt is not None
            assert isinstance(request.filter, dict)
            result = self.engine.update_by_filter(
                ns, request.filter, set_metadata or {}, dry_run=request.dry_run
            )
            return result, result.count
        if request.filter == {}:
            raise InvalidArgumentError("Update with empty metadata filter is not allowed")
        if record_id is None:
            raise InvalidArgumentError("An update needs the id of the record to update, or a filter.")
        check_id(record_id, "Update")
        values = request.values if request.values is not None and len(request.values) else None
        result = self.engine.update(
            ns,
            record_id,
            values=values,
            sparse=_sparse(request.sparse, f"Update of {record_id!r}"),
            set_metadata=set_metadata,
        )
        return result, None

    def delete(
        self, namespace: object, ids: Sequence[object], delete_all: bool, raw_filter: object
    ) -> WriteResult:
        """Delete by ids, by filter, or everything in the namespace (exactly one of the three)."""
        ns = check_namespace(namespace)
        has_filter = raw_filter is not None
        chosen = sum((bool(ids), bool(delete_all), has_filter))
        if chosen > 1:
            raise InvalidArgumentError("A delete takes exactly one of ids, deleteAll or filter.")
        if delete_all:
            return self.engine.delete_all(ns)
        if has_filter:
            _filter(raw_filter, required_message="Delete with empty metadata filter is not allowed")
            assert isinstance(raw_filter, dict)
            return self.engine.delete_by_filter(ns, raw_filter)
        if not ids:
            raise InvalidArgumentError("A delete needs ids, a filter, or deleteAll.")
        return self.engine.delete_ids(ns, check_ids(ids, "Delete"))

    def list_ids(
        self, namespace: object, prefix: object, limit: object, token: str | None
    ) -> tuple[str, Page]:
        """A page of ids in bitwise order."""
        ns = check_namespace(namespace)
        if prefix is not None and not isinstance(prefix, str):
            raise InvalidArgumentError("prefix must be a string.")
        page_size = check_limit(limit, default=DEFAULT_LIST_LIMIT, maximum=MAX_LIST_LIMIT, what="limit")
        return ns, self.engine.list_ids(ns, prefix=prefix or None, limit=page_size, token=token)

    def stats(self, raw_filter: object) -> dict[str, int]:
        """Record counts per namespace (serverless rejects a filter here, and so do we)."""
        if raw_filter not in (None, {}):
            raise InvalidArgumentError(
                "Serverless and Starter indexes do not support describing index stats "
                "with metadata filtering."
            )
        return self.engine.stats()

    def list_namespaces(
        self, prefix: object, limit: object, token: str | None
    ) -> tuple[list[NamespaceSummary], str | None, int]:
        """A page of namespaces, the next token, and the total count."""
        if prefix is not None and not isinstance(prefix, str):
            raise InvalidArgumentError("prefix must be a string.")
        page_size = check_limit(limit, default=100, maximum=MAX_NAMESPACES_PAGE, what="limit")
        return self.engine.list_namespaces(prefix=prefix or None, limit=page_size, token=token)

    def describe_namespace(self, name: object) -> NamespaceSummary:
        """Describe one namespace."""
        return self.engine.describe_namespace(check_namespace(name))

    def create_namespace(self, name: object, schema: object) -> NamespaceSummary:
        """Create a namespace with an optional metadata schema."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("CreateNamespace needs a non-empty name.")
        if name == "__default__":
            raise InvalidArgumentError("The default namespace cannot be created; it always exists.")
        checked_schema = _check_schema(schema)
        return self.engine.create_namespace(check_namespace(name), checked_schema)

    def delete_namespace(self, name: object) -> None:
        """Delete a namespace and its records."""
        self.engine.delete_namespace(check_namespace(name))

    @staticmethod
    def vector_or_none(values: FloatArray | None) -> FloatArray | None:
        """Dense values that are present (empty means absent on the wire)."""
        return values if values is not None and len(values) else None


def _check_schema(schema: object) -> dict[str, Any] | None:
    if schema is None:
        return None
    if not isinstance(schema, dict) or not isinstance(schema.get("fields", {}), dict):
        raise InvalidArgumentError(
            "schema must be an object of the form {'fields': {name: {'filterable': bool}}}."
        )
    fields: dict[str, Any] = {}
    for name, props in schema.get("fields", {}).items():
        if not isinstance(props, dict) or not isinstance(props.get("filterable", False), bool):
            raise InvalidArgumentError(
                f"schema field {name!r} must be an object like {{'filterable': true}}."
            )
        fields[name] = {"filterable": bool(props.get("filterable", False))}
    return {"fields": fields}


def check_scan(scan_factor: object, max_candidates: object, top_k: int) -> tuple[float | None, int | None]:
    """Validate ``scanFactor`` (0.5 to 4) and ``maxCandidates`` (``top_k`` to 100,000)."""
    factor = None
    if scan_factor is not None:
        if isinstance(scan_factor, bool) or not isinstance(scan_factor, int | float):
            raise InvalidArgumentError("scanFactor must be a number between 0.5 and 4.")
        factor = float(scan_factor)
        if not 0.5 <= factor <= 4.0:
            raise InvalidArgumentError(f"scanFactor must be between 0.5 and 4, got {factor:g}.")
    cap = None
    if max_candidates is not None:
        if isinstance(max_candidates, bool) or not isinstance(max_candidates, int):
            raise InvalidArgumentError("maxCandidates must be an integer.")
        if not max(top_k, 1) <= max_candidates <= MAX_CANDIDATES:
            raise InvalidArgumentError(
                f"maxCandidates must be between topK ({top_k}) and {MAX_CANDIDATES:,}, got {max_candidates}."
            )
        cap = max_candidates
    return factor, cap

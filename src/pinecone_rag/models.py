"""Public value types of the client: specs, index descriptions, records and responses.

Every response is one of these frozen dataclasses, whichever transport carried it; protobuf messages and
raw JSON never reach the caller. Vector values are float32 numpy arrays (``list(v.values)`` if you need a
list), so large results cost no per-float Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pinecone_rag.errors import UpsertError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy.typing as npt

Metric = Literal["cosine", "euclidean", "dotproduct"]
VectorType = Literal["dense", "sparse"]
DeletionProtection = Literal["enabled", "disabled"]
MetadataValue = str | float | bool | list[str]
"""What Pinecone stores per metadata key: string, number, bool, or a list of strings."""


@dataclass(frozen=True)
class ServerlessSpec:
    """Where a serverless index lives, e.g. ``ServerlessSpec(cloud="aws", region="us-east-1")``."""

    cloud: str = "aws"
    region: str = "us-east-1"

    def to_json(self) -> dict[str, Any]:
        """The ``spec`` object of a create-index request."""
        return {"serverless": {"cloud": self.cloud, "region": self.region}}


@dataclass(frozen=True)
class PodSpec:
    """A pod-based index (``environment`` such as ``us-west1-gcp``, ``pod_type`` such as ``p1.x1``)."""

    environment: str
    pod_type: str = "p1.x1"
    replicas: int = 1
    shards: int = 1
    pods: int = 1
    metadata_config: dict[str, list[str]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``spec`` object of a create-index request."""
        pod: dict[str, Any] = {
            "environment": self.environment,
            "pod_type": self.pod_type,
            "replicas": self.replicas,
            "shards": self.shards,
            "pods": self.pods,
        }
        if self.metadata_config is not None:
            pod["metadata_config"] = self.metadata_config
        return {"pod": pod}


@dataclass(frozen=True)
class IndexModel:
    """An index as the control plane describes it.

    Attributes:
        name: The index name.
        host: The data-plane host as returned (``index-abc.svc.aws.pinecone.io`` or ``http://localhost:5081``).
        metric: cosine, euclidean or dotproduct.
        dimension: The dense dimension (None for sparse indexes).
        vector_type: dense or sparse.
        deletion_protection: enabled or disabled.
        tags: Index tags.
        spec: The raw spec (``{"serverless": {...}}`` or ``{"pod": {...}}``).
        ready: Whether the index accepts requests.
        state: The lifecycle state, e.g. ``Ready``.
        grpc_port: A direct gRPC port the local engine advertises (None elsewhere).
    """

    name: str
    host: str
    metric: Metric
    dimension: int | None
    vector_type: VectorType
    deletion_protection: DeletionProtection
    tags: dict[str, str]
    spec: dict[str, Any]
    ready: bool
    state: str
    grpc_port: int | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any], grpc_port: int | None = None) -> IndexModel:
        """Parse a 2025-xx IndexModel JSON body."""
        status = body.get("status") or {}
        return cls(
            name=body["name"],
            host=body["host"],
            metric=body.get("metric", "cosine"),
            dimension=body.get("dimension"),
            vector_type=body.get("vector_type", "dense"),
            deletion_protection=body.get("deletion_protection", "disabled"),
            tags=dict(body.get("tags") or {}),
            spec=dict(body.get("spec") or {}),
            ready=bool(status.get("ready", False)),
            state=str(status.get("state", "Unknown")),
            grpc_port=grpc_port,
        )


@dataclass(frozen=True)
class SparseValues:
    """The non-zero entries of a sparse vector."""

    indices: npt.NDArray[np.uint32]
    values: npt.NDArray[np.float32]

    @classmethod
    def of(cls, indices: Any, values: Any) -> SparseValues:
        """Build from any sequences (lists, arrays)."""
        return cls(np.asarray(indices, dtype=np.uint32), np.asarray(values, dtype=np.float32))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseValues):
            return NotImplemented
        return np.array_equal(self.indices, other.indices) and np.array_equal(self.values, other.values)

    __hash__ = None  # type: ignore[assignment]


def _arrays_equal(a: npt.NDArray[Any] | None, b: npt.NDArray[Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return np.array_equal(a, b)


@dataclass(frozen=True, eq=False)
class Vector:
    """A record: an id, dense values and/or sparse values, and flat metadata.

    Example:
        >>> Vector("doc-1", [0.1, 0.2], metadata={"source": "a.md"}).id
        'doc-1'
    """

    id: str
    values: npt.NDArray[np.float32] | None = None
    sparse_values: SparseValues | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        values: object = self.values  # lists are accepted at run time and stored as float32 arrays
        if values is not None and not isinstance(values, np.ndarray):
            object.__setattr__(self, "values", np.asarray(values, dtype=np.float32))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vector):
            return NotImplemented
        return (
            self.id == other.id
            and _arrays_equal(self.values, other.values)
            and self.sparse_values == other.sparse_values
            and self.metadata == other.metadata
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class ScoredVector(Vector):
    """A query match: a record (values and metadata only if requested) and its score.

    For cosine and dotproduct a higher score is better; for euclidean the score is the squared distance
    and lower is better. Matches come best first either way.
    """

    score: float = 0.0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScoredVector):
            return NotImplemented
        return super().__eq__(other) and self.score == other.score

    __hash__ = None


@dataclass(frozen=True)
class Usage:
    """Read units a call consumed (as reported by the service)."""

    read_units: int | None = None


@dataclass(frozen=True)
class QueryResponse:
    """The matches of a query, best first."""

    matches: list[ScoredVector]
    namespace: str = ""
    usage: Usage | None = None

    def __iter__(self) -> Iterator[ScoredVector]:
        return iter(self.matches)

    def __len__(self) -> int:
        return len(self.matches)

    @property
    def ids(self) -> list[str]:
        """The ids of the matches, best first."""
        return [match.id for match in self.matches]


@dataclass(frozen=True)
class FetchResponse:
    """Fetched records by id (ids that do not exist are absent)."""

    vectors: dict[str, Vector]
    namespace: str = ""
    usage: Usage | None = None
    next_token: str | None = None


@dataclass(frozen=True)
class ListResponse:
    """A page of record ids and the token for the next page (None on the last page)."""

    ids: list[str]
    next_token: str | None
    namespace: str = ""


@dataclass(frozen=True)
class UpdateResult:
    """What an update did: ``matched_records`` is set for updates by filter."""

    matched_records: int | None = None


@dataclass(frozen=True)
class NamespaceSummary:
    """Records in one namespace, as describe_index_stats counts them."""

    vector_count: int


@dataclass(frozen=True)
class IndexStats:
    """Record counts of an index."""

    namespaces: dict[str, NamespaceSummary]
    total_vector_count: int
    dimension: int | None = None
    index_fullness: float = 0.0
    metric: str | None = None
    vector_type: str | None = None


@dataclass(frozen=True)
class NamespaceDescription:
    """A namespace: its name, record count, and optional metadata schema."""

    name: str
    record_count: int
    schema: dict[str, Any] | None = None
    indexed_fields: list[str] | None = None


@dataclass(frozen=True)
class ListNamespacesResponse:
    """A page of namespaces."""

    namespaces: list[NamespaceDescription]
    next_token: str | None = None
    total_count: int | None = None


@dataclass(frozen=True)
class FailedBatch:
    """Records of an upsert that failed after every retry, and why."""

    ids: list[str]
    error: Exception


@dataclass(frozen=True)
class UpsertResult:
    """The outcome of an upsert: how many records were written and which (if any) were not.

    ``failed`` is empty when everything was written. Nothing is dropped silently: every record either
    counts in ``upserted_count`` or appears in exactly one failed batch.
    """

    upserted_count: int
    failed: list[FailedBatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every record was written."""
        return not self.failed

    @property
    def failed_ids(self) -> list[str]:
        """Ids of every record that was not written."""
        return [record_id for batch in self.failed for record_id in batch.ids]

    def describe_failures(self) -> str:
        """One line on what was not written: counts, the first error and the first ids ("" when ok)."""
        if not self.failed:
            return ""
        ids = self.failed_ids
        total = self.upserted_count + len(ids)
        shown = ", ".join(repr(record_id) for record_id in ids[:5]) + (", ..." if len(ids) > 5 else "")
        return (
            f"{len(ids):,} of {total:,} records were not written ({len(self.failed)} failed "
            f"batch{'es' if len(self.failed) > 1 else ''}; first error: {self.failed[0].error}); ids: {shown}"
        )

    def raise_for_failures(self) -> UpsertResult:
        """Raise :class:`~pinecone_rag.errors.UpsertError` if any record was not written; else return self.

        Example::

            index.upsert(records).raise_for_failures()

        Raises:
            UpsertError: Some batches failed after every retry; the first batch's error is the cause.
        """
        if not self.failed:
            return self
        first = self.failed[0].error
        raise UpsertError(self.describe_failures(), self.failed_ids, self.upserted_count) from first


@dataclass(frozen=True)
class Embedding:
    """One embedding from the Inference API: dense values or sparse entries."""

    values: npt.NDArray[np.float32] | None = None
    sparse_indices: list[int] | None = None
    sparse_values: list[float] | None = None
    sparse_tokens: list[str] | None = None


@dataclass(frozen=True)
class EmbeddingsList:
    """The embeddings of an embed call, in input order."""

    model: str
    vector_type: str
    data: list[Embedding]
    total_tokens: int | None = None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, position: int) -> Embedding:
        return self.data[position]


@dataclass(frozen=True)
class RankedDocument:
    """A reranked document: its position in the input, its score, and the document if returned."""

    index: int
    score: float
    document: dict[str, Any] | None = None


@dataclass(frozen=True)
class RerankResult:
    """Documents ordered by relevance to the query, best first."""

    model: str
    data: list[RankedDocument]
    rerank_units: int | None = None


@dataclass(frozen=True)
class IndexEmbed:
    """The integrated-embedding config of an index made with ``create_index_for_model``.

    Attributes:
        model: The embedding model, e.g. ``all-minilm-l6-v2``.
        field_map: Which record field is embedded, e.g. ``{"text": "chunk_text"}``.
        metric: The index metric.
        dimension: The dense dimension (None for sparse models).
        vector_type: dense or sparse.
        read_parameters: Embed parameters used for search queries.
        write_parameters: Embed parameters used for upserted records.
    """

    model: str
    field_map: dict[str, str]
    metric: str | None = None
    dimension: int | None = None
    vector_type: str | None = None
    read_parameters: dict[str, Any] = field(default_factory=dict)
    write_parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> IndexEmbed:
        """Parse the ``embed`` block of an IndexModel."""
        return cls(
            model=str(body["model"]),
            field_map=dict(body.get("field_map") or {}),
            metric=body.get("metric"),
            dimension=body.get("dimension"),
            vector_type=body.get("vector_type"),
            read_parameters=dict(body.get("read_parameters") or {}),
            write_parameters=dict(body.get("write_parameters") or {}),
        )


@dataclass(frozen=True)
class IntegratedIndexModel(IndexModel):
    """An :class:`IndexModel` that also carries its integrated-embedding config (``embed``)."""

    embed: IndexEmbed | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any], grpc_port: int | None = None) -> IntegratedIndexModel:
        """Parse a 2025-xx IndexModel JSON body, ``embed`` block included."""
        base = IndexModel.from_json(body, grpc_port)
        embed = body.get("embed")
        return cls(
            **{name: getattr(base, name) for name in base.__dataclass_fields__},
            embed=IndexEmbed.from_json(embed) if isinstance(embed, dict) else None,
        )


@dataclass(frozen=True)
class SearchHit:
    """One hit of a records search: the record id, its score and the fields asked for."""

    id: str
    score: float
    fields: dict[str, Any]


@dataclass(frozen=True)
class SearchRecordsResponse:
    """The hits of a records search, best first, and what it cost.

    Attributes:
        hits: The matching records.
        read_units: Read units the search used.
        embed_total_tokens: Tokens embedded for a text query (None for vector queries).
        rerank_units: Rerank units used (None without rerank).
    """

    hits: list[SearchHit]
    read_units: int | None = None
    embed_total_tokens: int | None = None
    rerank_units: int | None = None

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self) -> Iterator[SearchHit]:
        return iter(self.hits)

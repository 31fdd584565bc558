"""Transport-neutral value types of the local engine.

REST and gRPC requests are decoded into these, the engine works on them, and the transports encode
results from them. Vectors stay numpy arrays end to end: no per-float Python objects on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Metric = Literal["cosine", "euclidean", "dotproduct"]
VectorType = Literal["dense", "sparse"]

MetadataValue = str | float | bool | list[str]
"""What Pinecone stores per metadata key: string, number (as float), bool, or a list of strings."""
Metadata = dict[str, MetadataValue]

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.uint32]

DEFAULT_NAMESPACE = ""
DEFAULT_NAMESPACE_ALIAS = "__default__"


def canonical_namespace(name: str) -> str:
    """Map the ``__default__`` alias onto the default namespace ``""``."""
    return DEFAULT_NAMESPACE if name == DEFAULT_NAMESPACE_ALIAS else name


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """What the data plane needs to know about an index."""

    dimension: int | None
    metric: Metric
    vector_type: VectorType

    @property
    def is_sparse(self) -> bool:
        """True for sparse-only indexes (no dense values, dotproduct metric)."""
        return self.vector_type == "sparse"


@dataclass(frozen=True, slots=True)
class SparseVector:
    """The non-zero entries of a sparse vector: uint32 indices and float32 values of equal length."""

    indices: IndexArray
    values: FloatArray


@dataclass(frozen=True, slots=True)
class Record:
    """One stored record as fetch and query return it."""

    id: str
    values: FloatArray | None
    sparse: SparseVector | None
    metadata: Metadata | None


@dataclass(frozen=True, slots=True)
class UpsertBatch:
    """A validated upsert: ``dense`` is an ``(n, dimension)`` float32 block, or None for sparse indexes.

    The engine keeps a large ``dense`` block as it is (see ``freshness._RowBlocks``): once handed over,
    it must not be changed. ``squared_norms``, when validation computed them, are each row's squared
    length in float32, so applying the batch does not compute them again; they are not logged.
    """

    ids: list[str]
    dense: FloatArray | None
    sparse: list[SparseVector | None]
    metadata: list[Metadata | None]
    squared_norms: FloatArray | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    """A query match."""

    record: Record
    score: float

"""Independent references the conformance tests check the engine against.

Nothing here imports the engine: scores are brute force in float64 numpy, and the metadata filter
evaluator is a separate, deliberately plain implementation of Pinecone's documented (MongoDB-like) rules.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

# ------------------------------------------------------------------------------------------- data


@dataclass
class Dataset:
    """Records kept in the test, mirroring what was upserted."""

    ids: list[str]
    values: np.ndarray | None = None  # (n, dim) float32, or None for sparse-only data
    metadata: list[dict[str, Any] | None] = field(default_factory=list)
    sparse: list[tuple[list[int], list[float]] | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, record_id: str) -> int:
        return self.ids.index(record_id)

    def vectors(self) -> list[dict[str, Any]]:
        """The records as SDK vector dicts (accepted by REST and gRPC upsert alike)."""
        out = []
        for i, record_id in enumerate(self.ids):
            item: dict[str, Any] = {"id": record_id}
            if self.values is not None:
                item["values"] = self.values[i].tolist()
            if self.metadata and self.metadata[i]:
                item["metadata"] = dict(self.metadata[i] or {})
            if self.sparse and self.sparse[i] is not None:
                indices, vals = self.sparse[i]  # type: ignore[misc]
                item["sparse_values"] = {"indices": list(indices), "values": list(vals)}
            out.append(item)
        return out


GENRES = ("drama", "comedy", "action", "documentary", "horror")
TAGS = ("a", "b", "c", "d", "e", "f")


def random_metadata(rng: np.random.Generator, i: int) -> dict[str, Any]:
    """Metadata with every supported value type; each field is sometimes missing."""
    md: dict[str, Any] = {"idx": i}
    if rng.random() < 0.85:
        md["genre"] = GENRES[int(rng.integers(len(GENRES)))]
    if rng.random() < 0.85:
        md["year"] = int(rng.integers(1990, 2025))
    if rng.random() < 0.8:
        md["rating"] = round(float(rng.uniform(0, 10)), 2)
    if rng.random() < 0.7:
        count = int(rng.integers(1, 4))
        md["tags"] = sorted(str(t) for t in rng.choice(TAGS, size=count, replace=False))
    if rng.random() < 0.75:
        md["flag"] = bool(rng.random() < 0.5)
    return md


def dense_dataset(
    seed: int, n: int, dim: int, *, prefix: str = "v", metadata: bool = True, sparse: bool = False
) -> Dataset:
    """Seeded random dense records (optionally with sparse values for hybrid indexes)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, dim)).astype(np.float32)
    ids = [f"{prefix}-{i:04d}" for i in range(n)]
    md = [random_metadata(rng, i) if metadata else None for i in range(n)]
    sp = [random_sparse(rng) for _ in range(n)] if sparse else []
    return Dataset(ids, values, md, sp)


def random_sparse(
    rng: np.random.Generator, *, vocabulary: int = 200, low: int = 3, high: int = 15
) -> tuple[list[int], list[float]]:
    """A sparse vector with unique indices and positive values (so only zero overlap scores 0)."""
    nnz = int(rng.integers(low, high))
    indices = sorted(int(i) for i in rng.choice(vocabulary, size=nnz, replace=False))
    values = [round(float(v), 4) for v in rng.uniform(0.05, 1.0, size=nnz)]
    return indices, values


def sparse_dataset(seed: int, n: int, *, prefix: str = "s") -> Dataset:
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}-{i:04d}" for i in range(n)]
    return Dataset(ids, None, [random_metadata(rng, i) for i in range(n)], [random_sparse(rng) for _ in ids])


# ---------------------------------------------------------------------------------------- scoring


def higher_is_better(metric: str) -> bool:
    return metric != "euclidean"


def dense_scores(matrix: np.ndarray, query: Sequence[float] | np.ndarray, metric: str) -> np.ndarray:
    """Brute-force scores in float64: cosine similarity, dot product, or squared euclidean distance."""
    x = np.asarray(matrix, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if metric == "cosine":
        return (x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    if metric == "dotproduct":
        return x @ q
    if metric == "euclidean":
        return ((x - q) ** 2).sum(axis=1)
    raise ValueError(metric)


def sparse_dot(
    record: tuple[Sequence[int], Sequence[float]] | None, query: Mapping[str, Any]
) -> float | None:
    """The sparse dot product, or None when the two share no index."""
    if record is None:
        return None
    weights = dict(zip(query["indices"], query["values"], strict=True))
    shared = [(i, v) for i, v in zip(*record, strict=True) if i in weights]
    if not shared:
        return None
    return float(sum(np.float64(v) * np.float64(weights[i]) for i, v in shared))


def assert_topk(
    matches: Sequence[Any],
    expected: Mapping[str, float],
    top_k: int,
    metric: str,
    *,
    tol: float = 1e-4,
) -> None:
    """Check a query's matches against reference scores of every candidate record.

    Scores must agree within ``tol`` (relative to magnitude), come back best first, and the returned set
    must be the reference top-k, except that records tied (within ``tol``) at the k-th score may swap.
    """
    ids = [m.id for m in matches]
    scores = [float(m.score) for m in matches]
    assert len(ids) == min(top_k, len(expected)), (len(ids), top_k, len(expected))
    assert len(set(ids)) == len(ids), f"duplicate ids in {ids}"
    sign = 1.0 if higher_is_better(metric) else -1.0

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= tol * max(1.0, abs(a), abs(b))

    for record_id, score in zip(ids, scores, strict=True):
        assert record_id in expected, f"{record_id} is not a candidate"
        assert close(score, expected[record_id]), (record_id, score, expected[record_id])
    for first, second in itertools.pairwise(scores):
        assert sign * first >= sign * second - tol * max(1.0, abs(first)), f"not best-first: {scores}"
    if not ids:
        return
    ranked = sorted(expected.values(), key=lambda s: -sign * s)
    kth = ranked[len(ids) - 1]
    margin = tol * max(1.0, abs(kth))
    for record_id in ids:
        assert sign * expected[record_id] >= sign * kth - margin, (record_id, expected[record_id], kth)
    must = {rid for rid, s in expected.items() if sign * s > sign * kth + margin}
    missing = must - set(ids)
    assert not missing, f"records better than the k-th score are missing: {sorted(missing)}"


def dense_expected(
    data: Dataset, query: Sequence[float] | np.ndarray, metric: str, flt: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """Reference scores of every record matching ``flt``."""
    assert data.values is not None
    scores = dense_scores(data.values, query, metric)
    return {
        rid: float(scores[i])
        for i, rid in enumerate(data.ids)
        if flt is None or evaluate(data.metadata[i] if data.metadata else None, flt)
    }


# ------------------------------------------------------------------------------------------ filters

_RANGES: dict[str, Callable[[float, float], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: object, b: object) -> bool:
    """Typed equality: booleans, numbers and strings never equal one another."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)  # type: ignore[arg-type]
    return isinstance(a, str) and isinstance(b, str) and a == b


def _elements(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def _operator_matches(value: object, op: str, arg: Any) -> bool:
    elements = _elements(value)
    if op == "$eq":
        return any(_same(e, arg) for e in elements)
    if op == "$ne":
        return not any(_same(e, arg) for e in elements)
    if op == "$in":
        return any(_same(e, a) for e in elements for a in arg)
    if op == "$nin":
        return not any(_same(e, a) for e in elements for a in arg)
    if op == "$exists":
        return (value is not None) is bool(arg)
    if op in _RANGES:
        return any(_is_number(e) and _RANGES[op](float(e), float(arg)) for e in elements)  # type: ignore[arg-type]
    raise ValueError(f"reference evaluator: unknown operator {op}")


def evaluate(metadata: Mapping[str, Any] | None, flt: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` satisfies ``flt``: MongoDB rules, lists of strings match on any element."""
    md = metadata or {}
    for key, condition in flt.items():
        if key == "$and":
            ok = all(evaluate(md, sub) for sub in condition)
        elif key == "$or":
            ok = any(evaluate(md, sub) for sub in condition)
        elif isinstance(condition, dict):
            ok = all(_operator_matches(md.get(key), op, arg) for op, arg in condition.items())
        else:
            ok = _operator_matches(md.get(key), "$eq", condition)
        if not ok:
            return False
    return True


def matching_ids(data: Dataset, flt: Mapping[str, Any]) -> set[str]:
    return {rid for rid, md in zip(data.ids, data.metadata, strict=True) if evaluate(md, flt)}


def normalized_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata as the engine returns it: numbers as floats, lists as lists."""
    out: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        out[key] = float(value) if _is_number(value) else value
    return out


def flatten(pages: Iterable[Iterable[str]]) -> list[str]:
    return [record_id for page in pages for record_id in page]

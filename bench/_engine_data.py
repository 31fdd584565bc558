"""The data sets of ``bench/engine.py``: seeded Gaussian mixtures, the real MiniLM set, exact truth."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REAL_DATA = Path("/work/shared/data/stdlib-docstrings-minilm")
SEED = 20250401
TOP_K = 10
RECORDS_PER_COMPONENT = 250
LATENT = 24
SPREAD = 0.7
NOISE_NORM = 1.1
TRUTH_BLOCK = 32


@dataclass
class FilterCase:
    """A selective metadata filter, the rows it matches and the exact filtered top-k of every query."""

    label: str
    raw: dict[str, Any]
    rows: np.ndarray
    truth: list[set[int]] = field(default_factory=list)


@dataclass
class Dataset:
    name: str
    description: str
    data: np.ndarray
    queries: np.ndarray
    metadata: list[dict[str, Any]]
    fresh: np.ndarray
    filters: list[FilterCase]
    truth: list[set[int]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.data.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.data.shape[1])


def normalise(rows: np.ndarray) -> np.ndarray:
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


class Mixture:
    """A Gaussian mixture in a random low-dimensional subspace, plus isotropic noise, on the unit sphere.

    Embeddings have a low intrinsic dimension and no clean cluster borders. A mixture of overlapping
    components in a ``LATENT``-dimensional subspace reproduces that: k-means borders cut through dense
    neighbourhoods, so an IVF index loses recall at small probe counts (calibrated with FAISS at 100k x 128,
    49 lists: recall@10 of about 0.47 with 1 probe, 0.93 with 10, 0.99 with 20) instead of finding every
    neighbour in the first cluster, as it did on well-separated blobs.
    """

    def __init__(self, rng: np.random.Generator, components: int, dimension: int) -> None:
        self.basis = np.linalg.qr(rng.standard_normal((dimension, LATENT)))[0].T.astype(np.float32)
        self.centres = rng.standard_normal((components, LATENT), dtype=np.float32)
        self.spread = rng.uniform(0.5 * SPREAD, 1.5 * SPREAD, components).astype(np.float32)
        # The same noise norm at every dimension, so 128-d and 768-d sets are alike but for the width.
        self.noise = NOISE_NORM / np.sqrt(dimension)
        self.dimension = dimension

    def sample(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` unit rows and the component each came from."""
        labels = rng.integers(0, len(self.centres), count)
        rows = np.empty((count, self.dimension), dtype=np.float32)
        for start in range(0, count, 65_536):
            part = labels[start : start + 65_536]
            latent = rng.standard_normal((len(part), LATENT), dtype=np.float32)
            latent = self.centres[part] + self.spread[part, None] * latent
            block = latent @ self.basis
            block += self.noise * rng.standard_normal(block.shape, dtype=np.float32)
            rows[start : start + len(part)] = normalise(block)
        return rows, labels


def synthetic(name: str, count: int, dimension: int, queries: int, fresh: int) -> Dataset:
    rng = np.random.default_rng([SEED, dimension])
    components = max(4, count // RECORDS_PER_COMPONENT)
    mixture = Mixture(rng, components, dimension)
    data, labels = mixture.sample(rng, count)
    query_rows, _ = mixture.sample(rng, queries)
    fresh_rows, _ = mixture.sample(rng, fresh)
    topics = labels % 100
    shards = np.arange(count) % 100
    metadata = [
        {"topic": f"t{topic:02d}", "shard": shard}
        for topic, shard in zip(topics.tolist(), shards.tolist(), strict=True)
    ]
    filters = [
        FilterCase("topic (follows the component)", {"topic": {"$eq": "t07"}}, np.flatnonzero(topics == 7)),
        FilterCase("shard (row mod 100)", {"shard": {"$eq": 42}}, np.flatnonzero(shards == 42)),
    ]
    description = (
        f"{count:,} x {dimension}, mixture of {components:,} Gaussians in a random {LATENT}-d subspace "
        "plus noise"
    )
    return Dataset(name, description, data, query_rows, metadata, fresh_rows, filters)


def real(queries: int, fresh: int) -> Dataset:
    """The stdlib docstring embeddings; freshness probes are held-out queries not used as queries."""
    data = np.ascontiguousarray(np.load(REAL_DATA / "base.npy"), dtype=np.float32)
    held_out = np.ascontiguousarray(np.load(REAL_DATA / "queries.npy"), dtype=np.float32)
    with (REAL_DATA / "base_meta.jsonl").open(encoding="utf-8") as lines:
        metadata = [json.loads(line) for line in lines]
    if len(metadata) != len(data):
        raise RuntimeError(f"{REAL_DATA}: {len(metadata)} metadata lines for {len(data)} rows")
    queries = min(queries, len(held_out) - fresh)
    modules = np.asarray([fields["module"] for fields in metadata])
    names, counts = np.unique(modules, return_counts=True)
    eligible = counts >= TOP_K
    chosen = names[eligible][np.argmin(np.abs(counts[eligible] - 0.01 * len(data)))]
    filters = [
        FilterCase(f"module = {chosen}", {"module": {"$eq": str(chosen)}}, np.flatnonzero(modules == chosen))
    ]
    dataset = Dataset(
        "real",
        f"{len(data):,} x {data.shape[1]}, all-MiniLM-L6-v2 embeddings of stdlib docstrings",
        data,
        held_out[:queries],
        metadata,
        held_out[len(held_out) - fresh :],
        filters,
    )
    shipped = np.load(REAL_DATA / "groundtruth_top100.npy")[:queries, :TOP_K]
    dataset.truth = exact_top_k(data, dataset.queries)
    agreement = np.mean(
        [len(t & set(row.tolist())) / TOP_K for t, row in zip(dataset.truth, shipped, strict=True)]
    )
    if agreement < 0.99:
        raise RuntimeError(f"our exact top-{TOP_K} agrees with the shipped ground truth on {agreement:.3f}")
    return dataset


def exact_top_k(data: np.ndarray, queries: np.ndarray, rows: np.ndarray | None = None) -> list[set[int]]:
    """Exact top-k row numbers of every query, over ``rows`` only when given."""
    source = data if rows is None else data[rows]
    k = min(TOP_K, len(source))
    truth: list[set[int]] = []
    for start in range(0, len(queries), TRUTH_BLOCK):
        scores = queries[start : start + TRUTH_BLOCK] @ source.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        if rows is not None:
            top = rows[top]
        truth.extend(set(row) for row in top.tolist())
    return truth


def prepare_truth(dataset: Dataset) -> None:
    if not dataset.truth:
        dataset.truth = exact_top_k(dataset.data, dataset.queries)
    for case in dataset.filters:
        if len(case.rows) < TOP_K:
            raise RuntimeError(f"{dataset.name}: filter {case.raw} matches only {len(case.rows)} rows")
        case.truth = exact_top_k(dataset.data, dataset.queries, case.rows)

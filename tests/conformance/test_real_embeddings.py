"""Exact top-k on real sentence embeddings (all-MiniLM-L6-v2, 3426 x 384) against the given ground truth.

The data set lives in ``../shared/data/stdlib-docstrings-minilm`` beside the checkout (CI has it); without
it these tests are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from .reference import Dataset, assert_topk, dense_expected
from .support import GRPC, Harness

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.conformance

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "stdlib-docstrings-minilm"
FILES = ("base.npy", "queries.npy", "groundtruth_top100.npy", "base_meta.jsonl")
TIE = 1e-5  # cosine scores closer than this may come back in either order
QUERIES = 40


class RealData:
    def __init__(self, directory: Path) -> None:
        self.base = np.load(directory / "base.npy")
        self.queries = np.load(directory / "queries.npy")
        self.truth = np.load(directory / "groundtruth_top100.npy")
        lines = (directory / "base_meta.jsonl").read_text().splitlines()
        self.meta: list[dict[str, Any]] = [json.loads(line) for line in lines]
        self.ids = [f"doc-{row}" for row in range(len(self.base))]
        self.dataset = Dataset(self.ids, self.base, self.meta)
        # Reference cosine scores of the first queries against every base row, in float64 (rows x queries).
        base = self.base.astype(np.float64)
        queries = self.queries[:QUERIES].astype(np.float64)
        self.scores = (base @ queries.T) / np.outer(
            np.linalg.norm(base, axis=1), np.linalg.norm(queries, axis=1)
        )

    def expected(self, q: int, module: str | None = None) -> dict[str, float]:
        column = self.scores[:, q]
        return {
            record_id: float(column[row])
            for row, record_id in enumerate(self.ids)
            if module is None or self.meta[row]["module"] == module
        }


@pytest.fixture(scope="module")
def real(harness: Harness) -> Iterator[tuple[str, RealData]]:
    missing = [name for name in FILES if not (DATA_DIR / name).exists()]
    if missing:
        pytest.skip(f"real-embeddings data set not found at {DATA_DIR} (missing {', '.join(missing)})")
    data = RealData(DATA_DIR)
    name = harness.create_index(dimension=data.base.shape[1], metric="cosine")
    writer = harness.data(name, GRPC)
    writer.upsert(vectors=data.dataset.vectors(), batch_size=500, show_progress=False)
    assert writer.describe_index_stats().total_vector_count == len(data.ids)
    yield name, data
    harness.delete_index(name)


def assert_same_ranking(returned: list[str], truth_rows: np.ndarray, scores: np.ndarray) -> None:
    """The returned ids are the ground truth, up to the order (and membership at the cut) of ties."""
    truth = [f"doc-{row}" for row in truth_rows]
    assert len(returned) == len(truth)
    score_of = {f"doc-{row}": float(scores[row]) for row in range(len(scores))}
    for position, (got, want) in enumerate(zip(returned, truth, strict=True)):
        if got != want:
            assert abs(score_of[got] - score_of[want]) <= TIE, (position, got, want)


@pytest.mark.parametrize("top_k", [10, 100])
def test_exact_top_k_matches_ground_truth(
    real: tuple[str, RealData], harness: Harness, transport: str, top_k: int
) -> None:
    name, data = real
    client = harness.data(name, transport)
    for q in range(QUERIES if top_k == 10 else 8):
        response = client.query(vector=data.queries[q].tolist(), top_k=top_k)
        assert_same_ranking([m.id for m in response.matches], data.truth[q, :top_k], data.scores[:, q])
        assert_topk(response.matches, data.expected(q), top_k, "cosine", tol=1e-5)


@pytest.mark.parametrize("module", ["asyncio", "email", "random"])
def test_filtered_query_on_real_embeddings(
    real: tuple[str, RealData], harness: Harness, transport: str, module: str
) -> None:
    name, data = real
    client = harness.data(name, transport)
    flt = {"module": module}
    for q in range(5):
        expected = data.expected(q, module)
        assert expected.keys() == dense_expected(data.dataset, data.queries[q], "cosine", flt).keys()
        response = client.query(vector=data.queries[q].tolist(), top_k=20, filter=flt, include_metadata=True)
        assert_topk(response.matches, expected, 20, "cosine", tol=1e-5)
        assert all(m.metadata["module"] == module for m in response.matches)


def test_query_by_id_on_real_embeddings(real: tuple[str, RealData], harness: Harness, transport: str) -> None:
    name, data = real
    client = harness.data(name, transport)
    for row in (0, 1234, len(data.ids) - 1):
        response = client.query(id=data.ids[row], top_k=10)
        assert response.matches[0].id == data.ids[row]
        assert response.matches[0].score == pytest.approx(1.0, abs=1e-5)
        assert_topk(
            response.matches, dense_expected(data.dataset, data.base[row], "cosine"), 10, "cosine", tol=1e-5
        )

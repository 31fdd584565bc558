"""Sparse indexes (dot product over sparse vectors) and hybrid queries on dotproduct dense indexes.

References: the sparse dot product over shared indices (records sharing no index with the query are not
matches), and for hybrid, the dense dot product plus the sparse dot product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from pinecone import SparseValues, Vector

from .reference import (
    Dataset,
    assert_topk,
    dense_dataset,
    dense_scores,
    evaluate,
    random_sparse,
    sparse_dataset,
    sparse_dot,
)
from .support import REST, Harness, invalid, metadata_of, sparse_pair, values_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.conformance

N = 250
DIM = 16


def sparse_expected(
    data: Dataset, query: dict[str, Any], flt: dict[str, Any] | None = None
) -> dict[str, float]:
    out = {}
    for i, record_id in enumerate(data.ids):
        score = sparse_dot(data.sparse[i], query)
        if score is not None and (flt is None or evaluate(data.metadata[i], flt)):
            out[record_id] = score
    return out


def hybrid_expected(data: Dataset, dense: np.ndarray, sparse: dict[str, Any]) -> dict[str, float]:
    assert data.values is not None
    dots = dense_scores(data.values, dense, "dotproduct")
    return {
        record_id: float(dots[i]) + (sparse_dot(data.sparse[i], sparse) or 0.0)
        for i, record_id in enumerate(data.ids)
    }


def sparse_query(seed: int) -> dict[str, Any]:
    indices, values = random_sparse(np.random.default_rng(seed), low=8, high=20)
    return {"indices": indices, "values": values}


@pytest.fixture(scope="module")
def sparse_index(harness: Harness) -> Iterator[tuple[str, Dataset]]:
    name = harness.create_index(vector_type="sparse", metric="dotproduct")
    data = sparse_dataset(seed=77, n=N)
    harness.data(name, REST).upsert(vectors=data.vectors())
    yield name, data
    harness.delete_index(name)


@pytest.fixture(scope="module")
def hybrid_index(harness: Harness) -> Iterator[tuple[str, Dataset]]:
    name = harness.create_index(dimension=DIM, metric="dotproduct")
    data = dense_dataset(seed=78, n=N, dim=DIM, prefix="h", sparse=True)
    # A few records without sparse values: hybrid indexes accept dense-only records too.
    for i in range(0, N, 25):
        data.sparse[i] = None
    harness.data(name, REST).upsert(vectors=data.vectors())
    yield name, data
    harness.delete_index(name)


@pytest.mark.parametrize("top_k", [1, 10, N])
def test_sparse_query_matches_reference(
    harness: Harness, sparse_index: tuple[str, Dataset], transport: str, top_k: int
) -> None:
    name, data = sparse_index
    client = harness.data(name, transport)
    for seed in range(4):
        query = sparse_query(seed)
        expected = sparse_expected(data, query)
        assert 0 < len(expected) < N  # some records share no index with the query
        response = client.query(sparse_vector=query, top_k=top_k)
        assert_topk(response.matches, expected, top_k, "dotproduct")
        # Zero-overlap records are not matches, even when top_k asks for more.
        assert len(response.matches) == min(top_k, len(expected))


def test_sparse_query_with_filter(
    harness: Harness, sparse_index: tuple[str, Dataset], transport: str
) -> None:
    name, data = sparse_index
    flt = {"genre": {"$in": ["drama", "comedy"]}, "year": {"$gte": 2000}}
    query = sparse_query(9)
    expected = sparse_expected(data, query, flt)
    response = harness.data(name, transport).query(sparse_vector=query, top_k=N, filter=flt)
    assert {m.id for m in response.matches} == set(expected)
    assert_topk(response.matches, expected, N, "dotproduct")


def test_sparse_query_by_id(harness: Harness, sparse_index: tuple[str, Dataset], transport: str) -> None:
    name, data = sparse_index
    record_id = data.ids[42]
    stored = data.sparse[42]
    assert stored is not None
    query = {"indices": stored[0], "values": stored[1]}
    response = harness.data(name, transport).query(id=record_id, top_k=15)
    assert_topk(response.matches, sparse_expected(data, query), 15, "dotproduct")


def test_sparse_include_values_and_fetch(
    harness: Harness, sparse_index: tuple[str, Dataset], transport: str
) -> None:
    name, data = sparse_index
    client = harness.data(name, transport)
    response = client.query(
        sparse_vector=sparse_query(3), top_k=5, include_values=True, include_metadata=True
    )
    for match in response.matches:
        row = data.row(match.id)
        got = sparse_pair(match)
        assert got is not None
        assert got[0] == data.sparse[row][0]  # type: ignore[index]
        np.testing.assert_allclose(got[1], data.sparse[row][1], rtol=1e-6)  # type: ignore[index]
        assert values_of(match) == []
        assert metadata_of(match)["idx"] == row
    fetched = client.fetch(ids=data.ids[:5]).vectors
    for i, record_id in enumerate(data.ids[:5]):
        got = sparse_pair(fetched[record_id])
        assert got is not None
        assert got[0] == data.sparse[i][0]  # type: ignore[index]
        np.testing.assert_allclose(got[1], data.sparse[i][1], rtol=1e-6)  # type: ignore[index]


def test_sparse_index_stats_have_no_dimension(
    harness: Harness, sparse_index: tuple[str, Dataset], transport: str
) -> None:
    name, _ = sparse_index
    stats = harness.data(name, transport).describe_index_stats()
    assert stats.total_vector_count == N
    assert not getattr(stats, "dimension", None)


def test_sparse_upsert_update_delete(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(vector_type="sparse", metric="dotproduct")
    client.upsert(
        vectors=[
            {"id": "a", "sparse_values": {"indices": [1, 7], "values": [0.5, 1.0]}, "metadata": {"k": "x"}},
            Vector(id="b", sparse_values=SparseValues(indices=[7, 9], values=[2.0, 1.0])),
        ]
    )
    query = {"indices": [7], "values": [1.0]}
    assert [(m.id, m.score) for m in client.query(sparse_vector=query, top_k=5).matches] == [
        ("b", pytest.approx(2.0)),
        ("a", pytest.approx(1.0)),
    ]
    client.update(id="a", sparse_values={"indices": [7, 8], "values": [3.0, 1.0]})
    assert [m.id for m in client.query(sparse_vector=query, top_k=5).matches] == ["a", "b"]
    assert metadata_of(client.fetch(ids=["a"]).vectors["a"]) == {"k": "x"}  # untouched by the update
    client.delete(ids=["b"])
    assert [m.id for m in client.query(sparse_vector=query, top_k=5).matches] == ["a"]
    assert list(client.query(sparse_vector={"indices": [100], "values": [1.0]}, top_k=5).matches) == []


def test_sparse_index_rejects_dense_values(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(vector_type="sparse", metric="dotproduct")
    with invalid("sparse"):
        client.upsert(vectors=[("d", [1.0, 2.0])])
    with invalid("sparse"):
        client.upsert(vectors=[{"id": "e", "sparse_values": {"indices": [], "values": []}}])
    assert client.describe_index_stats().total_vector_count == 0


def test_sparse_index_top_k_limit_is_1000(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(vector_type="sparse", metric="dotproduct")
    client.upsert(vectors=[{"id": "a", "sparse_values": {"indices": [1], "values": [1.0]}}])
    with invalid("topK", "1000"):
        client.query(sparse_vector={"indices": [1], "values": [1.0]}, top_k=1001)
    assert len(client.query(sparse_vector={"indices": [1], "values": [1.0]}, top_k=1000).matches) == 1


@pytest.mark.parametrize("top_k", [1, 10, N])
def test_hybrid_query_is_dense_plus_sparse(
    harness: Harness, hybrid_index: tuple[str, Dataset], transport: str, top_k: int
) -> None:
    name, data = hybrid_index
    client = harness.data(name, transport)
    rng = np.random.default_rng(top_k)
    for seed in range(3):
        dense = rng.normal(size=DIM).astype(np.float32)
        sparse = sparse_query(100 + seed)
        response = client.query(vector=dense.tolist(), sparse_vector=sparse, top_k=top_k)
        # Hybrid scoring keeps every record: no overlap just means a sparse term of 0.
        assert_topk(response.matches, hybrid_expected(data, dense, sparse), top_k, "dotproduct")


def test_hybrid_dense_only_query_ignores_sparse_values(
    harness: Harness, hybrid_index: tuple[str, Dataset], transport: str
) -> None:
    name, data = hybrid_index
    assert data.values is not None
    dense = np.random.default_rng(5).normal(size=DIM).astype(np.float32)
    dots = dense_scores(data.values, dense, "dotproduct")
    expected = {record_id: float(dots[i]) for i, record_id in enumerate(data.ids)}
    response = harness.data(name, transport).query(vector=dense.tolist(), top_k=20)
    assert_topk(response.matches, expected, 20, "dotproduct")


def test_hybrid_fetch_returns_both_parts(
    harness: Harness, hybrid_index: tuple[str, Dataset], transport: str
) -> None:
    name, data = hybrid_index
    assert data.values is not None
    fetched = harness.data(name, transport).fetch(ids=[data.ids[0], data.ids[1]]).vectors
    assert sparse_pair(fetched[data.ids[0]]) is None  # upserted without sparse values
    got = sparse_pair(fetched[data.ids[1]])
    assert got is not None
    assert got[0] == data.sparse[1][0]  # type: ignore[index]
    np.testing.assert_allclose(values_of(fetched[data.ids[1]]), data.values[1], rtol=1e-6)


def test_sparse_values_need_dotproduct(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    with invalid("dotproduct"):
        client.upsert(
            vectors=[{"id": "x", "values": [1.0, 0.0], "sparse_values": {"indices": [1], "values": [1.0]}}]
        )
    client.upsert(vectors=[("y", [1.0, 0.0])])
    with invalid("dotproduct"):
        client.query(vector=[1.0, 0.0], sparse_vector={"indices": [1], "values": [1.0]}, top_k=1)
    assert client.describe_index_stats().total_vector_count == 1

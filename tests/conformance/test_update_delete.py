"""Update by id (values, sparse values, metadata merge) and delete (ids, filter, everything).

Updates by filter and deletes by filter are exercised with every operator in ``test_filters.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from .reference import assert_topk, dense_dataset, dense_expected, normalized_metadata
from .support import invalid, metadata_of, namespace_counts, sparse_pair, values_of

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.conformance


@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_update_values_changes_search_results(
    new_index: Callable[..., Any], transport: str, metric: str
) -> None:
    client = new_index(dimension=8, metric=metric)
    data = dense_dataset(seed=40, n=60, dim=8)
    client.upsert(vectors=data.vectors())
    assert data.values is not None
    target = data.ids[10]
    new_values = np.random.default_rng(41).normal(size=8).astype(np.float32)
    client.update(id=target, values=new_values.tolist())
    data.values[10] = new_values
    fetched = client.fetch(ids=[target]).vectors[target]
    np.testing.assert_allclose(values_of(fetched), new_values, rtol=1e-6)
    assert metadata_of(fetched) == normalized_metadata(data.metadata[10])  # values-only update
    response = client.query(vector=new_values.tolist(), top_k=10)
    assert_topk(response.matches, dense_expected(data, new_values, metric), 10, metric)
    assert client.describe_index_stats().total_vector_count == 60


def test_update_set_metadata_merges(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    client.upsert(vectors=[("r", [1.0, 0.5], {"keep": "yes", "change": 1, "tags": ["a"]})])
    client.update(id="r", set_metadata={"change": 2, "tags": ["b", "c"], "new": True})
    record = client.fetch(ids=["r"]).vectors["r"]
    assert metadata_of(record) == {"keep": "yes", "change": 2.0, "tags": ["b", "c"], "new": True}
    assert values_of(record) == [1.0, 0.5]
    # The merged metadata is what filters see.
    assert [
        m.id for m in client.query(vector=[1.0, 0.5], top_k=1, filter={"tags": "c", "new": True}).matches
    ] == ["r"]
    assert list(client.query(vector=[1.0, 0.5], top_k=1, filter={"tags": "a"}).matches) == []


def test_update_values_and_metadata_together(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=3, metric="euclidean")
    client.upsert(vectors=[("r", [0.0, 0.0, 0.0], {"v": 1})], namespace="ns")
    client.update(id="r", values=[1.0, 2.0, 3.0], set_metadata={"v": 2}, namespace="ns")
    record = client.fetch(ids=["r"], namespace="ns").vectors["r"]
    assert values_of(record) == [1.0, 2.0, 3.0]
    assert metadata_of(record) == {"v": 2.0}


def test_update_sparse_values_on_hybrid_index(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="dotproduct")
    client.upsert(vectors=[("r", [1.0, 0.0]), ("s", [0.5, 0.0])])
    client.update(id="s", sparse_values={"indices": [3, 9], "values": [1.0, 2.0]})
    record = client.fetch(ids=["s"]).vectors["s"]
    assert sparse_pair(record) == ([3, 9], [1.0, 2.0])
    assert values_of(record) == [0.5, 0.0]  # dense values kept
    matches = client.query(
        vector=[1.0, 0.0], sparse_vector={"indices": [9], "values": [1.0]}, top_k=2
    ).matches
    assert [(m.id, m.score) for m in matches] == [("s", pytest.approx(2.5)), ("r", pytest.approx(1.0))]


def test_update_wrong_dimension_is_rejected(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=4, metric="cosine")
    client.upsert(vectors=[("r", [1.0, 2.0, 3.0, 4.0])])
    with invalid("dimension 3", "dimension of the index 4"):
        client.update(id="r", values=[1.0, 2.0, 3.0])
    assert values_of(client.fetch(ids=["r"]).vectors["r"]) == [1.0, 2.0, 3.0, 4.0]


def test_update_by_empty_filter_is_rejected(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    client.upsert(vectors=[("r", [1.0, 2.0], {"a": 1})])
    with invalid("empty"):
        client.update(filter={}, set_metadata={"a": 2})
    assert metadata_of(client.fetch(ids=["r"]).vectors["r"]) == {"a": 1.0}


def test_delete_by_ids_ignores_missing(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=4, metric="cosine")
    data = dense_dataset(seed=42, n=50, dim=4)
    client.upsert(vectors=data.vectors())
    doomed = data.ids[:10]
    response = client.delete(ids=[*doomed, "never-existed"])
    assert response is not None  # the SDK parses the `{}` body
    assert client.describe_index_stats().total_vector_count == 40
    assert client.fetch(ids=doomed).vectors == {}
    remaining = client.fetch(ids=data.ids[10:20]).vectors
    assert set(remaining) == set(data.ids[10:20])
    query = np.ones(4, dtype=np.float32)
    matches = client.query(vector=query.tolist(), top_k=50).matches
    assert {m.id for m in matches} == set(data.ids[10:])


def test_delete_all_in_one_namespace(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    client.upsert(vectors=[("a", [1.0, 0.0]), ("b", [0.0, 1.0])], namespace="one")
    client.upsert(vectors=[("a", [1.0, 0.0])], namespace="two")
    client.delete(delete_all=True, namespace="one")
    counts = namespace_counts(client.describe_index_stats())
    assert counts == {"two": 1}
    assert client.fetch(ids=["a", "b"], namespace="one").vectors == {}
    assert set(client.fetch(ids=["a"], namespace="two").vectors) == {"a"}


def test_delete_all_in_default_namespace(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    client.upsert(vectors=[("a", [1.0, 0.0])])
    client.upsert(vectors=[("b", [1.0, 0.0])], namespace="kept")
    client.delete(delete_all=True)
    assert namespace_counts(client.describe_index_stats()) == {"kept": 1}


def test_delete_with_empty_filter_is_rejected(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    client.upsert(vectors=[("a", [1.0, 0.0])])
    with invalid("empty metadata filter"):
        client.delete(filter={})
    assert client.describe_index_stats().total_vector_count == 1


def test_delete_ids_and_filter_together_is_rejected(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    client.upsert(vectors=[("a", [1.0, 0.0], {"x": 1}), ("b", [0.0, 1.0], {"x": 2})])
    with invalid("exactly one"):
        client.delete(ids=["a"], filter={"x": 2})
    assert client.describe_index_stats().total_vector_count == 2

"""Listing ids (prefix, pagination, bitwise order) and describe_index_stats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .reference import flatten
from .support import REST, invalid, list_page, namespace_counts, total_count

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.conformance

# Mixed case, digits and punctuation: bitwise (code point) order differs from a natural or
# case-insensitive sort ("B" < "a", "doc10" < "doc2", "-" < "0" < "_").
IDS = [
    *(f"doc1#chunk{i}" for i in range(12)),
    *(f"doc10#chunk{i}" for i in range(5)),
    *(f"doc2#chunk{i}" for i in range(7)),
    "Doc3",
    "B",
    "a",
    "a-1",
    "a_1",
    "a0",
    "z",
    "~tilde",
    "0",
    "9.9",
]


def upsert_ids(client: Any, ids: list[str], namespace: str | None = None) -> None:
    vectors = [(record_id, [1.0, float(i % 7)]) for i, record_id in enumerate(ids)]
    for start in range(0, len(vectors), 100):
        client.upsert(vectors=vectors[start : start + 100], namespace=namespace)


def test_list_is_in_bitwise_order(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    upsert_ids(client, IDS)
    ids, token = list_page(client)
    assert ids == sorted(IDS)
    assert sorted(IDS) == sorted(IDS, key=lambda s: s.encode())  # code points == bytes for ASCII
    assert token is None


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_list_paginated(new_index: Callable[..., Any], transport: str, limit: int) -> None:
    client = new_index(dimension=2, metric="cosine")
    upsert_ids(client, IDS, namespace="ns")
    pages: list[list[str]] = []
    token = None
    while True:
        ids, token = list_page(client, namespace="ns", limit=limit, pagination_token=token)
        assert 0 < len(ids) <= limit
        pages.append(ids)
        if token is None:
            break
    assert flatten(pages) == sorted(IDS)
    assert len(pages) == -(-len(IDS) // limit)


@pytest.mark.parametrize(
    "prefix", ["doc1", "doc1#", "doc10", "doc2#chunk", "a", "a_", "Doc", "nothing", "doc1#chunk1"]
)
def test_list_with_prefix(new_index: Callable[..., Any], transport: str, prefix: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    upsert_ids(client, IDS)
    expected = sorted(i for i in IDS if i.startswith(prefix))
    pages: list[list[str]] = []
    token = None
    while True:
        ids, token = list_page(client, prefix=prefix, limit=4, pagination_token=token)
        pages.append(ids)
        if token is None:
            break
    assert flatten(pages) == expected


def test_list_generator_walks_every_page(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    many = [f"item-{i:04d}" for i in range(250)]
    upsert_ids(client, many, namespace="big")
    pages = list(client.list(namespace="big", limit=60))
    assert [len(p) for p in pages] == [60, 60, 60, 60, 10]
    assert flatten(pages) == sorted(many)
    assert flatten(client.list(namespace="big", prefix="item-01")) == [
        f"item-{i:04d}" for i in range(100, 200)
    ]
    default_page, token = list_page(client, namespace="big")
    assert len(default_page) == 100  # the documented default page size
    assert token is not None


def test_list_reflects_deletes(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    upsert_ids(client, IDS)
    client.delete(ids=["a", "z", "doc10#chunk3"])
    ids, _ = list_page(client, limit=100)
    assert ids == sorted(set(IDS) - {"a", "z", "doc10#chunk3"})


def test_list_empty_namespace(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    assert list_page(client, namespace="nobody") == ([], None)


def test_list_bad_pagination_token(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    upsert_ids(client, IDS[:3])
    with invalid("pagination token"):
        list_page(client, pagination_token="not-a-token!")


def test_describe_index_stats(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=5, metric="euclidean")
    empty = client.describe_index_stats()
    assert total_count(empty) == 0
    assert namespace_counts(empty) == {}
    assert empty.dimension == 5
    client.upsert(vectors=[(f"d{i}", [float(i)] * 5) for i in range(4)])
    client.upsert(vectors=[(f"a{i}", [1.0] * 5) for i in range(5)], namespace="alpha")
    client.upsert(vectors=[(f"b{i}", [1.0] * 5) for i in range(3)], namespace="beta")
    client.upsert(vectors=[("a0", [2.0] * 5)], namespace="alpha")  # an overwrite, not a new record
    stats = client.describe_index_stats()
    assert namespace_counts(stats) == {"__default__": 4, "alpha": 5, "beta": 3}
    assert total_count(stats) == 12
    assert stats.dimension == 5
    assert stats.index_fullness == 0.0
    if transport == REST:  # the gRPC SDK's parser drops these two fields
        assert stats.metric == "euclidean"
        assert stats.vector_type == "dense"
    client.delete(ids=["b0"], namespace="beta")
    assert namespace_counts(client.describe_index_stats())["beta"] == 2


def test_describe_index_stats_rejects_filter(new_index: Callable[..., Any], transport: str) -> None:
    """Serverless indexes do not support a filter here (documented)."""
    client = new_index(dimension=2, metric="cosine")
    client.upsert(vectors=[("a", [1.0, 0.0], {"g": "x"})])
    with invalid("filter"):
        client.describe_index_stats(filter={"g": "x"})

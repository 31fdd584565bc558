"""Namespaces: isolation, the ``__default__`` alias, and the namespaces API (list/describe/create/delete)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from pinecone.core.openapi.db_data.models import (
    CreateNamespaceRequestSchema,
    CreateNamespaceRequestSchemaFields,
)

from .reference import assert_topk, dense_dataset, dense_expected, flatten
from .support import REST, api_error, invalid, list_page, namespace_counts, namespace_page

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.conformance


def fill(client: Any, layout: dict[str | None, int]) -> None:
    """Upsert ``count`` records into each namespace (None: the default namespace)."""
    for namespace, count in layout.items():
        vectors = [(f"{namespace or 'default'}-{i}", [1.0, float(i)]) for i in range(count)]
        client.upsert(vectors=vectors, namespace=namespace)


def test_namespaces_are_isolated(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    client.upsert(vectors=[("same-id", [1.0, 0.0], {"ns": "a"})], namespace="a")
    client.upsert(vectors=[("same-id", [0.0, 1.0], {"ns": "b"})], namespace="b")
    for namespace in ("a", "b"):
        response = client.query(vector=[1.0, 1.0], top_k=5, namespace=namespace, include_metadata=True)
        assert [(m.id, m.metadata["ns"]) for m in response.matches] == [("same-id", namespace)]
        assert response.namespace == namespace
    client.delete(ids=["same-id"], namespace="a")
    assert client.fetch(ids=["same-id"], namespace="a").vectors == {}
    assert set(client.fetch(ids=["same-id"], namespace="b").vectors) == {"same-id"}


def test_default_namespace_alias(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    client.upsert(vectors=[("via-alias", [1.0, 0.0])], namespace="__default__")
    client.upsert(vectors=[("via-empty", [0.0, 1.0])])
    for namespace in (None, "", "__default__"):
        kwargs = {} if namespace is None else {"namespace": namespace}
        fetched = client.fetch(ids=["via-alias", "via-empty"], **kwargs).vectors
        assert set(fetched) == {"via-alias", "via-empty"}
        matches = client.query(vector=[1.0, 1.0], top_k=5, **kwargs).matches
        assert {m.id for m in matches} == {"via-alias", "via-empty"}
        ids, _ = list_page(client, **kwargs)
        assert ids == ["via-alias", "via-empty"]
    assert namespace_counts(client.describe_index_stats()) == {"__default__": 2}
    description = client.describe_namespace(namespace="__default__")
    assert description.name == "__default__"
    assert int(description.record_count) == 2
    client.delete(ids=["via-empty"], namespace="__default__")
    assert namespace_counts(client.describe_index_stats()) == {"__default__": 1}


def test_list_namespaces(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    fill(client, {None: 2, "zeta": 1, "alpha": 3, "Beta": 4, "alpha-2": 2})
    items, token, total = namespace_page(client)
    # Bitwise order ("B" < "_" < "a"); the default namespace is listed as __default__.
    assert items == [("Beta", 4), ("__default__", 2), ("alpha", 3), ("alpha-2", 2), ("zeta", 1)]
    assert token is None
    assert total == 5
    names = [ns.name for ns in client.list_namespaces()]
    assert names == ["Beta", "__default__", "alpha", "alpha-2", "zeta"]
    # Prefixes and pages work on the listed names, __default__ included.
    assert [name for name, _ in namespace_page(client, prefix="__")[0]] == ["__default__"]
    first, token, _ = namespace_page(client, limit=2)
    rest, _, _ = namespace_page(client, limit=10, pagination_token=token)
    assert [n for n, _ in first + rest] == names


def test_list_namespaces_paginated_and_prefix(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    names = [f"tenant-{i:02d}" for i in range(7)] + ["other"]
    fill(client, dict.fromkeys(names, 1))
    pages: list[list[str]] = []
    token = None
    while True:
        items, token, total = namespace_page(client, limit=3, pagination_token=token)
        assert total == 8
        pages.append([name for name, _ in items])
        if token is None:
            break
    assert [len(p) for p in pages] == [3, 3, 2]
    assert flatten(pages) == sorted(names)
    with_prefix, token, total = namespace_page(client, prefix="tenant-0")
    assert [name for name, _ in with_prefix] == sorted(n for n in names if n.startswith("tenant-0"))
    assert total == 7
    assert [ns.name for ns in client.list_namespaces(limit=2, prefix="tenant-0")] == names[:7]


def test_describe_namespace(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    fill(client, {"docs": 6})
    description = client.describe_namespace(namespace="docs")
    assert description.name == "docs"
    assert int(description.record_count) == 6
    with api_error("NOT_FOUND", "missing"):
        client.describe_namespace(namespace="missing")


def test_delete_namespace(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    fill(client, {"doomed": 5, "kept": 2})
    client.delete_namespace(namespace="doomed")
    assert namespace_counts(client.describe_index_stats()) == {"kept": 2}
    assert client.fetch(ids=["doomed-0"], namespace="doomed").vectors == {}
    assert list(client.query(vector=[1.0, 0.0], top_k=5, namespace="doomed").matches) == []
    with api_error("NOT_FOUND"):
        client.describe_namespace(namespace="doomed")
    with api_error("NOT_FOUND"):
        client.delete_namespace(namespace="doomed")
    # Writing again recreates it, empty of the old records.
    client.upsert(vectors=[("fresh", [1.0, 0.0])], namespace="doomed")
    ids, _ = list_page(client, namespace="doomed")
    assert ids == ["fresh"]


def test_create_namespace(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    schema: Any = {"fields": {"genre": {"filterable": True}}}
    if transport == REST:  # SDK 8.x REST cannot convert a nested dict schema; it takes its models
        schema = CreateNamespaceRequestSchema(
            fields={"genre": CreateNamespaceRequestSchemaFields(filterable=True)}
        )
    created = client.create_namespace(name="explicit", schema=schema)
    assert created.name == "explicit"
    assert int(created.record_count) == 0
    described = client.describe_namespace(namespace="explicit")
    assert int(described.record_count) == 0
    assert [name for name, _ in namespace_page(client)[0]] == ["explicit"]  # listed although empty
    with api_error("ALREADY_EXISTS", "explicit"):
        client.create_namespace(name="explicit")
    client.upsert(vectors=[("r", [1.0, 0.0], {"genre": "x"})], namespace="explicit")
    assert int(client.describe_namespace(namespace="explicit").record_count) == 1
    with api_error("ALREADY_EXISTS"):
        client.create_namespace(name="explicit")


def test_create_namespace_that_has_records_is_409(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    fill(client, {"implicit": 1})
    with api_error("ALREADY_EXISTS"):
        client.create_namespace(name="implicit")


def test_create_default_namespace_is_rejected(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    with invalid("default"):
        client.create_namespace(name="__default__")


def test_namespace_in_responses(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="cosine")
    fill(client, {"where": 2})
    assert client.query(vector=[1.0, 0.0], top_k=1, namespace="where").namespace == "where"
    assert client.fetch(ids=["where-0"], namespace="where").namespace == "where"
    assert client.list_paginated(namespace="where").namespace == "where"


@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_query_namespaces_merges_per_namespace_results(
    new_index: Callable[..., Any], transport: str, metric: str
) -> None:
    """The SDK's client-side fan-out: one query per namespace, merged by the metric's order."""
    client = new_index(dimension=6, metric=metric)
    expected: dict[str, float] = {}
    query = np.random.default_rng(9).normal(size=6).astype(np.float32)
    flt = {"genre": {"$ne": "drama"}}
    for seed, namespace in enumerate(("n1", "n2", "n3")):
        data = dense_dataset(seed=60 + seed, n=40, dim=6, prefix=namespace)
        client.upsert(vectors=data.vectors(), namespace=namespace)
        expected.update(dense_expected(data, query, metric, flt))
    results = client.query_namespaces(
        vector=query.tolist(), namespaces=["n1", "n2", "n3"], metric=metric, top_k=15, filter=flt
    )
    assert_topk(results.matches, expected, 15, metric)

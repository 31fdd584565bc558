"""Every metadata filter operator, in query, fetch_by_metadata, delete and update, against a reference.

The expected matches come from ``reference.evaluate``, a plain reading of the documented semantics:
implicit ``$eq`` and implicit AND; a list-of-strings field matches when any element does; a missing field
matches ``$ne``, ``$nin`` and ``$exists: false`` (MongoDB rules); booleans, numbers and strings never
equal each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from .reference import (
    Dataset,
    assert_topk,
    dense_dataset,
    dense_expected,
    matching_ids,
    normalized_metadata,
)
from .support import REST, Harness, invalid, metadata_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.conformance

N = 300
DIM = 16

FILTERS: dict[str, dict[str, Any]] = {
    "implicit-eq": {"genre": "drama"},
    "eq": {"genre": {"$eq": "comedy"}},
    "eq-number": {"year": {"$eq": 2001}},
    "eq-bool": {"flag": {"$eq": True}},
    "implicit-eq-bool": {"flag": False},
    "ne": {"genre": {"$ne": "drama"}},
    "ne-number": {"year": {"$ne": 2001}},
    "ne-bool": {"flag": {"$ne": True}},
    "gt": {"year": {"$gt": 2010}},
    "gte": {"year": {"$gte": 2010}},
    "lt": {"year": {"$lt": 2000}},
    "lte": {"year": {"$lte": 2000}},
    "gt-float": {"rating": {"$gt": 5.5}},
    "lte-float": {"rating": {"$lte": 2.25}},
    "range": {"year": {"$gte": 2000, "$lt": 2010}},
    "in": {"genre": {"$in": ["drama", "horror"]}},
    "in-numbers": {"year": {"$in": [1995, 2000, 2005, 2010, 2015]}},
    "nin": {"genre": {"$nin": ["drama", "horror"]}},
    "nin-numbers": {"year": {"$nin": [1995, 2000, 2005, 2010, 2015]}},
    "exists": {"rating": {"$exists": True}},
    "not-exists": {"rating": {"$exists": False}},
    "list-any-element": {"tags": "a"},
    "list-eq": {"tags": {"$eq": "b"}},
    "list-in": {"tags": {"$in": ["a", "f"]}},
    "list-ne": {"tags": {"$ne": "a"}},
    "list-nin": {"tags": {"$nin": ["a", "b"]}},
    "list-and-both": {"$and": [{"tags": "a"}, {"tags": "b"}]},
    "list-exists": {"tags": {"$exists": False}},
    "implicit-and": {"genre": "comedy", "flag": True},
    "and": {"$and": [{"genre": {"$in": ["action", "drama"]}}, {"rating": {"$lte": 5}}]},
    "or": {"$or": [{"genre": "documentary"}, {"year": {"$lt": 1995}}]},
    "or-single": {"$or": [{"genre": "horror"}]},
    "nested": {
        "$or": [
            {"$and": [{"genre": "drama"}, {"year": {"$gte": 2005}}]},
            {"tags": {"$in": ["f"]}, "flag": False},
        ]
    },
    "and-or-exists": {
        "$and": [{"$or": [{"tags": "c"}, {"genre": {"$exists": False}}]}, {"rating": {"$exists": True}}]
    },
    "field-and-logical": {"flag": True, "$or": [{"year": {"$gt": 2020}}, {"genre": "action"}]},
    "type-mismatch-string-vs-number": {"year": "2001"},
    "type-mismatch-bool-vs-number": {"flag": {"$eq": 1}},
    "no-match": {"genre": "western"},
}
NON_EMPTY = set(FILTERS) - {"no-match", "type-mismatch-string-vs-number", "type-mismatch-bool-vs-number"}


@pytest.fixture(scope="module")
def filtered(harness: Harness) -> Iterator[tuple[str, Dataset]]:
    name = harness.create_index(dimension=DIM, metric="cosine")
    data = dense_dataset(seed=2024, n=N, dim=DIM, prefix="f")
    harness.data(name, REST).upsert(vectors=data.vectors(), namespace="films")
    yield name, data
    harness.delete_index(name)


def test_reference_filters_are_meaningful(filtered: tuple[str, Dataset]) -> None:
    """Each filter selects some but not all records, so a wrong engine answer cannot pass by luck."""
    _, data = filtered
    for key, flt in FILTERS.items():
        count = len(matching_ids(data, flt))
        if key in NON_EMPTY:
            assert 0 < count < N, (key, count)
        else:
            assert count == 0, key


@pytest.mark.parametrize("key", list(FILTERS))
def test_query_filter(harness: Harness, filtered: tuple[str, Dataset], transport: str, key: str) -> None:
    name, data = filtered
    flt = FILTERS[key]
    client = harness.data(name, transport)
    query = np.random.default_rng(len(key)).normal(size=DIM).astype(np.float32)
    expected = dense_expected(data, query, "cosine", flt)
    # Every match: the returned set must be exactly the reference set.
    everything = client.query(
        vector=query.tolist(), top_k=N, filter=flt, namespace="films", include_metadata=True
    )
    assert {m.id for m in everything.matches} == set(expected)
    assert_topk(everything.matches, expected, N, "cosine")
    for match in everything.matches:
        assert metadata_of(match) == normalized_metadata(data.metadata[data.row(match.id)])
    # A short top-k: the best matching records, in order.
    top = client.query(vector=query.tolist(), top_k=7, filter=flt, namespace="films")
    assert_topk(top.matches, expected, 7, "cosine")


@pytest.mark.parametrize("key", ["implicit-eq", "range", "list-any-element", "not-exists", "nested", "ne"])
def test_fetch_by_metadata(harness: Harness, filtered: tuple[str, Dataset], transport: str, key: str) -> None:
    name, data = filtered
    flt = FILTERS[key]
    client = harness.data(name, transport)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        response = client.fetch_by_metadata(filter=flt, namespace="films", limit=40, pagination_token=token)
        page = list(response.vectors)
        assert len(page) <= 40
        for record_id, vector in response.vectors.items():
            assert metadata_of(vector) == normalized_metadata(data.metadata[data.row(record_id)])
        seen.extend(page)
        pages += 1
        pagination = response.pagination
        token = pagination.next if pagination else None
        if not token:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) == matching_ids(data, flt)
    assert pages == max(1, -(-len(seen) // 40))


def test_fetch_by_metadata_default_limit(
    harness: Harness, filtered: tuple[str, Dataset], transport: str
) -> None:
    name, data = filtered
    flt = {"idx": {"$gte": 0}}  # every record
    response = harness.data(name, transport).fetch_by_metadata(filter=flt, namespace="films")
    assert len(response.vectors) == 100  # the documented default page size
    assert response.pagination is not None
    assert response.pagination.next
    assert set(response.vectors) <= set(data.ids)


def test_fetch_by_metadata_empty_filter_is_rejected(
    harness: Harness, filtered: tuple[str, Dataset], transport: str
) -> None:
    name, _ = filtered
    with invalid("empty filter"):
        harness.data(name, transport).fetch_by_metadata(filter={}, namespace="films")


@pytest.mark.parametrize("key", ["in", "list-and-both", "not-exists", "or"])
def test_delete_by_filter(new_index: Callable[..., Any], transport: str, key: str) -> None:
    client = new_index(dimension=8, metric="cosine")
    data = dense_dataset(seed=31, n=150, dim=8)
    client.upsert(vectors=data.vectors())
    flt = FILTERS[key]
    doomed = matching_ids(data, flt)
    client.delete(filter=flt)
    assert client.describe_index_stats().total_vector_count == len(data) - len(doomed)
    remaining = set(data.ids) - doomed
    fetched = client.fetch(ids=data.ids[:100]).vectors
    assert set(fetched) == remaining & set(data.ids[:100])
    # The filter now matches nothing.
    assert list(client.query(vector=[1.0] * 8, top_k=50, filter=flt).matches) == []


@pytest.mark.parametrize("key", ["eq", "list-in", "ne", "nested"])
def test_update_by_filter_with_dry_run(new_index: Callable[..., Any], transport: str, key: str) -> None:
    client = new_index(dimension=8, metric="dotproduct")
    data = dense_dataset(seed=32, n=150, dim=8)
    client.upsert(vectors=data.vectors())
    flt = FILTERS[key]
    expected = matching_ids(data, flt)
    dry = client.update(filter=flt, set_metadata={"touched": True}, dry_run=True)
    assert dry.matched_records == len(expected)
    assert client.fetch_by_metadata(filter={"touched": True}, limit=1000).vectors == {}
    done = client.update(filter=flt, set_metadata={"touched": True, "genre": "updated"})
    assert done.matched_records == len(expected)
    touched = client.fetch_by_metadata(filter={"touched": True}, limit=1000).vectors
    assert set(touched) == expected
    for record_id, vector in touched.items():
        # set_metadata merges: the listed keys change, the others stay.
        original = normalized_metadata(data.metadata[data.row(record_id)])
        assert metadata_of(vector) == {**original, "touched": True, "genre": "updated"}
    untouched = client.fetch(ids=sorted(set(data.ids) - expected)[:20]).vectors
    for record_id, vector in untouched.items():
        assert metadata_of(vector) == normalized_metadata(data.metadata[data.row(record_id)])


@pytest.mark.parametrize(
    ("flt", "fragment"),
    [
        ({"genre": {"$regex": "dra.*"}}, "$regex"),
        ({"$not": {"genre": "drama"}}, "$not"),
        ({"genre": {"$eq": ["drama"]}}, "list"),
        ({"genre": ["drama", "comedy"]}, "$in"),
        ({"year": {"$gt": "2000"}}, "number"),
        ({"year": {"$in": 2000}}, "list"),
        ({"genre": {"$exists": "yes"}}, "true or false"),
        ({"$and": []}, "non-empty"),
        ({"$or": {"genre": "drama"}}, "list"),
        ({"genre": {"$and": [{"x": 1}]}}, "$and"),
    ],
    ids=[
        "regex",
        "not",
        "eq-list",
        "bare-list",
        "gt-string",
        "in-scalar",
        "exists-string",
        "and-empty",
        "or-object",
        "and-on-field",
    ],
)
def test_invalid_filters_are_rejected(
    harness: Harness, filtered: tuple[str, Dataset], transport: str, flt: dict[str, Any], fragment: str
) -> None:
    name, _ = filtered
    client = harness.data(name, transport)
    with invalid("filter", fragment):
        client.query(vector=[1.0] * DIM, top_k=3, filter=flt, namespace="films")

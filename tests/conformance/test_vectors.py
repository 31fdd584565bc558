"""Upsert, query and fetch of dense records in every metric, over REST and gRPC.

Query results are checked against brute-force numpy scores of the same records (cosine similarity, dot
product, squared euclidean distance ascending): scores within a tolerance, ids wherever scores are not tied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from pinecone import Vector

from .reference import (
    Dataset,
    assert_topk,
    dense_dataset,
    dense_expected,
    normalized_metadata,
)
from .support import GRPC, REST, Harness, list_page, metadata_of, values_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.conformance

METRICS = ("cosine", "dotproduct", "euclidean")
N = 300
DIM = 32


@pytest.fixture(scope="module")
def populated(harness: Harness) -> Iterator[dict[str, tuple[str, Dataset]]]:
    """One populated index per metric (written once over REST), shared by the read-only tests."""
    made: dict[str, tuple[str, Dataset]] = {}
    for seed, metric in enumerate(METRICS):
        name = harness.create_index(dimension=DIM, metric=metric)
        data = dense_dataset(seed=100 + seed, n=N, dim=DIM)
        client = harness.data(name, REST)
        for start in range(0, N, 150):
            client.upsert(vectors=data.vectors()[start : start + 150])
        made[metric] = (name, data)
    yield made
    for name, _ in made.values():
        harness.delete_index(name)


def queries(seed: int, count: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("top_k", [1, 10, N])
def test_query_by_vector_matches_numpy(
    harness: Harness, populated: dict[str, tuple[str, Dataset]], transport: str, metric: str, top_k: int
) -> None:
    name, data = populated[metric]
    client = harness.data(name, transport)
    for query in queries(seed=top_k):
        response = client.query(vector=query.tolist(), top_k=top_k)
        assert_topk(response.matches, dense_expected(data, query, metric), top_k, metric)


@pytest.mark.parametrize("metric", METRICS)
def test_query_by_id_uses_the_stored_vector(
    harness: Harness, populated: dict[str, tuple[str, Dataset]], transport: str, metric: str
) -> None:
    name, data = populated[metric]
    client = harness.data(name, transport)
    assert data.values is not None
    for record_id in (data.ids[0], data.ids[17], data.ids[-1]):
        stored = data.values[data.row(record_id)]
        response = client.query(id=record_id, top_k=10)
        assert_topk(response.matches, dense_expected(data, stored, metric), 10, metric)
        if metric != "dotproduct":  # a record is its own nearest neighbour under cosine and euclidean
            assert response.matches[0].id == record_id


def test_query_by_missing_id_has_no_matches(
    harness: Harness, populated: dict[str, tuple[str, Dataset]], transport: str
) -> None:
    name, _ = populated["cosine"]
    response = harness.data(name, transport).query(id="no-such-record", top_k=5)
    assert list(response.matches) == []


def test_query_in_empty_namespace_has_no_matches(
    harness: Harness, populated: dict[str, tuple[str, Dataset]], transport: str
) -> None:
    name, _ = populated["cosine"]
    response = harness.data(name, transport).query(vector=queries(1)[0].tolist(), top_k=5, namespace="void")
    assert list(response.matches) == []


@pytest.mark.parametrize("metric", METRICS)
def test_include_values_and_metadata(
    harness: Harness, populated: dict[str, tuple[str, Dataset]], transport: str, metric: str
) -> None:
    name, data = populated[metric]
    assert data.values is not None
    client = harness.data(name, transport)
    query = queries(seed=5)[0].tolist()
    full = client.query(vector=query, top_k=8, include_values=True, include_metadata=True)
    assert_topk(full.matches, dense_expected(data, query, metric), 8, metric)
    for match in full.matches:
        row = data.row(match.id)
        np.testing.assert_allclose(values_of(match), data.values[row], rtol=1e-6)
        assert metadata_of(match) == normalized_metadata(data.metadata[row])
    bare = client.query(vector=query, top_k=8)
    assert [m.id for m in bare.matches] == [m.id for m in full.matches]
    for match in bare.matches:
        assert values_of(match) == []
        assert metadata_of(match) == {}
    only_metadata = client.query(vector=query, top_k=3, include_metadata=True)
    for match in only_metadata.matches:
        assert values_of(match) == []
        assert metadata_of(match) == normalized_metadata(data.metadata[data.row(match.id)])


@pytest.mark.parametrize("metric", METRICS)
def test_upsert_then_query_and_fetch(new_index: Callable[..., Any], transport: str, metric: str) -> None:
    """Writes through each transport (the module fixture writes over REST only)."""
    client = new_index(dimension=12, metric=metric)
    data = dense_dataset(seed=11, n=120, dim=12)
    response = client.upsert(vectors=data.vectors())
    assert response.upserted_count == 120
    assert client.describe_index_stats().total_vector_count == 120
    query = queries(seed=3)[0][:12]
    assert_topk(
        client.query(vector=query.tolist(), top_k=20).matches, dense_expected(data, query, metric), 20, metric
    )
    fetched = client.fetch(ids=data.ids[:10]).vectors
    assert set(fetched) == set(data.ids[:10])
    assert data.values is not None
    for i, record_id in enumerate(data.ids[:10]):
        np.testing.assert_allclose(values_of(fetched[record_id]), data.values[i], rtol=1e-6)
        assert metadata_of(fetched[record_id]) == normalized_metadata(data.metadata[i])


def test_upsert_overwrites_whole_record(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=4, metric="cosine")
    client.upsert(vectors=[("r1", [1.0, 0.0, 0.0, 0.0], {"a": 1, "b": "x"})])
    client.upsert(vectors=[("r1", [0.0, 1.0, 0.0, 0.0], {"c": True})])
    record = client.fetch(ids=["r1"]).vectors["r1"]
    assert values_of(record) == [0.0, 1.0, 0.0, 0.0]
    assert metadata_of(record) == {"c": True}  # upsert replaces metadata; update merges it
    assert client.describe_index_stats().total_vector_count == 1


def test_upsert_accepts_every_sdk_vector_format(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=3, metric="dotproduct")
    vectors: list[Any] = [
        ("tuple2", [1.0, 2.0, 3.0]),
        ("tuple3", [1.0, 0.0, 0.0], {"kind": "tuple"}),
        {"id": "dict", "values": [0.0, 1.0, 0.0], "metadata": {"kind": "dict"}},
        Vector(id="dataclass", values=[0.0, 0.0, 1.0], metadata={"kind": "dataclass"}),
        {"id": "numpy", "values": np.array([0.5, 0.5, 0.5], dtype=np.float32)},
    ]
    assert client.upsert(vectors=vectors).upserted_count == 5
    fetched = client.fetch(ids=["tuple2", "tuple3", "dict", "dataclass", "numpy"]).vectors
    assert values_of(fetched["tuple2"]) == [1.0, 2.0, 3.0]
    assert metadata_of(fetched["tuple3"]) == {"kind": "tuple"}
    assert metadata_of(fetched["dataclass"]) == {"kind": "dataclass"}
    assert values_of(fetched["numpy"]) == [0.5, 0.5, 0.5]
    assert metadata_of(fetched["tuple2"]) == {}


def test_duplicate_ids_in_one_upsert_last_wins(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=2, metric="euclidean")
    client.upsert(vectors=[("same", [1.0, 1.0], {"n": 1}), ("same", [2.0, 2.0], {"n": 2})])
    record = client.fetch(ids=["same"]).vectors["same"]
    assert values_of(record) == [2.0, 2.0]
    assert metadata_of(record) == {"n": 2.0}
    assert client.describe_index_stats().total_vector_count == 1


def test_upsert_batch_size_splits_requests(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=4, metric="cosine")
    data = dense_dataset(seed=12, n=250, dim=4)
    response = client.upsert(vectors=data.vectors(), batch_size=100, show_progress=False)
    assert response.upserted_count == 250
    assert client.describe_index_stats().total_vector_count == 250


def test_fetch_leaves_out_missing_ids(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=4, metric="cosine")
    data = dense_dataset(seed=13, n=20, dim=4)
    client.upsert(vectors=data.vectors(), namespace="ns")
    response = client.fetch(ids=[data.ids[0], "missing-1", data.ids[5], "missing-2"], namespace="ns")
    assert set(response.vectors) == {data.ids[0], data.ids[5]}
    assert response.namespace == "ns"
    assert response.vectors[data.ids[5]].id == data.ids[5]
    assert client.fetch(ids=["missing-1"], namespace="ns").vectors == {}
    assert client.fetch(ids=[data.ids[0]]).vectors == {}  # other namespace


def test_metadata_types_round_trip(new_index: Callable[..., Any], transport: str) -> None:
    """Strings, numbers, booleans and lists of strings; numbers come back as 64-bit floats."""
    client = new_index(dimension=2, metric="cosine")
    metadata = {"s": "text", "i": 2019, "f": 0.25, "neg": -7, "t": True, "fl": False, "l": ["x", "y"]}
    client.upsert(vectors=[("m", [1.0, 2.0], metadata)])
    fetched = metadata_of(client.fetch(ids=["m"]).vectors["m"])
    assert fetched == {
        "s": "text",
        "i": 2019.0,
        "f": 0.25,
        "neg": -7.0,
        "t": True,
        "fl": False,
        "l": ["x", "y"],
    }
    assert fetched["t"] is True
    assert fetched["fl"] is False
    if transport == GRPC:
        # google.protobuf.Struct carries every number as a double.
        assert type(fetched["i"]) is float
        assert type(fetched["neg"]) is float
    queried = client.query(vector=[1.0, 2.0], top_k=1, include_metadata=True).matches[0]
    assert metadata_of(queried) == fetched


def test_grpc_scores_and_values_are_floats(new_index: Callable[..., Any], transport: str) -> None:
    client = new_index(dimension=3, metric="dotproduct")
    client.upsert(vectors=[("a", [1.0, 2.0, 3.0], {"n": 5})])  # an integer in metadata, a float out
    match = client.query(vector=[1.0, 1.0, 1.0], top_k=1, include_values=True, include_metadata=True).matches[
        0
    ]
    assert match.score == pytest.approx(6.0)
    assert [type(v) for v in match.values] == [float, float, float]
    assert isinstance(match.score, float)
    if transport == REST:
        assert metadata_of(match)["n"] == 5
    else:
        assert type(metadata_of(match)["n"]) is float


SPECIAL_IDS = [
    "a b",
    "a/b",
    "a?b",
    "a&b=c",
    "a#b",
    "a%20b",
    "a+b",
    "semi;colon",
    "quote'\"",
    "back\\slash",
    "~!@$^*()[]{}|<>,.",
]


def test_ids_with_url_special_characters(new_index: Callable[..., Any], transport: str) -> None:
    """Ids travel in REST query strings (fetch, list): every ASCII character must survive the round trip."""
    client = new_index(dimension=2, metric="cosine")
    client.upsert(
        vectors=[(record_id, [1.0, float(i)]) for i, record_id in enumerate(SPECIAL_IDS)],
        namespace="sp ace/ns",
    )
    fetched = client.fetch(ids=SPECIAL_IDS, namespace="sp ace/ns").vectors
    assert set(fetched) == set(SPECIAL_IDS)
    assert all(fetched[record_id].id == record_id for record_id in SPECIAL_IDS)
    ids, _ = list_page(client, namespace="sp ace/ns")
    assert ids == sorted(SPECIAL_IDS)
    assert list_page(client, namespace="sp ace/ns", prefix="a%")[0] == ["a%20b"]
    assert client.query(id="a&b=c", top_k=1, namespace="sp ace/ns").matches[0].id in SPECIAL_IDS
    client.delete(ids=["a/b", "a#b"], namespace="sp ace/ns")
    assert set(client.fetch(ids=SPECIAL_IDS, namespace="sp ace/ns").vectors) == set(SPECIAL_IDS) - {
        "a/b",
        "a#b",
    }
    assert client.describe_namespace(namespace="sp ace/ns").name == "sp ace/ns"

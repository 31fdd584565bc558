"""Every documented limit: the SDK raises with a message that says what was wrong, nothing is written.

Each rejected request is followed by a check that the index is exactly as before (record count, no record
of the rejected batch, and a query that still matches the numpy reference). Where SDK 8.x's REST client
validates a field itself (ids, ``top_k``), the test checks that too and then sends the request through the
SDK's generated API without that check, so the server's own answer is tested on both transports.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from pinecone import SparseValues, Vector
from pinecone.exceptions import PineconeApiValueError

from .reference import Dataset, assert_topk, dense_dataset, dense_expected
from .support import GRPC, REST, Harness, invalid, namespace_counts, raw_rest_query, raw_vector

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.conformance

DIM = 8
SEEDED = 20


@pytest.fixture(scope="module")
def limited(harness: Harness) -> Iterator[tuple[str, Dataset]]:
    """A dotproduct index (so sparse values are allowed) with a few records in the default namespace."""
    name = harness.create_index(dimension=DIM, metric="dotproduct")
    data = dense_dataset(seed=5150, n=SEEDED, dim=DIM, prefix="seed")
    harness.data(name, REST).upsert(vectors=data.vectors())
    yield name, data
    harness.delete_index(name)


@pytest.fixture
def client(harness: Harness, limited: tuple[str, Dataset], transport: str) -> Iterator[Any]:
    """The shared index's client; after the test, the index must be exactly as seeded."""
    name, data = limited
    data_client = harness.data(name, transport)
    yield data_client
    assert_unchanged(data_client, data)


def assert_unchanged(client: Any, data: Dataset) -> None:
    stats = client.describe_index_stats()
    assert namespace_counts(stats) == {"__default__": SEEDED}, namespace_counts(stats)
    query = np.random.default_rng(0).normal(size=DIM).astype(np.float32)
    assert_topk(
        client.query(vector=query.tolist(), top_k=5).matches,
        dense_expected(data, query, "dotproduct"),
        5,
        "dotproduct",
    )
    assert client.fetch(ids=[f"new-{i}" for i in range(5)]).vectors == {}


def good(count: int = 5) -> list[tuple[str, list[float]]]:
    """Valid records sent ahead of a bad one: none of them may be written."""
    return [(f"new-{i}", [float(i + 1)] * DIM) for i in range(count)]


def test_upsert_dimension_mismatch(client: Any) -> None:
    with invalid("dimension 7", "dimension of the index 8"):
        client.upsert(vectors=[*good(), ("bad", [1.0] * 7)])
    with invalid("dimension 9", "dimension of the index 8"):
        client.upsert(vectors=[("bad", [1.0] * 9)])


def test_query_dimension_mismatch(client: Any) -> None:
    with invalid("dimension 3", "dimension of the index 8"):
        client.query(vector=[1.0, 2.0, 3.0], top_k=3)


def test_upsert_more_than_1000_vectors(client: Any) -> None:
    vectors = [(f"new-{i}", [1.0] * DIM) for i in range(1001)]
    with invalid("at most 1000 vectors", "1001"):
        client.upsert(vectors=vectors)


def test_upsert_larger_than_2mb(client: Any) -> None:
    padding = "p" * 3600  # 600 records of ~3.6 KB: fewer than 1000 records, more than 2 MB
    vectors = [(f"new-{i}", [1.0] * DIM, {"pad": padding}) for i in range(600)]
    with invalid("exceeds the maximum supported size of 2MB"):
        client.upsert(vectors=vectors)


def test_metadata_larger_than_40kb(client: Any) -> None:
    with invalid("metadata size", "40960 bytes", "'bad'"):
        client.upsert(vectors=[*good(), ("bad", [1.0] * DIM, {"text": "x" * 41_000})])


def test_id_longer_than_512(client: Any, transport: str) -> None:
    long_id = "i" * 513
    if transport == REST:
        with pytest.raises(PineconeApiValueError, match="512"):  # SDK 8.x checks ids itself
            client.upsert(vectors=[(long_id, [1.0] * DIM)])
    with invalid("513", "512"):
        client.upsert(vectors=[*good(), raw_vector(transport, long_id, [1.0] * DIM)])


def test_non_ascii_id(client: Any, transport: str) -> None:
    with invalid("ascii"):
        client.upsert(vectors=[*good(), ("café", [1.0] * DIM)])


def test_dense_record_without_values(client: Any) -> None:
    sparse_only = {"id": "bad", "sparse_values": {"indices": [1], "values": [1.0]}}
    with invalid("dimension 8"):
        client.upsert(vectors=[sparse_only])


def test_sparse_only_query_on_dense_index(client: Any) -> None:
    with invalid("dense vector"):
        client.query(sparse_vector={"indices": [1], "values": [1.0]}, top_k=3)


def test_empty_id(client: Any, transport: str) -> None:
    if transport == REST:
        with pytest.raises(PineconeApiValueError, match="length"):
            client.upsert(vectors=[("", [1.0] * DIM)])
    with invalid("id", "empty"):
        client.upsert(vectors=[*good(), raw_vector(transport, "", [1.0] * DIM)])


@pytest.mark.parametrize("top_k", [0, 10_001])
def test_top_k_out_of_range(client: Any, transport: str, top_k: int) -> None:
    vector = [1.0] * DIM
    if transport == REST:
        with pytest.raises(ValueError, match="top_k"):  # SDK 8.x checks top_k itself
            client.query(vector=vector, top_k=top_k)
        with invalid("topK", "between 1 and 10000", str(top_k)):
            raw_rest_query(client, vector=vector, top_k=top_k)
    else:
        with invalid("topK", "between 1 and 10000", str(top_k)):
            client.query(vector=vector, top_k=top_k)


def test_top_k_above_1000_with_metadata_or_values(client: Any) -> None:
    for flags in ({"include_metadata": True}, {"include_values": True}):
        with invalid("topK", "1000"):
            client.query(vector=[1.0] * DIM, top_k=1001, **flags)


def test_fetch_more_than_1000_ids(client: Any) -> None:
    with invalid("at most 1000 ids", "1001"):
        client.fetch(ids=[f"id-{i}" for i in range(1001)])


def test_delete_more_than_1000_ids(client: Any) -> None:
    with invalid("at most 1000 ids", "1001"):
        client.delete(ids=[f"seed-{i:04d}" for i in range(1001)])


def test_in_with_more_than_10000_values(client: Any) -> None:
    flt = {"genre": {"$in": [f"g{i}" for i in range(10_001)]}}
    with invalid("$in", "10001 values", "10000"):
        client.query(vector=[1.0] * DIM, top_k=3, filter=flt)
    with invalid("$nin", "10001 values"):
        client.query(vector=[1.0] * DIM, top_k=3, filter={"genre": {"$nin": flt["genre"]["$in"]}})


def test_sparse_indices_and_values_length_mismatch(client: Any) -> None:
    # SparseValues dataclasses reach the wire unchecked on both transports.
    bad = Vector(id="bad", values=[1.0] * DIM, sparse_values=SparseValues(indices=[1, 2], values=[0.5]))
    with invalid("2 indices but 1 values"):
        client.upsert(vectors=[*good(), bad])
    with invalid("2 indices but 1 values"):
        client.query(vector=[1.0] * DIM, sparse_vector=SparseValues(indices=[1, 2], values=[0.5]), top_k=3)


def test_sparse_duplicate_indices(client: Any) -> None:
    bad = {"id": "bad", "values": [1.0] * DIM, "sparse_values": {"indices": [4, 4], "values": [0.5, 0.5]}}
    with invalid("unique"):
        client.upsert(vectors=[*good(), bad])


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values(client: Any, transport: str, value: float) -> None:
    """NaN and infinity: gRPC carries them and the engine rejects them.

    JSON cannot carry them: the REST SDK's orjson writes them as ``null``, which is not a number either.
    """
    vector = [1.0] * (DIM - 1) + [value]
    fragment = "NaN and infinity are not allowed" if transport == GRPC else "list of numbers"
    with invalid(fragment):
        client.upsert(vectors=[*good(), ("bad", vector)])
    with invalid(fragment):
        client.query(vector=vector, top_k=3)


def test_null_metadata_value(client: Any) -> None:
    with invalid("'missing'", "null"):
        client.upsert(vectors=[*good(), ("bad", [1.0] * DIM, {"ok": 1, "missing": None})])


def test_nested_metadata(client: Any) -> None:
    with invalid("'author'", "nested"):
        client.upsert(vectors=[*good(), ("bad", [1.0] * DIM, {"author": {"name": "x"}})])


def test_metadata_list_of_numbers(client: Any) -> None:
    with invalid("'scores'", "only contain strings"):
        client.upsert(vectors=[*good(), ("bad", [1.0] * DIM, {"scores": [1, 2]})])


def test_metadata_key_starting_with_dollar(client: Any) -> None:
    with invalid("'$where'"):
        client.upsert(vectors=[*good(), ("bad", [1.0] * DIM, {"$where": "x"})])


def test_set_metadata_validated_like_metadata(client: Any) -> None:
    with invalid("nested"):
        client.update(id="seed-0000", set_metadata={"deep": {"er": 1}})
    with invalid("null"):
        client.update(id="seed-0000", set_metadata={"gone": None})


def test_invalid_filter_operator(client: Any) -> None:
    with invalid("unsupported operator", "$regex"):
        client.query(vector=[1.0] * DIM, top_k=3, filter={"genre": {"$regex": "^d"}})
    with invalid("unsupported operator", "$nor"):
        client.delete(filter={"$nor": [{"genre": "drama"}]})


def test_namespace_longer_than_512(client: Any) -> None:
    with invalid("namespace", "512"):
        client.upsert(vectors=good(), namespace="n" * 513)


def test_values_at_the_limits_are_accepted(
    harness: Harness, limited: tuple[str, Dataset], transport: str
) -> None:
    """The largest allowed request of each kind goes through (in a namespace of its own)."""
    name, data = limited
    client = harness.data(name, transport)
    ns = f"edge-{transport}"
    try:
        thousand = [(f"e-{i:04d}", [float(i % 5 + 1)] * DIM) for i in range(1000)]
        assert client.upsert(vectors=thousand, namespace=ns).upserted_count == 1000
        long_id = "L" * 512
        client.upsert(vectors=[(long_id, [1.0] * DIM, {"text": "x" * 40_000})], namespace=ns)
        assert set(client.fetch(ids=[long_id], namespace=ns).vectors) == {long_id}
        assert len(client.fetch(ids=[f"e-{i:04d}" for i in range(1000)], namespace=ns).vectors) == 1000
        # 1000 ids of 512 characters: about 0.5 MB of REST query string.
        longest = [f"{i:04d}".ljust(512, "x") for i in range(999)] + [long_id]
        assert set(client.fetch(ids=longest, namespace=ns).vectors) == {long_id}
        assert len(client.query(vector=[1.0] * DIM, top_k=10_000, namespace=ns).matches) == 1001
        assert (
            len(client.query(vector=[1.0] * DIM, top_k=1000, include_metadata=True, namespace=ns).matches)
            == 1000
        )
        in_list = [f"e-{i}" for i in range(9_999)] + ["x" * 40_000]
        assert (
            client.query(vector=[1.0] * DIM, top_k=5, namespace=ns, filter={"text": {"$in": in_list}})
            .matches[0]
            .id
            == long_id
        )
    finally:
        client.delete(delete_all=True, namespace=ns)
    assert_unchanged(client, data)


def test_fetch_by_metadata_limit_above_10000(client: Any) -> None:
    with invalid("limit", "10000"):
        client.fetch_by_metadata(filter={"genre": "drama"}, limit=10_001)

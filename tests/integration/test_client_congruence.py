"""Congruence with the official SDK: one scenario, four clients, the same answers.

The scenario (create an index, upsert 300 records with metadata, filtered queries, fetch, update, delete,
list, stats) runs through our PineconeClient over gRPC and REST and through the official SDK 8.x
(``pinecone.Pinecone`` REST by index name, ``pinecone.grpc.PineconeGRPC`` on the bare host), each on its
own index of the same LocalServer. Every step's result is normalised into plain values, and the four
transcripts must agree: same ids, metadata and counts, scores within 1e-6.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from pinecone_rag import ListResponse, PineconeClient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pinecone_rag.server import LocalServer

pinecone = pytest.importorskip("pinecone", reason="the official SDK is the compatibility oracle")
pinecone_grpc = pytest.importorskip("pinecone.grpc", reason="the official SDK's gRPC extra")

KEY = "congruence-key"
NAMESPACE = "cong"
DIMENSION = 8
SCORE_TOL = 1e-6
GENRES = ("drama", "comedy", "news", "essay")


def _values(values: Any) -> tuple[float, ...] | None:
    """Values as a tuple of float32-exact floats; empty or absent is None."""
    if values is None or len(values) == 0:
        return None
    return tuple(np.asarray(values, dtype=np.float32).tolist())


def _metadata(metadata: Any) -> dict[str, Any] | None:
    return dict(metadata) if metadata else None


class Driver:
    """One client under test. Subclasses bind the calls; every method returns plain values."""

    label = ""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.name = f"cg-{uuid.uuid4().hex[:12]}"
        self.index: Any = None

    def query(self, **kwargs: Any) -> list[tuple[str, float, Any, Any]]:
        result = self.index.query(namespace=NAMESPACE, **kwargs)
        return [(m.id, float(m.score), _metadata(m.metadata), _values(m.values)) for m in result.matches]

    def fetch(self, ids: list[str]) -> dict[str, tuple[Any, Any]]:
        result = self.index.fetch(ids, namespace=NAMESPACE)
        return {key: (_values(v.values), _metadata(v.metadata)) for key, v in result.vectors.items()}

    def fetch_by_metadata(self, flt: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        result = self.index.fetch_by_metadata(filter=flt, namespace=NAMESPACE, limit=1000)
        return {key: (_values(v.values), _metadata(v.metadata)) for key, v in result.vectors.items()}

    def update_values(self, record_id: str, values: list[float]) -> None:
        self.index.update(id=record_id, values=values, namespace=NAMESPACE)

    def update_metadata(self, record_id: str, metadata: dict[str, Any]) -> None:
        self.index.update(id=record_id, set_metadata=metadata, namespace=NAMESPACE)

    def update_by_filter(self, flt: dict[str, Any], metadata: dict[str, Any]) -> int | None:
        result = self.index.update(set_metadata=metadata, filter=flt, namespace=NAMESPACE)
        return result.matched_records

    def delete_ids(self, ids: list[str]) -> None:
        self.index.delete(ids=ids, namespace=NAMESPACE)

    def delete_filter(self, flt: dict[str, Any]) -> None:
        self.index.delete(filter=flt, namespace=NAMESPACE)

    def list_ids(self, prefix: str) -> list[str]:
        return [
            record_id for page in self.index.list(prefix=prefix, namespace=NAMESPACE) for record_id in page
        ]

    def list_page(self, limit: int) -> tuple[list[str], bool]:
        page = self.index.list_paginated(namespace=NAMESPACE, limit=limit)
        if isinstance(page, ListResponse):
            return page.ids, bool(page.next_token)
        pagination = getattr(page, "pagination", None)
        return [item.id for item in page.vectors], bool(pagination and pagination.next)

    def stats(self) -> tuple[int, dict[str, int]]:
        stats = self.index.describe_index_stats()
        counts = {name: int(summary.vector_count) for name, summary in stats.namespaces.items()}
        return int(stats.total_vector_count), counts

    def create(self) -> None:
        raise NotImplementedError

    def upsert(self, records: list[tuple[str, list[float], dict[str, Any]]]) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Ours(Driver):
    def __init__(self, server: LocalServer, transport: str) -> None:
        super().__init__(server)
        self.label = f"pinecone_rag-{transport}"
        self.client = PineconeClient(KEY, server.url, transport=transport)  # type: ignore[arg-type]

    def create(self) -> None:
        self.client.create_index(self.name, DIMENSION, "cosine")
        self.index = self.client.index(self.name)

    def upsert(self, records: list[tuple[str, list[float], dict[str, Any]]]) -> int:
        result = self.client.index(self.name).upsert(records, NAMESPACE, batch_size=100)
        assert result.ok, result.failed
        return result.upserted_count

    def close(self) -> None:
        if self.index is not None:
            self.client.delete_index(self.name)
        self.client.close()


class Official(Driver):
    def __init__(self, server: LocalServer, transport: str) -> None:
        super().__init__(server)
        self.label = f"sdk-{transport}"
        self.transport = transport
        self.pc = pinecone.Pinecone(api_key=KEY, host=server.url)

    def create(self) -> None:
        spec = pinecone.ServerlessSpec(cloud="aws", region="us-east-1")
        self.pc.create_index(name=self.name, dimension=DIMENSION, metric="cosine", spec=spec)
        if self.transport == "rest":
            self.index = self.pc.Index(name=self.name)
        else:
            host = self.pc.describe_index(self.name).host.removeprefix("http://")
            grpc_client = pinecone_grpc.PineconeGRPC(api_key=KEY, host=self.server.url)
            config = pinecone_grpc.GRPCClientConfig(secure=False)
            self.index = grpc_client.Index(host=host, grpc_config=config)

    def upsert(self, records: list[tuple[str, list[float], dict[str, Any]]]) -> int:
        total = 0
        for start in range(0, len(records), 100):
            response = self.index.upsert(
                records[start : start + 100], namespace=NAMESPACE, show_progress=False
            )
            total += int(response.upserted_count)
        return total

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
            self.pc.delete_index(self.name)


def scenario(driver: Driver) -> list[tuple[str, Any]]:
    """The shared scenario; returns (step, result) pairs."""
    rng = np.random.default_rng(2024)
    matrix = rng.standard_normal((300, DIMENSION)).astype(np.float32)
    records = [
        (
            f"rec-{i:03d}",
            matrix[i].tolist(),
            {
                "genre": GENRES[i % 4],
                "year": 1990 + i % 35,
                "tags": [f"t{i % 3}", f"u{i % 5}"],
                "even": i % 2 == 0,
            },
        )
        for i in range(300)
    ]
    queries = rng.standard_normal((4, DIMENSION)).astype(np.float32).tolist()
    filters: list[dict[str, Any] | None] = [
        None,
        {"genre": {"$eq": "news"}},
        {"$and": [{"year": {"$gte": 2005}}, {"tags": {"$in": ["t1"]}}]},
        {"$or": [{"even": True}, {"genre": {"$nin": ["drama", "essay"]}}]},
    ]
    steps: list[tuple[str, Any]] = []
    driver.create()
    steps.append(("upsert", driver.upsert(records)))
    steps.append(("stats", driver.stats()))
    for q, (vector, flt) in enumerate(zip(queries, filters, strict=True)):
        steps.append((f"query-{q}", driver.query(vector=vector, top_k=10, filter=flt, include_metadata=True)))
    steps.append(("query-values", driver.query(vector=queries[0], top_k=5, include_values=True)))
    steps.append(("query-id", driver.query(id="rec-042", top_k=7, include_metadata=True)))
    steps.append(("fetch", driver.fetch(["rec-000", "rec-001", "rec-002", "rec-150", "rec-299", "nope"])))
    steps.append(("fetch-by-metadata", driver.fetch_by_metadata({"genre": "news", "year": {"$gt": 2010}})))
    driver.update_values("rec-001", [0.25, -0.5, 1.0, 2.0, -3.0, 0.125, 0.0, 1e-3])
    driver.update_metadata("rec-002", {"genre": "updated", "extra": "x"})
    steps.append(("fetch-updated", driver.fetch(["rec-001", "rec-002"])))
    steps.append(("update-filter", driver.update_by_filter({"genre": "essay"}, {"flag": "on"})))
    steps.append(("query-flag", driver.query(vector=queries[1], top_k=10, filter={"flag": "on"})))
    driver.delete_ids([f"rec-{i:03d}" for i in range(10, 20)])
    driver.delete_filter({"$and": [{"genre": "comedy"}, {"year": {"$lt": 2005}}]})
    steps.append(("stats-after-delete", driver.stats()))
    steps.append(("list-prefix", driver.list_ids("rec-0")))
    steps.append(("list-all", driver.list_ids("rec-")))
    steps.append(("list-page", driver.list_page(25)))
    for q, (vector, flt) in enumerate(zip(queries, filters, strict=True)):
        steps.append(
            (f"requery-{q}", driver.query(vector=vector, top_k=10, filter=flt, include_metadata=True))
        )
    return steps


def assert_same(left: Any, right: Any, where: str) -> None:
    """Structural equality with float tolerance (scores)."""
    if isinstance(left, float) and isinstance(right, float):
        assert math.isclose(left, right, rel_tol=SCORE_TOL, abs_tol=SCORE_TOL), (where, left, right)
    elif isinstance(left, (list, tuple)):
        assert isinstance(right, (list, tuple)), (where, left, right)
        assert len(left) == len(right), (where, left, right)
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(left, dict):
        assert isinstance(right, dict), (where, left, right)
        assert left.keys() == right.keys(), (where, left, right)
        for key in left:
            assert_same(left[key], right[key], f"{where}.{key}")
    else:
        assert left == right, (where, left, right)


@pytest.fixture(scope="module")
def transcripts(server: LocalServer) -> Iterator[dict[str, list[tuple[str, Any]]]]:
    drivers: list[Driver] = [
        Ours(server, "grpc"),
        Ours(server, "rest"),
        Official(server, "rest"),
        Official(server, "grpc"),
    ]
    try:
        yield {driver.label: scenario(driver) for driver in drivers}
    finally:
        for driver in drivers:
            driver.close()


def test_same_scenario_same_results(transcripts: dict[str, list[tuple[str, Any]]]):
    reference = transcripts["sdk-rest"]
    for label, steps in transcripts.items():
        assert [step for step, _ in steps] == [step for step, _ in reference]
        for (step, got), (_, want) in zip(steps, reference, strict=True):
            assert_same(got, want, f"{label}:{step}")


def test_scenario_results_are_meaningful(transcripts: dict[str, list[tuple[str, Any]]]):
    """Guards against four clients agreeing on nothing (empty results)."""
    steps = dict(transcripts["pinecone_rag-grpc"])
    assert steps["upsert"] == 300
    assert steps["stats"] == (300, {NAMESPACE: 300})
    for q in range(4):
        assert len(steps[f"query-{q}"]) == 10
        assert len(steps[f"requery-{q}"]) == 10
    assert all(genre == "news" for genre in (m[2]["genre"] for m in steps["query-1"]))
    assert all(match[3] is not None and len(match[3]) == DIMENSION for match in steps["query-values"])
    assert steps["query-id"][0][0] == "rec-042"
    assert set(steps["fetch"]) == {"rec-000", "rec-001", "rec-002", "rec-150", "rec-299"}
    news_late = {f"rec-{i:03d}" for i in range(300) if i % 4 == 2 and 1990 + i % 35 > 2010}
    assert set(steps["fetch-by-metadata"]) == news_late
    updated = steps["fetch-updated"]
    assert updated["rec-001"][0] == (0.25, -0.5, 1.0, 2.0, -3.0, 0.125, 0.0, float(np.float32(1e-3)))
    assert updated["rec-002"][1]["genre"] == "updated"
    assert updated["rec-002"][1]["extra"] == "x"
    assert steps["update-filter"] == 75
    assert len(steps["query-flag"]) == 10
    comedy_old = sum(1 for i in range(300) if i % 4 == 1 and 1990 + i % 35 < 2005 and not 10 <= i < 20)
    remaining = 300 - 10 - comedy_old
    assert steps["stats-after-delete"] == (remaining, {NAMESPACE: remaining})
    assert steps["list-all"] == sorted(steps["list-all"])
    assert len(steps["list-all"]) == remaining
    assert all(record_id.startswith("rec-0") for record_id in steps["list-prefix"])
    ids, has_more = steps["list-page"]
    assert ids == steps["list-all"][:25]
    assert has_more

"""Every data-plane method of Index and AsyncIndex, over gRPC and REST, against a real LocalServer.

Each test runs four times (sync/async x grpc/rest) through :class:`Plane`, which gives all four the same
call shape: async calls run on the test's own event loop, and pages of async generators are collected.
Expected results come from numpy references over the records the test wrote, never hard-coded numbers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from pinecone_rag import (
    AlreadyExistsError,
    AsyncIndex,
    AsyncPineconeClient,
    Index,
    InvalidArgumentError,
    NotFoundError,
    PineconeClient,
    RecordError,
    SparseValues,
    UpsertError,
    UpsertResult,
    Vector,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from pinecone_rag.server import LocalServer

KEY = "data-plane-key"
COMBOS = [("sync", "grpc"), ("sync", "rest"), ("async", "grpc"), ("async", "rest")]
DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "stdlib-docstrings-minilm"
SCORE_TOL = 1e-5  # the engine scores in float32, the references in float64
GENRES = ("drama", "comedy", "news")


async def _collect(pages: AsyncIterator[Any]) -> list[Any]:
    return [page async for page in pages]


class BoundIndex:
    """An Index or AsyncIndex whose methods are called the sync way (results already awaited)."""

    def __init__(self, plane: Plane, raw: Index | AsyncIndex) -> None:
        self.plane = plane
        self.raw = raw

    def __getattr__(self, method: str) -> Callable[..., Any]:
        target = getattr(self.raw, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.plane.run(target(*args, **kwargs))

        return call


class Plane:
    """One client flavour (sync or async, grpc or rest) behind a sync call shape."""

    def __init__(self, mode: str, transport: str, url: str) -> None:
        self.mode = mode
        self.transport = transport
        self.loop = asyncio.new_event_loop() if mode == "async" else None
        self.client: PineconeClient | AsyncPineconeClient
        if mode == "async":
            self.client = self.run(self._make_async(url))
        else:
            self.client = PineconeClient(KEY, url, transport=transport)  # type: ignore[arg-type]
        self.created: list[str] = []

    async def _make_async(self, url: str) -> AsyncPineconeClient:
        return AsyncPineconeClient(KEY, url, transport=self.transport)  # type: ignore[arg-type]

    def run(self, value: Any) -> Any:
        """The value itself; an awaitable awaited; a (async) generator collected into a list."""
        if inspect.isasyncgen(value):
            value = _collect(value)
        if inspect.isawaitable(value):
            assert self.loop is not None, "a sync client returned an awaitable"
            return self.loop.run_until_complete(value)
        if inspect.isgenerator(value):
            return list(value)
        return value

    def new_index(self, dimension: int | None = 8, metric: str = "cosine", vector_type: str = "dense") -> Any:
        name = f"dp-{uuid.uuid4().hex[:12]}"
        self.run(self.client.create_index(name, dimension, metric, vector_type=vector_type))  # type: ignore[arg-type]
        self.created.append(name)
        return self.index(name)

    def index(self, name: str) -> Any:
        raw = self.run(self.client.index(name))
        assert isinstance(raw, AsyncIndex if self.mode == "async" else Index)
        return BoundIndex(self, raw)

    def close(self) -> None:
        for name in self.created:
            self.run(self.client.delete_index(name))
        if isinstance(self.client, AsyncPineconeClient):
            self.run(self.client.aclose())
        else:
            self.client.close()
        if self.loop is not None:
            self.loop.close()


@pytest.fixture(params=COMBOS, ids=["-".join(combo) for combo in COMBOS])
def plane(request: pytest.FixtureRequest, server: LocalServer) -> Iterator[Plane]:
    mode, transport = request.param
    running = Plane(mode, transport, server.url)
    yield running
    running.close()


# ------------------------------------------------------------------------------------------- references
def make_data(n: int, dim: int, seed: int, prefix: str = "r") -> tuple[list[str], np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}{i:04d}" for i in range(n)]
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    metadata = [
        {"genre": GENRES[i % 3], "year": int(2000 + rng.integers(0, 25)), "tags": [f"t{i % 5}"]}
        for i in range(n)
    ]
    return ids, matrix, metadata


def reference_scores(matrix: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    base = matrix.astype(np.float64)
    q = np.asarray(query, dtype=np.float64)
    if metric == "cosine":
        return (base @ q) / (np.linalg.norm(base, axis=1) * np.linalg.norm(q))
    if metric == "dotproduct":
        return base @ q
    return ((base - q) ** 2).sum(axis=1)


def sparse_dot(sparse: dict[int, float], query: dict[int, float]) -> float:
    return float(sum(value * query[i] for i, value in sparse.items() if i in query))


def assert_top_k(matches: list[Any], expected: dict[str, float], top_k: int, metric: str) -> None:
    """Matches are the top_k of ``expected`` (id -> reference score), best first, up to float32 ties."""
    lower_is_better = metric == "euclidean"
    ranked = sorted(expected.items(), key=lambda item: item[1], reverse=not lower_is_better)[:top_k]
    assert len(matches) == len(ranked)
    for match, (want_id, want_score) in zip(matches, ranked, strict=True):
        assert match.id in expected, match.id
        assert match.score == pytest.approx(expected[match.id], rel=SCORE_TOL, abs=SCORE_TOL)
        # Positional scores agree, so a different id at a position can only be a tie.
        assert match.score == pytest.approx(want_score, rel=SCORE_TOL, abs=SCORE_TOL), (match.id, want_id)
    clear = [i for i in range(len(ranked)) if _isolated(ranked, i)]
    assert [matches[i].id for i in clear] == [ranked[i][0] for i in clear]


def _isolated(ranked: list[tuple[str, float]], i: int) -> bool:
    score = ranked[i][1]
    neighbours = [ranked[j][1] for j in (i - 1, i + 1) if 0 <= j < len(ranked)]
    return all(abs(score - other) > 10 * SCORE_TOL * max(1.0, abs(score)) for other in neighbours)


def bits(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)


# ----------------------------------------------------------------------------------------------- upsert
def test_upsert_every_record_form(plane: Plane):
    index = plane.new_index(dimension=4, metric="dotproduct")
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((14, 4)).astype(np.float32)
    forms: list[Any] = [
        [Vector("v0", rows[0], metadata={"form": "vector"}), Vector("v1", list(rows[1]))],
        [("t0", rows[2]), ("t1", rows[3].tolist(), {"form": "tuple"})],
        [
            {"id": "d0", "values": rows[4], "metadata": {"form": "dict"}},
            {"id": "d1", "values": rows[5], "sparse_values": {"indices": [3, 9], "values": [0.5, -1.5]}},
        ],
        ((f"g{i}", rows[6 + i], {"form": "generator"}) for i in range(4)),
    ]
    for records in forms:
        result = index.upsert(records, "forms", show_progress=False)
        assert isinstance(result, UpsertResult)
        assert result.ok
    matrix_result = index.upsert(
        rows[10:14], "forms", ids=["m0", "m1", "m2", "m3"], metadata=[{"form": "matrix"}, None, None, None]
    )
    assert matrix_result.upserted_count == 4
    assert matrix_result.failed == []

    expected_rows = {"v0": 0, "v1": 1, "t0": 2, "t1": 3, "d0": 4, "d1": 5}
    expected_rows.update({f"g{i}": 6 + i for i in range(4)})
    expected_rows.update({f"m{i}": 10 + i for i in range(4)})
    fetched = index.fetch(list(expected_rows), "forms").vectors
    assert set(fetched) == set(expected_rows)
    for record_id, row in expected_rows.items():
        assert np.array_equal(bits(fetched[record_id].values), bits(rows[row])), record_id
    assert fetched["v0"].metadata == {"form": "vector"}
    assert fetched["v1"].metadata is None
    assert fetched["t1"].metadata == {"form": "tuple"}
    assert fetched["g3"].metadata == {"form": "generator"}
    assert fetched["m0"].metadata == {"form": "matrix"}
    assert fetched["m1"].metadata is None
    assert fetched["d1"].sparse_values == SparseValues.of([3, 9], [0.5, -1.5])
    assert index.describe_index_stats().namespaces["forms"].vector_count == 14


def test_upsert_batches_concurrently(plane: Plane):
    index = plane.new_index(dimension=8)
    ids, matrix, metadata = make_data(250, 8, seed=2)
    records = [(i, v, m) for i, v, m in zip(ids, matrix, metadata, strict=True)]
    result = index.upsert(records, "b", batch_size=37, max_concurrency=3, show_progress=False)
    assert (result.upserted_count, result.failed) == (250, [])
    assert index.describe_index_stats().namespaces["b"].vector_count == 250
    matrix_result = index.upsert(matrix, "m", ids=ids, batch_size=100, max_concurrency=1)
    assert matrix_result.upserted_count == 250
    assert index.describe_index_stats().namespaces["m"].vector_count == 250


def test_upsert_splits_large_inputs_under_the_request_limit(plane: Plane):
    """1500 x 384 floats: one protobuf-sized batch would be a 4.5 MB JSON body, over the 2 MB limit."""
    index = plane.new_index(dimension=384)
    matrix = (np.random.default_rng(15).standard_normal((1500, 384)) * 1e-3).astype(np.float32)
    ids = [f"big-{i}" for i in range(1500)]
    result = index.upsert(matrix, "big", ids=ids)
    assert (result.upserted_count, result.failed) == (1500, [])
    assert index.describe_index_stats().namespaces["big"].vector_count == 1500


def test_upsert_consumes_a_generator_lazily(plane: Plane, server: LocalServer):
    index = plane.new_index(dimension=4)
    name = index.raw.name
    ids, matrix, _ = make_data(60, 4, seed=3)
    observed: list[int] = []
    with PineconeClient(KEY, server.url, transport="rest") as observer:
        probe = observer.index(name)

        def records() -> Iterator[tuple[str, np.ndarray]]:
            for position, (record_id, row) in enumerate(zip(ids, matrix, strict=True)):
                if position in (10, 30, 50):
                    # With one send in flight, everything before this batch was written already, and
                    # nothing after it was read yet.
                    observed.append(len(probe.fetch(ids, "lazy").vectors))
                yield record_id, row

        result = index.upsert(records(), "lazy", batch_size=10, max_concurrency=1)
    assert result.upserted_count == 60
    assert observed == [10, 30, 50]


def test_upsert_from_dataframe_without_pandas(plane: Plane):
    class Frame:
        """The two things upsert_from_dataframe uses: ``columns`` and column indexing."""

        def __init__(self, columns: dict[str, list[Any]]) -> None:
            self._columns = columns
            self.columns = list(columns)

        def __getitem__(self, name: str) -> list[Any]:
            return self._columns[name]

    index = plane.new_index(dimension=3)
    frame = Frame(
        {
            "id": ["a", "b", "c"],
            "values": [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [1.0, 0.0, 0.0]],
            "metadata": [{"k": "a"}, float("nan"), None],
        }
    )
    result = index.upsert_from_dataframe(frame, "df", batch_size=2, show_progress=False)
    assert (result.upserted_count, result.failed) == (3, [])
    fetched = index.fetch(["a", "b", "c"], "df").vectors
    assert fetched["a"].metadata == {"k": "a"}
    assert fetched["b"].metadata is None
    assert np.array_equal(fetched["c"].values, np.float32([1, 0, 0]))
    with pytest.raises(RecordError, match="unknown columns"):
        index.upsert_from_dataframe(Frame({"id": ["x"], "values": [[1, 2, 3]], "extra": [1]}), "df")


def test_upsert_from_pandas_dataframe(plane: Plane):
    pd = pytest.importorskip("pandas", reason="pandas is optional")
    index = plane.new_index(dimension=2)
    frame = pd.DataFrame({"id": ["p", "q"], "values": [[1.0, 2.0], [3.0, 4.0]], "metadata": [{"x": 1}, None]})
    assert index.upsert_from_dataframe(frame, "pd").upserted_count == 2
    assert index.fetch(["p"], "pd").vectors["p"].metadata == {"x": 1}


# ------------------------------------------------------------------------------- upsert failure reporting
def test_upsert_reports_rejected_batches_and_writes_the_rest(plane: Plane, caplog: pytest.LogCaptureFixture):
    index = plane.new_index(dimension=4)
    ids, matrix, _ = make_data(50, 4, seed=4)
    too_big = {"text": "x" * 50_000}  # over the engine's 40 KB metadata limit, well within a request
    calls: list[int] = []
    send = index.raw._transport.call

    if plane.mode == "async":

        async def counted(op: Any, timeout: float | None = None) -> Any:
            calls.append(1)
            return await send(op, timeout)
    else:

        def counted(op: Any, timeout: float | None = None) -> Any:  # type: ignore[misc]
            calls.append(1)
            return send(op, timeout)

    index.raw._transport.call = counted
    try:
        records = (
            (record_id, row, too_big if position == 25 else {"n": position})
            for position, (record_id, row) in enumerate(zip(ids, matrix, strict=True))
        )
        with caplog.at_level(logging.WARNING, logger="pinecone_rag.client._batching"):
            result = index.upsert(records, "fail", batch_size=10, max_concurrency=1)
    finally:
        del index.raw._transport.call
    assert len(calls) == 5, "a rejected batch (INVALID_ARGUMENT) must not be retried"
    assert result.upserted_count == 40
    assert not result.ok
    assert len(result.failed) == 1
    assert result.failed[0].ids == ids[20:30]
    assert result.failed_ids == ids[20:30]
    assert isinstance(result.failed[0].error, InvalidArgumentError)
    assert "metadata" in str(result.failed[0].error).lower()
    assert "upsert: 10 of 50 records were not written (1 failed batch; " in caplog.text
    with pytest.raises(UpsertError) as caught:
        result.raise_for_failures()
    assert (caught.value.failed_ids, caught.value.upserted_count) == (ids[20:30], 40)
    assert caught.value.__cause__ is result.failed[0].error
    present = set(index.fetch(ids, "fail").vectors)
    assert present == set(ids[:20] + ids[30:])


def test_malformed_record_raises_before_its_batch_is_sent(plane: Plane):
    index = plane.new_index(dimension=4)
    ids, matrix, _ = make_data(40, 4, seed=5)

    def records() -> Iterator[Any]:
        for position, (record_id, row) in enumerate(zip(ids, matrix, strict=True)):
            yield (record_id, ["a", 1, 2, 3]) if position == 27 else (record_id, row)

    with pytest.raises(RecordError) as caught:
        index.upsert(records(), "bad", batch_size=10, max_concurrency=1)
    message = str(caught.value)
    assert "Record #27" in message
    assert ids[27] in message
    assert "values" in message
    present = set(index.fetch(ids, "bad").vectors)
    assert present == set(ids[:20]), "batches before the bad one are written, its own batch is not"

    with pytest.raises(RecordError, match=r"Record #1 .*dimension"):
        index.upsert([("a", [1, 2, 3, 4]), ("b", [1, 2, 3])], "bad")
    with pytest.raises(RecordError, match=r"Record #0.*NaN"):
        index.upsert([("nan", [1, float("nan"), 3, 4])], "bad")


def test_server_validation_errors_are_invalid_argument(plane: Plane):
    index = plane.new_index(dimension=4)
    index.upsert([("a", [1, 2, 3, 4])], "e")
    with pytest.raises(InvalidArgumentError) as wrong_dimension:
        index.query([1.0, 2.0, 3.0], namespace="e")
    assert "dimension" in wrong_dimension.value.message
    assert "3" in wrong_dimension.value.message
    assert "4" in wrong_dimension.value.message
    with pytest.raises(InvalidArgumentError) as zero_k:
        index.query([1.0, 2.0, 3.0, 4.0], top_k=0, namespace="e")
    assert "topK" in zero_k.value.message or "top_k" in zero_k.value.message
    upserted = index.upsert([("b", [1.0, 2.0])], "e")
    assert upserted.upserted_count == 0
    assert upserted.failed_ids == ["b"]
    assert isinstance(upserted.failed[0].error, InvalidArgumentError)
    assert "dimension" in str(upserted.failed[0].error)


def test_server_messages_are_the_same_on_every_transport(server: LocalServer):
    messages: dict[tuple[str, str], tuple[str, str]] = {}
    for mode, transport in COMBOS:
        plane = Plane(mode, transport, server.url)
        try:
            index = plane.new_index(dimension=4)
            found = []
            for kwargs in ({"vector": [1.0, 2.0]}, {"vector": [1.0, 2.0, 3.0, 4.0], "top_k": 0}):
                with pytest.raises(InvalidArgumentError) as caught:
                    index.query(**kwargs)
                found.append(caught.value.message)
            messages[mode, transport] = (found[0], found[1])
        finally:
            plane.close()
    assert len(set(messages.values())) == 1, messages


# ------------------------------------------------------------------------------------------------ query
@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_query_by_vector_and_id_matches_numpy(plane: Plane, metric: str):
    index = plane.new_index(dimension=16, metric=metric)
    ids, matrix, metadata = make_data(200, 16, seed=6)
    assert index.upsert(matrix, "q", ids=ids, metadata=metadata).upserted_count == 200
    rng = np.random.default_rng(60)
    for _ in range(3):
        query = rng.standard_normal(16).astype(np.float32)
        expected = dict(zip(ids, reference_scores(matrix, query, metric), strict=True))
        result = index.query(query, top_k=15, namespace="q")
        assert result.namespace == "q"
        assert_top_k(result.matches, expected, 15, metric)
        assert all(match.values is None and match.metadata is None for match in result.matches)
    by_id = index.query(id=ids[7], top_k=10, namespace="q")
    expected = dict(zip(ids, reference_scores(matrix, matrix[7], metric), strict=True))
    assert_top_k(by_id.matches, expected, 10, metric)
    if metric != "dotproduct":  # a record is its own nearest neighbour, except by dot product
        assert by_id.matches[0].id == ids[7]


def test_query_filter_and_includes(plane: Plane):
    index = plane.new_index(dimension=8, metric="cosine")
    ids, matrix, metadata = make_data(150, 8, seed=7)
    index.upsert(matrix, "f", ids=ids, metadata=metadata)
    query = np.random.default_rng(70).standard_normal(8).astype(np.float32)
    scores = reference_scores(matrix, query, "cosine")
    filters: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({"genre": {"$eq": "drama"}}, lambda m: m["genre"] == "drama"),
        ({"year": {"$gte": 2015}}, lambda m: m["year"] >= 2015),
        (
            {"$and": [{"genre": {"$in": ["news", "comedy"]}}, {"tags": "t3"}]},
            lambda m: m["genre"] in ("news", "comedy") and "t3" in m["tags"],
        ),
        (
            {"genre": {"$ne": "news"}, "year": {"$lt": 2010}},
            lambda m: m["genre"] != "news" and m["year"] < 2010,
        ),
    ]
    for query_filter, keep in filters:
        expected = {i: float(s) for i, s, m in zip(ids, scores, metadata, strict=True) if keep(m)}
        assert expected, query_filter
        result = index.query(query, top_k=12, namespace="f", filter=query_filter, include_metadata=True)
        assert_top_k(result.matches, expected, 12, "cosine")
        for match in result.matches:
            assert match.metadata == metadata[ids.index(match.id)]
            assert match.values is None
    with_values = index.query(query, top_k=5, namespace="f", include_values=True)
    for match in with_values.matches:
        assert np.array_equal(bits(match.values), bits(matrix[ids.index(match.id)]))
        assert match.metadata is None


def test_query_sparse_index(plane: Plane):
    index = plane.new_index(dimension=None, metric="dotproduct", vector_type="sparse")
    rng = np.random.default_rng(8)
    sparse: dict[str, dict[int, float]] = {}
    for i in range(60):
        indices = sorted(rng.choice(50, size=6, replace=False).tolist())
        sparse[f"s{i:02d}"] = dict(zip(indices, rng.random(6).astype(np.float32).tolist(), strict=True))
    records = [
        {"id": record_id, "sparse_values": {"indices": list(entries), "values": list(entries.values())}}
        for record_id, entries in sparse.items()
    ]
    assert index.upsert(records, "sp").upserted_count == 60
    query = {3: 0.5, 10: 1.0, 22: 0.25, 41: 2.0}
    result = index.query(
        sparse_vector={"indices": list(query), "values": list(query.values())}, top_k=8, namespace="sp"
    )
    expected = {record_id: sparse_dot(entries, query) for record_id, entries in sparse.items()}
    nonzero = {record_id: score for record_id, score in expected.items() if score > 0}
    assert_top_k(result.matches, nonzero, min(8, len(nonzero)), "dotproduct")
    fetched = index.fetch(["s00"], "sp").vectors["s00"]
    assert fetched.values is None
    assert fetched.sparse_values == SparseValues.of(list(sparse["s00"]), list(sparse["s00"].values()))


def test_query_hybrid_on_dotproduct_index(plane: Plane):
    index = plane.new_index(dimension=6, metric="dotproduct")
    ids, matrix, _ = make_data(80, 6, seed=9)
    rng = np.random.default_rng(90)
    sparse = [dict(zip(rng.choice(30, 4, replace=False).tolist(), rng.random(4).tolist(), strict=True))]
    sparse += [
        dict(zip(rng.choice(30, 4, replace=False).tolist(), rng.random(4).tolist(), strict=True))
        for _ in range(79)
    ]
    sparse_f32 = [{i: float(np.float32(v)) for i, v in entries.items()} for entries in sparse]
    records = [
        Vector(record_id, row, SparseValues.of(list(entries), list(entries.values())))
        for record_id, row, entries in zip(ids, matrix, sparse_f32, strict=True)
    ]
    index.upsert(records, "h")
    dense_query = rng.standard_normal(6).astype(np.float32)
    sparse_query = {1: 1.0, 5: 0.5, 17: 2.0, 29: 1.5}
    result = index.query(
        dense_query,
        sparse_vector=SparseValues.of(list(sparse_query), list(sparse_query.values())),
        top_k=10,
        namespace="h",
    )
    dense_scores = reference_scores(matrix, dense_query, "dotproduct")
    expected = {
        record_id: float(dense_scores[row]) + sparse_dot(sparse_f32[row], sparse_query)
        for row, record_id in enumerate(ids)
    }
    assert_top_k(result.matches, expected, 10, "dotproduct")


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_query_namespaces_merges_like_numpy(plane: Plane, metric: str):
    index = plane.new_index(dimension=8, metric=metric)
    namespaces = ["qa", "qb", "qc"]
    everything: dict[str, float] = {}
    query = np.random.default_rng(100).standard_normal(8).astype(np.float32)
    for seed, namespace in enumerate(namespaces):
        ids, matrix, metadata = make_data(40, 8, seed=10 + seed, prefix=f"{namespace}-")
        index.upsert(matrix, namespace, ids=ids, metadata=metadata)
        everything.update(zip(ids, reference_scores(matrix, query, metric).tolist(), strict=True))
    result = index.query_namespaces(query, [*namespaces, "qa", "missing"], metric, top_k=12)
    assert_top_k(result.matches, everything, 12, metric)
    filtered = index.query_namespaces(
        query, namespaces, metric, top_k=5, filter={"genre": "news"}, include_metadata=True
    )
    news = {record_id: score for record_id, score in everything.items() if int(record_id[-4:]) % 3 == 2}
    assert_top_k(filtered.matches, news, 5, metric)
    assert all(match.metadata is not None and match.metadata["genre"] == "news" for match in filtered)


# ------------------------------------------------------------------------------------------------ fetch
def test_fetch_round_trips_float32_bits(plane: Plane):
    # The engine refuses vectors whose squared length overflows float32, so the largest values here
    # stay below that; denormals, -0.0 and values that round in float32 are the interesting bits.
    index = plane.new_index(dimension=10, metric="dotproduct")
    awkward = np.array(
        [1e-30, 1e16, 0.1, np.pi, -0.0, 1.17549435e-38, 9.9e16, 1.4e-45, -2.5e-7, 16777217.0],
        dtype=np.float32,
    )
    _, matrix, _ = make_data(20, 10, seed=11)
    written = index.upsert([("awkward", awkward), *((f"r{i}", row) for i, row in enumerate(matrix))], "bits")
    assert (written.upserted_count, written.failed) == (21, [])
    result = index.fetch(["awkward", "r3", "nope", "r19", "also-nope"], "bits")
    assert set(result.vectors) == {"awkward", "r3", "r19"}
    assert result.namespace == "bits"
    assert np.array_equal(bits(result.vectors["awkward"].values), bits(awkward))
    assert np.array_equal(bits(result.vectors["r3"].values), bits(matrix[3]))
    assert result.vectors["r19"].id == "r19"
    assert index.fetch(["nope"], "bits").vectors == {}
    assert index.fetch(["r0"], "other-namespace").vectors == {}


def test_fetch_by_metadata_pages(plane: Plane):
    index = plane.new_index(dimension=4)
    ids, matrix, metadata = make_data(90, 4, seed=12)
    index.upsert(matrix, "fm", ids=ids, metadata=metadata)
    wanted = {i for i, m in zip(ids, metadata, strict=True) if m["genre"] == "comedy"}
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = index.fetch_by_metadata({"genre": {"$eq": "comedy"}}, "fm", limit=7, pagination_token=token)
        pages += 1
        assert len(page.vectors) <= 7
        for record_id, vector in page.vectors.items():
            assert vector.metadata == metadata[ids.index(record_id)]
            assert np.array_equal(vector.values, matrix[ids.index(record_id)])
        seen.extend(page.vectors)
        token = page.next_token
        if not token:
            break
        assert pages < 20
    assert len(seen) == len(set(seen))
    assert set(seen) == wanted
    assert pages >= len(wanted) // 7
    none = index.fetch_by_metadata({"genre": "opera"}, "fm")
    assert (none.vectors, none.next_token) == ({}, None)


# ----------------------------------------------------------------------------------------------- update
def test_update_by_id(plane: Plane):
    index = plane.new_index(dimension=4, metric="dotproduct")
    index.upsert(
        [
            ("a", [1, 2, 3, 4], {"keep": "yes", "change": 1}),
            {"id": "b", "values": [4, 3, 2, 1], "sparse_values": {"indices": [1], "values": [1.0]}},
        ],
        "u",
    )
    new_values = np.float32([0.5, -0.25, 1e-3, 7.0])
    assert index.update("a", values=new_values, namespace="u").matched_records in (None, 1)
    index.update("a", set_metadata={"change": "two", "added": True}, namespace="u")
    index.update("b", sparse_values={"indices": [2, 7], "values": [0.25, 3.0]}, namespace="u")
    fetched = index.fetch(["a", "b"], "u").vectors
    assert np.array_equal(bits(fetched["a"].values), bits(new_values))
    assert fetched["a"].metadata == {"keep": "yes", "change": "two", "added": True}
    assert fetched["b"].sparse_values == SparseValues.of([2, 7], [0.25, 3.0])
    assert np.array_equal(fetched["b"].values, np.float32([4, 3, 2, 1]))


def test_update_by_filter_and_dry_run(plane: Plane):
    index = plane.new_index(dimension=4)
    ids, matrix, metadata = make_data(60, 4, seed=13)
    index.upsert(matrix, "uf", ids=ids, metadata=metadata)
    news = [i for i, m in zip(ids, metadata, strict=True) if m["genre"] == "news"]
    dry = index.update(set_metadata={"flag": "dry"}, filter={"genre": "news"}, namespace="uf", dry_run=True)
    assert dry.matched_records == len(news)
    assert index.fetch_by_metadata({"flag": "dry"}, "uf").vectors == {}
    done = index.update(set_metadata={"flag": "hit"}, filter={"genre": "news"}, namespace="uf")
    assert done.matched_records == len(news)
    flagged = index.fetch_by_metadata({"flag": "hit"}, "uf", limit=1000).vectors
    assert set(flagged) == set(news)
    some = flagged[news[0]].metadata
    assert some is not None
    assert some == {**metadata[ids.index(news[0])], "flag": "hit"}


# ----------------------------------------------------------------------------------------------- delete
def test_delete_by_ids_filter_and_all(plane: Plane):
    index = plane.new_index(dimension=4)
    ids, matrix, metadata = make_data(1200, 4, seed=14)
    assert index.upsert(matrix, "del", ids=ids, metadata=metadata).upserted_count == 1200
    doomed = ids[:1100] + [f"missing-{i}" for i in range(20)]
    assert index.delete(doomed, namespace="del") is None
    assert index.describe_index_stats().namespaces["del"].vector_count == 100
    assert index.fetch(ids[1095:1105], "del").vectors.keys() == set(ids[1100:1105])
    survivors = ids[1100:]
    index.delete(filter={"genre": {"$in": ["drama", "comedy"]}}, namespace="del")
    expected = [i for i in survivors if metadata[ids.index(i)]["genre"] == "news"]
    assert sorted(id_ for page in index.list(namespace="del") for id_ in page) == sorted(expected)
    index.upsert([("keep", [1, 1, 1, 1])], "other")
    index.delete(delete_all=True, namespace="del")
    stats = index.describe_index_stats()
    assert "del" not in stats.namespaces
    assert stats.namespaces["other"].vector_count == 1


# ------------------------------------------------------------------------------------------------- list
def test_list_and_list_paginated_in_bitwise_order(plane: Plane):
    index = plane.new_index(dimension=2)
    # ASCII ids (the engine, like Pinecone, rejects others); bitwise: digits < upper < _ < lower.
    ids = ["doc#10", "doc#9", "doc#B", "doc#a", "doc#-", "doc#Z", "doc#z", "doc#~", "doc#_", "other-1", "doc"]
    assert index.upsert([(record_id, [1.0, 0.5]) for record_id in ids], "l").ok
    bitwise = sorted(ids, key=lambda text: text.encode())
    prefixed = [i for i in bitwise if i.startswith("doc#")]

    pages = index.list(prefix="doc#", namespace="l", limit=3)
    assert all(0 < len(page) <= 3 for page in pages)
    assert [i for page in pages for i in page] == prefixed
    assert [i for page in index.list(namespace="l") for i in page] == bitwise

    first = index.list_paginated("doc#", namespace="l", limit=4)
    assert first.ids == prefixed[:4]
    assert first.next_token
    collected = list(first.ids)
    token = first.next_token
    while token:
        page = index.list_paginated("doc#", namespace="l", limit=4, pagination_token=token)
        collected.extend(page.ids)
        token = page.next_token
    assert collected == prefixed
    assert index.list_paginated("zzz", namespace="l").ids == []
    assert index.list(namespace="empty") == []


# ------------------------------------------------------------------------------------- stats, namespaces
def test_describe_index_stats(plane: Plane):
    index = plane.new_index(dimension=5, metric="euclidean")
    for namespace, count in (("s1", 3), ("s2", 7)):
        _, matrix, _ = make_data(count, 5, seed=count)
        index.upsert(matrix, namespace, ids=[f"{namespace}-{i}" for i in range(count)])
    stats = index.describe_index_stats()
    assert {name: summary.vector_count for name, summary in stats.namespaces.items()} == {"s1": 3, "s2": 7}
    assert stats.total_vector_count == 10
    assert stats.dimension == 5
    assert stats.metric == "euclidean"
    assert stats.vector_type == "dense"


def test_namespace_lifecycle(plane: Plane):
    index = plane.new_index(dimension=2)
    created = index.create_namespace("p-created")
    assert (created.name, created.record_count) == ("p-created", 0)
    with pytest.raises(AlreadyExistsError) as exists:
        index.create_namespace("p-created")
    assert exists.value.status == 409
    for number in range(4):
        index.upsert([(f"r{i}", [1.0, float(i)]) for i in range(number + 1)], f"p-{number}")
    index.upsert([("x", [1.0, 1.0])], "q-other")
    described = index.describe_namespace("p-2")
    assert (described.name, described.record_count) == ("p-2", 3)

    listed = index.list_namespaces(prefix="p-", limit=2)
    names = [namespace.name for namespace in listed]
    assert sorted(names) == ["p-0", "p-1", "p-2", "p-3", "p-created"]
    assert {n.name: n.record_count for n in listed}["p-3"] == 4
    assert {namespace.name for namespace in index.list_namespaces()} >= {*names, "q-other"}
    page = index.list_namespaces_paginated(prefix="p-", limit=2)
    assert len(page.namespaces) == 2
    assert page.next_token
    rest = index.list_namespaces_paginated(prefix="p-", limit=10, pagination_token=page.next_token)
    assert [n.name for n in page.namespaces + rest.namespaces] == names
    assert rest.next_token is None

    assert index.delete_namespace("p-1") is None
    with pytest.raises(NotFoundError) as missing:
        index.describe_namespace("p-1")
    assert missing.value.status == 404
    with pytest.raises(NotFoundError):
        index.delete_namespace("p-1")
    assert "p-1" not in index.describe_index_stats().namespaces


# ------------------------------------------------------------------------------------- real embeddings
def test_real_embeddings_exact_top_10(plane: Plane):
    files = [DATA_DIR / name for name in ("base.npy", "queries.npy", "groundtruth_top100.npy")]
    missing = [path.name for path in files if not path.exists()]
    if missing:
        pytest.skip(f"real-embeddings data set not found at {DATA_DIR} (missing {', '.join(missing)})")
    base, queries, truth = (np.load(path) for path in files)
    index = plane.new_index(dimension=base.shape[1], metric="cosine")
    ids = [f"doc-{row}" for row in range(len(base))]
    result = index.upsert(base, "real", ids=ids)
    assert (result.upserted_count, result.failed) == (len(base), [])
    for q in range(0, 200, 10):
        expected = dict(zip(ids, reference_scores(base, queries[q], "cosine").tolist(), strict=True))
        matches = index.query(queries[q], top_k=10, namespace="real").matches
        assert_top_k(matches, expected, 10, "cosine")
        truth_ids = [ids[row] for row in truth[q, :10]]
        differ = [(got.id, want) for got, want in zip(matches, truth_ids, strict=True) if got.id != want]
        for got, want in differ:  # only ties may swap
            assert abs(expected[got] - expected[want]) <= SCORE_TOL

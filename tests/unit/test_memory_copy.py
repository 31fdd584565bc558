"""The in-memory copy of a clustered namespace's vectors (``EngineConfig.memory_copy_max_bytes``).

Two engines hold the same records: one without the copy (``memory_copy_max_bytes=0``: scans read the
mapped cluster files) and one with the default limit (scans read the copy). Whatever the query, both must
answer alike: the same ids in the same order, the same scores up to float32 rounding (the copy keeps
cosine rows as unit vectors, so their products round differently).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from pinecone_rag.server.engine import IndexEngine
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.filters import parse_filter
from pinecone_rag.server.published import PublishedIndex
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import numpy.typing as npt

    from pinecone_rag.server.namespace import Namespace
    from pinecone_rag.server.records import Metadata, Metric

METRICS: tuple[Metric, ...] = ("cosine", "euclidean", "dotproduct")
DIM = 24
COUNT = 3000
GROUPS = ("a", "b", "c", "d", "e")
VECTOR_BYTES = COUNT * DIM * 4


def config(**overrides: Any) -> EngineConfig:
    """Small clusters (about 30 of 100 records), builds only when a test asks for one.

    ``exact_filter_records=0`` keeps filtered queries on the planned path, which reads the copy when
    there is one: the exact path would make a copy in the engine that is meant to have none.
    """
    options: dict[str, Any] = {
        "builder": False,
        "target_cluster_size": 100,
        "flat_records": 0,
        "exact_filter_records": 0,
        **overrides,
    }
    return EngineConfig(**options)


def dataset(seed: int, count: int = COUNT) -> tuple[npt.NDArray[np.float32], list[Metadata | None]]:
    """Gaussian blobs of different widths and lengths, with a group and a number per record."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, DIM)) * 3.0
    members = rng.integers(len(centers), size=count)
    vectors = centers[members] + rng.normal(size=(count, DIM)) * rng.uniform(0.3, 2.0, size=(count, 1))
    metadata: list[Metadata | None] = [
        {"g": GROUPS[i % len(GROUPS)], "n": float(i % 100)} for i in range(count)
    ]
    return vectors.astype(np.float32), metadata


def ids_of(count: int, start: int = 0) -> list[str]:
    return [f"r{i}" for i in range(start, start + count)]


def namespace_of(engine: IndexEngine) -> Namespace:
    namespace = engine._existing("")
    assert namespace is not None
    return namespace


def published(engine: IndexEngine) -> PublishedIndex:
    return namespace_of(engine).state.published


def open_and_build(
    directory: Path, metric: Metric, engine_config: EngineConfig, *, mode: str = "clustered"
) -> IndexEngine:
    """An engine over ``directory`` holding :func:`dataset`, built once (into clusters by default)."""
    engine = IndexEngine(directory, IndexSpec(DIM, metric, "dense"), engine_config)
    vectors, metadata = dataset(0)
    engine.upsert("", UpsertBatch(ids_of(COUNT), vectors, [None] * COUNT, metadata))
    report = namespace_of(engine).build()
    assert report is not None
    assert report.mode == mode
    return engine


@pytest.fixture(params=METRICS)
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[IndexEngine, IndexEngine]]:
    """(without the copy, with the copy) over the same records, for each metric."""
    metric: Metric = request.param
    plain = open_and_build(tmp_path / "plain", metric, config(memory_copy_max_bytes=0))
    copied = open_and_build(tmp_path / "copied", metric, config())
    yield plain, copied
    plain.close()
    copied.close()


def search(
    engine: IndexEngine, vector: npt.NDArray[np.float32], top_k: int, **options: Any
) -> tuple[list[str], list[float]]:
    """The ids and scores of one query."""
    matches, _ = engine.query(
        "",
        top_k=top_k,
        vector=vector,
        sparse=None,
        record_id=None,
        flt=options.pop("flt", None),
        include_values=False,
        include_metadata=False,
        **options,
    )
    return [match.record.id for match in matches], [match.score for match in matches]


def assert_agree(
    plain: IndexEngine, copied: IndexEngine, queries: npt.NDArray[np.float32], top_k: int, **options: Any
) -> None:
    """Every query gets the same ids in the same order and the same scores from both engines.

    The copy's cosine rows are unit vectors, so a score may differ in its last float32 bit: records
    whose scores agree that closely (1e-7, seen in long result lists) may trade places, nothing else.
    """
    for query in queries:
        plain_ids, plain_scores = search(plain, query, top_k, **dict(options))
        copied_ids, copied_scores = search(copied, query, top_k, **dict(options))
        assert copied_scores == pytest.approx(plain_scores, rel=1e-5, abs=1e-6)
        if copied_ids == plain_ids:
            continue
        assert len(copied_ids) == len(plain_ids)
        plain_score_of = dict(zip(plain_ids, plain_scores, strict=True))
        for place, (plain_id, copied_id) in enumerate(zip(plain_ids, copied_ids, strict=True)):
            if plain_id != copied_id:
                # A record in another place, or one that tied with the last record kept.
                score = plain_score_of.get(copied_id, plain_scores[-1])
                assert score == pytest.approx(plain_scores[place], rel=1e-6, abs=1e-7), (place, copied_id)


def queries(seed: int, count: int = 40) -> npt.NDArray[np.float32]:
    """Queries near the data (some of its vectors, perturbed) and an eighth far from it, long ones."""
    rng = np.random.default_rng(seed)
    vectors, _ = dataset(0)
    far_count = count // 8
    near = vectors[rng.integers(COUNT, size=count - far_count)]
    near += rng.normal(size=near.shape) * 0.5
    far = rng.normal(size=(far_count, DIM)) * 20.0
    return np.concatenate([near, far]).astype(np.float32)


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[PublishedIndex]]:
    """Records which published index ran :meth:`PublishedIndex._scan_nearest` and ``_scan_arena``."""
    calls: dict[str, list[PublishedIndex]] = defaultdict(list)
    for name in ("_scan_nearest", "_scan_arena"):
        original: Callable[..., Any] = getattr(PublishedIndex, name)

        def spy(
            self: PublishedIndex, *args: Any, _name: str = name, _original: Any = original, **kwargs: Any
        ) -> Any:
            calls[_name].append(self)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(PublishedIndex, name, spy)
    return calls


def ran(calls: list[PublishedIndex], index: PublishedIndex) -> int:
    return sum(entry is index for entry in calls)


# --- when there is a copy ---------------------------------------------------------------------------------


def test_copy_only_with_a_limit(engines: tuple[IndexEngine, IndexEngine]) -> None:
    """The default limit keeps a copy of a few hundred KiB of vectors; a limit of 0 keeps none."""
    plain, copied = engines
    assert not published(plain).has_arena
    assert published(copied).has_arena
    assert published(copied).centroids is not None
    assert len(published(copied).cluster_ids) == 30


@pytest.mark.parametrize("metric", METRICS)
def test_copy_only_when_the_vectors_fit(tmp_path: Path, metric: Metric) -> None:
    """The vectors' size (count x dimension x 4 bytes) is compared with the limit, inclusively."""
    over = open_and_build(tmp_path / "over", metric, config(memory_copy_max_bytes=VECTOR_BYTES - 1))
    exact = open_and_build(tmp_path / "exact", metric, config(memory_copy_max_bytes=VECTOR_BYTES))
    try:
        assert published(over).count == COUNT
        assert not published(over).has_arena
        assert published(exact).has_arena
        assert_agree(over, exact, queries(1, 10), 10)
    finally:
        over.close()
        exact.close()


def test_flat_index_has_no_copy(tmp_path: Path) -> None:
    """A namespace small enough to stay one flat cluster (no centroids) is scanned as it is."""
    engine = open_and_build(tmp_path, "cosine", config(flat_records=COUNT + 1), mode="flat")
    try:
        index = published(engine)
        assert index.centroids is None
        assert len(index.cluster_ids) == 1
        assert not index.has_arena
    finally:
        engine.close()


@pytest.mark.parametrize("limit", [-1, -(2 << 30)])
def test_negative_limit_is_rejected(limit: int) -> None:
    """A negative limit is a configuration error (0 turns the copy off)."""
    with pytest.raises(ValueError, match="memory_copy_max_bytes"):
        EngineConfig(memory_copy_max_bytes=limit)
    assert EngineConfig(memory_copy_max_bytes=0).memory_copy_max_bytes == 0
    assert EngineConfig().memory_copy_max_bytes == 2 << 30


# --- queries read the copy and answer alike ---------------------------------------------------------------


SCAN_FACTORS = (None, 0.5, 1.0, 2.5, 4.0)
"""With 30 clusters and the default 8-cluster probe: 4, 8, 20 and 30 of them (4.0 asks for 32)."""


def test_unfiltered_queries_agree(
    engines: tuple[IndexEngine, IndexEngine], scans: dict[str, list[PublishedIndex]]
) -> None:
    """Unfiltered dense queries plan by :func:`nearest_clusters` in both engines; only the copy's engine
    scans the copy, and the answers are the same whatever the scan factor."""
    plain, copied = engines
    for scan_factor in SCAN_FACTORS:
        for top_k in (1, 10, 57):
            assert_agree(plain, copied, queries(top_k, 16), top_k, scan_factor=scan_factor)
    asked = len(SCAN_FACTORS) * 3 * 16
    assert ran(scans["_scan_nearest"], published(plain)) == asked
    assert ran(scans["_scan_nearest"], published(copied)) == asked
    assert ran(scans["_scan_arena"], published(copied)) == asked
    assert ran(scans["_scan_arena"], published(plain)) == 0
    assert not published(plain).has_arena


def test_queries_wanting_more_than_the_probe_holds_agree(engines: tuple[IndexEngine, IndexEngine]) -> None:
    """A ``top_k`` above what the nearest clusters hold falls back to the full plan, in both engines."""
    plain, copied = engines
    for top_k in (900, COUNT + 10):
        assert_agree(plain, copied, queries(5, 3), top_k)
    assert_agree(plain, copied, queries(6, 2), 900, scan_factor=0.5)


def test_queries_with_max_candidates_agree(engines: tuple[IndexEngine, IndexEngine]) -> None:
    """``maxCandidates`` goes through the full plan; the copy's engine reads the copy there too."""
    plain, copied = engines
    for max_candidates in (10, 150, 1000, 100_000):
        for scan_factor in (None, 2.0):
            options = {"scan_factor": scan_factor, "max_candidates": max_candidates}
            assert_agree(plain, copied, queries(max_candidates, 8), 10, **options)


FILTERS: list[dict[str, Any]] = [
    {"g": {"$eq": "a"}},
    {"n": {"$lt": 3}},
    {"g": {"$in": ["b", "c"]}, "n": {"$gte": 50}},
    {"g": {"$eq": "nobody"}},
]


def test_filtered_queries_agree(
    engines: tuple[IndexEngine, IndexEngine], scans: dict[str, list[PublishedIndex]]
) -> None:
    """Filtered queries (planned, expanding until ``top_k`` matches) read the copy's rows alike."""
    plain, copied = engines
    for raw in FILTERS:
        flt = parse_filter(raw)
        for top_k in (1, 10, 200):
            assert_agree(plain, copied, queries(8, 6), top_k, flt=flt)
            assert_agree(plain, copied, queries(9, 3), top_k, flt=flt, scan_factor=2.0, max_candidates=500)
    assert not scans["_scan_nearest"]
    assert not published(plain).has_arena


@pytest.mark.parametrize("metric", METRICS)
def test_selective_filter_makes_the_copy_on_demand(tmp_path: Path, metric: Metric) -> None:
    """Without a standing copy, the first selective filter makes one (exact results either way)."""
    plain = open_and_build(
        tmp_path / "plain", metric, config(memory_copy_max_bytes=0, exact_filter_records=700)
    )
    copied = open_and_build(tmp_path / "copied", metric, config(exact_filter_records=700))
    try:
        assert not published(plain).has_arena
        flt = parse_filter({"n": {"$lt": 20}})  # 600 records
        assert_agree(plain, copied, queries(10, 8), 25, flt=flt)
        assert published(plain).has_arena
        assert_agree(plain, copied, queries(11, 8), 25)
    finally:
        plain.close()
        copied.close()


# --- with newer writes, rebuilt, reopened -----------------------------------------------------------------


def overwrite_and_delete(engine: IndexEngine, seed: int) -> None:
    """Replace 400 records (new vectors, some new groups), delete 200 others, add 100 new ones."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(COUNT, size=600, replace=False)
    replaced, deleted = chosen[:400], chosen[400:]
    vectors, _ = dataset(seed + 1, 500)
    ids = [f"r{i}" for i in replaced.tolist()] + ids_of(100, COUNT)
    metadata: list[Metadata | None] = [{"g": GROUPS[i % 2], "n": float(i % 7)} for i in range(500)]
    engine.upsert("", UpsertBatch(ids, vectors, [None] * len(ids), metadata))
    engine.delete_ids("", [f"r{i}" for i in deleted.tolist()])


def assert_all_agree(plain: IndexEngine, copied: IndexEngine, seed: int) -> None:
    """Unfiltered with every scan factor, capped, and filtered queries."""
    for scan_factor in (None, 0.5, 3.0):
        assert_agree(plain, copied, queries(seed, 16), 10, scan_factor=scan_factor)
    assert_agree(plain, copied, queries(seed + 1, 8), 100, max_candidates=400)
    assert_agree(plain, copied, queries(seed + 2, 2), 2500)
    for raw in FILTERS[:3]:
        assert_agree(plain, copied, queries(seed + 3, 6), 20, flt=parse_filter(raw))


def test_hidden_rows_are_skipped_alike(engines: tuple[IndexEngine, IndexEngine]) -> None:
    """Rows that newer writes replaced or deleted (not yet rebuilt) are skipped in the copy too; after
    the next build the copy is made anew and still answers alike."""
    plain, copied = engines
    for engine in engines:
        overwrite_and_delete(engine, seed=12)
    hidden = namespace_of(copied).state.hidden_published
    assert sum(len(rows) for rows in hidden.values()) == 600
    assert hidden == namespace_of(plain).state.hidden_published
    assert_all_agree(plain, copied, seed=13)

    old = published(copied)
    for engine in engines:
        assert namespace_of(engine).build() is not None
    assert published(copied) is not old
    assert published(copied).has_arena
    assert not published(plain).has_arena
    assert published(copied).count == COUNT - 200 + 100
    assert not namespace_of(copied).state.hidden_published
    assert_all_agree(plain, copied, seed=14)


def test_reopened_index_makes_its_copy(tmp_path: Path) -> None:
    """Opening a namespace from disk makes the copy when it fits, and only then."""
    plain = open_and_build(tmp_path / "plain", "euclidean", config(memory_copy_max_bytes=0))
    copied = open_and_build(tmp_path / "copied", "euclidean", config())
    plain.close()
    copied.close()
    spec = IndexSpec(DIM, "euclidean", "dense")
    plain = IndexEngine(tmp_path / "plain", spec, config(memory_copy_max_bytes=0))
    copied = IndexEngine(tmp_path / "copied", spec, config())
    try:
        assert published(copied).count == COUNT
        assert published(copied).has_arena
        assert not published(plain).has_arena
        assert_all_agree(plain, copied, seed=15)
    finally:
        plain.close()
        copied.close()

"""When the engine hands memory freed by large builds back to the OS (IndexEngine._release_when_quiet)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pytest

from pinecone_rag.server import engine as engine_module
from pinecone_rag.server.engine import IndexEngine
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    from pathlib import Path

    from pinecone_rag.server.namespace import Namespace


def engine_with_writes(tmp_path: Path, **config: float) -> tuple[IndexEngine, list[Namespace]]:
    """An engine (builder off) with two namespaces, each written just now."""
    settings = EngineConfig(builder=False, **config)  # type: ignore[arg-type]
    engine = IndexEngine(tmp_path, IndexSpec(4, "cosine", "dense"), settings)
    dense = np.ones((2, 4), dtype=np.float32)
    for name in ("a", "b"):
        engine.upsert(name, UpsertBatch(["x", "y"], dense, [None, None], [None, None]))
    namespaces = [engine._existing(name) for name in ("a", "b")]
    assert all(namespace is not None for namespace in namespaces)
    return engine, [namespace for namespace in namespaces if namespace is not None]


@pytest.fixture
def releases(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the engine's calls of release_free_memory instead of trimming this test process's heap."""
    calls: list[int] = []

    def record() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(engine_module, "release_free_memory", record)
    return calls


def test_nothing_is_released_without_a_large_build(tmp_path: Path, releases: list[int]) -> None:
    engine, namespaces = engine_with_writes(tmp_path, release_idle_s=1.0)
    latest = max(namespace.last_write for namespace in namespaces)
    assert not engine._release_when_quiet(latest + 60.0, namespaces)
    assert releases == []
    engine.close()


def test_release_waits_until_every_namespace_is_quiet(tmp_path: Path, releases: list[int]) -> None:
    engine, namespaces = engine_with_writes(tmp_path, release_idle_s=5.0)
    engine._release_pending = True
    first, last = sorted(namespace.last_write for namespace in namespaces)
    # Until the last written namespace has been quiet for 5 s, the memory is kept.
    assert not engine._release_when_quiet(first + 4.9, namespaces)
    assert not engine._release_when_quiet(last + 4.9, namespaces)
    assert releases == []
    # Every namespace quiet for 5 s: hand it back, once.
    assert engine._release_when_quiet(last + 5.0, namespaces)
    assert not engine._release_when_quiet(last + 60.0, namespaces)
    assert releases == [1]
    engine.close()


def test_a_large_build_marks_memory_for_release(
    tmp_path: Path, releases: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The builder thread itself: a build of at least RELEASE_AFTER_RECORDS records, then quiet."""
    monkeypatch.setattr(engine_module, "RELEASE_AFTER_RECORDS", 2)
    config = EngineConfig(build_min_records=1, build_idle_s=0.05, release_idle_s=0.2)
    engine = IndexEngine(tmp_path, IndexSpec(4, "cosine", "dense"), config)
    engine.upsert("a", UpsertBatch(["x", "y"], np.ones((2, 4), np.float32), [None, None], [None, None]))
    deadline = time.monotonic() + 30.0
    while not releases and time.monotonic() < deadline:
        time.sleep(0.02)
    assert releases == [1]
    engine.close()

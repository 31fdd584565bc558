"""Deleting a namespace while writes to the same name arrive: no acknowledged write is removed."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from pinecone_rag.server import engine as engine_module
from pinecone_rag.server.engine import IndexEngine
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

DIM = 4


def batch(record_id: str) -> UpsertBatch:
    return UpsertBatch([record_id], np.ones((1, DIM), dtype=np.float32), [None], [None])


def test_an_upsert_racing_a_delete_of_its_namespace_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = IndexEngine(tmp_path, IndexSpec(DIM, "cosine", "dense"), EngineConfig(builder=False))
    try:
        engine.upsert("ns", batch("old"))
        removing = threading.Event()
        release = threading.Event()
        remove_tree = engine_module._remove_tree

        def slow_remove(directory: Path) -> None:
            removing.set()
            assert release.wait(10)
            remove_tree(directory)

        monkeypatch.setattr(engine_module, "_remove_tree", slow_remove)
        deleter = threading.Thread(target=engine.delete_namespace, args=("ns",))
        deleter.start()
        assert removing.wait(10)
        acked = threading.Event()

        def write() -> None:
            engine.upsert("ns", batch("new"))
            acked.set()

        writer = threading.Thread(target=write)
        writer.start()
        # The write waits for the files of the deleted namespace to be gone...
        assert not acked.wait(0.2)
        release.set()
        deleter.join(10)
        writer.join(10)
        assert acked.is_set()
        # ...so what it acknowledged is what the namespace holds afterwards, also after a restart.
        records, _ = engine.fetch("ns", ["old", "new"])
        assert [record.id for record in records] == ["new"]
        engine.close()
        engine = IndexEngine(tmp_path, IndexSpec(DIM, "cosine", "dense"), EngineConfig(builder=False))
        records, _ = engine.fetch("ns", ["old", "new"])
        assert [record.id for record in records] == ["new"]
    finally:
        engine.close()

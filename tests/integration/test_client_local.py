"""``PineconeClient.local()`` and ``AsyncPineconeClient.local()``: the bundled engine, in-process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pytest

from pinecone_rag import AsyncPineconeClient, ConfigurationError, PineconeClient

if TYPE_CHECKING:
    from pathlib import Path


def data_dir_of(client: PineconeClient | AsyncPineconeClient) -> Path:
    server = client.local_server
    assert server is not None
    return server.settings.data_dir


def test_local_without_path_uses_a_temporary_dir_deleted_on_close():
    with PineconeClient.local() as pc:
        directory = data_dir_of(pc)
        assert directory.is_dir()
        pc.create_index("tmp", dimension=3)
        index = pc.index("tmp")
        assert index.upsert([("a", [1.0, 2.0, 3.0])]).upserted_count == 1
        assert index.query([1.0, 2.0, 3.0], top_k=1).ids == ["a"]
    assert not directory.exists()
    assert pc.local_server is None


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_local_with_path_keeps_data_across_sessions(tmp_path: Path, transport: str):
    path = tmp_path / "engine"
    values = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    ids = [f"r{i}" for i in range(5)]
    with PineconeClient.local(path, transport=transport) as pc:
        pc.create_index("kept", dimension=4, metric="euclidean")
        assert pc.index("kept").upsert(values, "ns", ids=ids, metadata=[{"i": i} for i in range(5)]).ok
    assert path.is_dir()
    with PineconeClient.local(path, transport=transport) as pc:
        assert [model.name for model in pc.list_indexes()] == ["kept"]
        index = pc.index("kept")
        fetched = index.fetch(ids, "ns").vectors
        assert set(fetched) == set(ids)
        for i, record_id in enumerate(ids):
            assert np.array_equal(fetched[record_id].values, values[i])
            assert fetched[record_id].metadata == {"i": i}
        assert index.query(values[3], top_k=1, namespace="ns").ids == ["r3"]
    assert path.is_dir()


def test_second_local_on_the_same_path_is_refused(tmp_path: Path):
    path = tmp_path / "busy"
    with PineconeClient.local(path) as first:
        with pytest.raises(ConfigurationError, match="in use"):
            PineconeClient.local(path)
        with pytest.raises(ConfigurationError, match="in use"):
            AsyncPineconeClient.local(path)
        first.create_index("still-fine", dimension=2)  # the refused attempt did not disturb the owner
        assert first.has_index("still-fine")
    with PineconeClient.local(path) as again:  # released on close
        assert again.has_index("still-fine")


def test_another_process_gets_a_clear_error(tmp_path: Path):
    path = tmp_path / "shared"
    script = textwrap.dedent(
        """
        import sys
        from pinecone_rag import ConfigurationError, PineconeClient
        try:
            PineconeClient.local(sys.argv[1]).close()
        except ConfigurationError as exc:
            print("REFUSED:", exc)
        else:
            print("OPENED")
        """
    )
    with PineconeClient.local(path) as pc:
        pc.create_index("mine", dimension=2)
        done = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("REFUSED:"), done.stdout + done.stderr
        assert "in use" in done.stdout
        assert str(path) in done.stdout
        assert pc.has_index("mine")


def test_async_local_with_async_with():
    async def scenario() -> Path:
        async with AsyncPineconeClient.local(transport="rest") as pc:
            directory = data_dir_of(pc)
            await pc.create_index("aio", dimension=2)
            index = await pc.index("aio")
            assert (await index.upsert([("a", [1.0, 0.0]), ("b", [0.0, 1.0])])).upserted_count == 2
            assert (await index.query([0.9, 0.1], top_k=1)).ids == ["a"]
            grpc_index = await pc.index("aio", transport="grpc")
            assert (await grpc_index.fetch(["b"])).vectors.keys() == {"b"}
        assert pc.local_server is None
        return directory

    directory = asyncio.run(scenario())
    assert not directory.exists()


def test_local_rejects_bad_options_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where local() makes its temporary dir
    with pytest.raises(ConfigurationError, match="transport"):
        PineconeClient.local(transport="carrier-pigeon")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [], "the engine's temporary directory was left behind"

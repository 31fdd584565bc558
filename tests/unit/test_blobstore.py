"""Unit tests of the local blob store (pinecone_rag.server.blobstore): immutability, pointers, keys, mmap."""

from __future__ import annotations

import errno
import mmap
import threading
from typing import TYPE_CHECKING

import numpy as np
import pytest

from pinecone_rag.server import blobstore
from pinecone_rag.server.blobstore import (
    BlobExistsError,
    BlobNotFoundError,
    BlobStore,
    InvalidKeyError,
    LocalBlobStore,
)

if TYPE_CHECKING:
    from pathlib import Path

BAD_KEYS = [
    "",
    "/abs",
    "/",
    "a/",
    "a//b",
    ".",
    "..",
    "../escape",
    "a/../../escape",
    "a/./b",
    ".tmp/x",
    "a/.hidden",
    "a\x00b",
    "a\\b",
    "..\\escape",
    "a\nb",
    "x" * 256,
    "a/" + "y" * 1100,
    "\udc80",
]


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_satisfies_the_protocol(store: LocalBlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_put_get_size_exists(store: LocalBlobStore) -> None:
    store.put("ns/one.bin", b"hello")
    store.put("ns/sub/dir/two.bin", [b"ab", bytearray(b"cd"), memoryview(b"ef")])
    store.put("three", memoryview(np.arange(4, dtype=np.uint8)))
    store.put("empty", b"")
    assert store.get("ns/one.bin") == b"hello"
    assert store.get("ns/sub/dir/two.bin") == b"abcdef"
    assert store.get("three") == bytes([0, 1, 2, 3])
    assert store.get("empty") == b""
    assert store.size("ns/sub/dir/two.bin") == 6
    assert store.exists("ns/one.bin")
    assert not store.exists("ns/missing")
    assert not store.exists("ns")  # a directory is not an object
    assert (store.root / "ns" / "one.bin").read_bytes() == b"hello"


def test_put_from_a_generator_of_chunks(store: LocalBlobStore) -> None:
    store.put("gen", (bytes([i]) * 1000 for i in range(50)))
    data = store.get("gen")
    assert len(data) == 50_000
    assert data[999] == 0
    assert data[49_999] == 49


def test_objects_are_immutable(store: LocalBlobStore) -> None:
    store.put("k", b"first")
    with pytest.raises(BlobExistsError):
        store.put("k", b"second")
    assert isinstance(BlobExistsError("x"), FileExistsError)
    assert store.get("k") == b"first"
    assert list((store.root / ".tmp").iterdir()) == []


def test_missing_objects(store: LocalBlobStore) -> None:
    for call in (store.get, store.size, store.open_mmap):
        with pytest.raises(BlobNotFoundError):
            call("nope/x")
    store.put("dir/file", b"x")
    with pytest.raises(BlobNotFoundError):
        store.get("dir")
    with pytest.raises(BlobNotFoundError):
        store.get("dir/file/below")
    assert isinstance(BlobNotFoundError("x"), FileNotFoundError)


def test_delete_is_idempotent(store: LocalBlobStore) -> None:
    store.put("a/b", b"x")
    store.delete("a/b")
    store.delete("a/b")
    store.delete("never/existed")
    assert not store.exists("a/b")
    store.put("a/b", b"again")  # a deleted key can be written anew
    assert store.get("a/b") == b"again"


def test_list_is_sorted_and_prefix_based(store: LocalBlobStore) -> None:
    keys = ["p/b", "p/a", "p/c/d", "pq/x", "p2", "q", "p/c/a/z"]
    for key in keys:
        store.put(key, key.encode())
    store.publish("p/CURRENT", b"ptr")
    (store.root / ".tmp" / "leftover.tmp").write_bytes(b"junk")
    assert store.list() == sorted([*keys, "p/CURRENT"])
    assert store.list("p/") == ["p/CURRENT", "p/a", "p/b", "p/c/a/z", "p/c/d"]
    assert store.list("p") == sorted(["p/CURRENT", "p/a", "p/b", "p/c/a/z", "p/c/d", "pq/x", "p2"])
    assert store.list("p/c") == ["p/c/a/z", "p/c/d"]
    assert store.list("p/c/") == ["p/c/a/z", "p/c/d"]
    assert store.list("p/c/d") == ["p/c/d"]
    assert store.list("missing/") == []
    assert store.list("zzz") == []


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_rejected_everywhere(store: LocalBlobStore, key: str) -> None:
    calls = [
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.open_mmap(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.size(key),
        lambda: store.publish(key, b"x"),
        lambda: store.read_pointer(key),
    ]
    for call in calls:
        with pytest.raises(InvalidKeyError):
            call()
    assert sorted(p.name for p in store.root.parent.iterdir()) == ["blobs"]


@pytest.mark.parametrize("prefix", ["/a", "../", "a/../", "a//", ".tmp/", "a\x00/"])
def test_invalid_prefixes_are_rejected(store: LocalBlobStore, prefix: str) -> None:
    with pytest.raises(InvalidKeyError):
        store.list(prefix)


def test_valid_unusual_keys(store: LocalBlobStore) -> None:
    for key in ["a..b", "a.", "ünï/cödé ✓", "x-y_z=1,2", "a b/c"]:
        store.put(key, key.encode())
        assert store.get(key) == key.encode()
        assert key in store.list()


def test_open_mmap_is_a_read_only_zero_copy_view(store: LocalBlobStore) -> None:
    block = np.arange(64 * 8, dtype=np.float32)
    store.put("vec", bytes(64) + block.tobytes())
    view = store.open_mmap("vec")
    assert view.readonly
    assert isinstance(view.obj, mmap.mmap)
    array = np.frombuffer(view, dtype=np.float32, offset=64)
    assert np.array_equal(array, block)
    assert not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 1.0
    with pytest.raises(TypeError):
        view[0] = 1  # type: ignore[index]
    # Deleting the object does not pull the data from under a live mapping (POSIX unlink semantics).
    store.delete("vec")
    assert np.array_equal(array, block)
    del view
    assert float(array.sum()) == float(block.sum())


def test_open_mmap_of_an_empty_object(store: LocalBlobStore) -> None:
    store.put("empty", b"")
    view = store.open_mmap("empty")
    assert len(view) == 0
    assert view.readonly


def test_pointers_are_replaced_atomically(store: LocalBlobStore) -> None:
    assert store.read_pointer("ns/CURRENT") is None
    store.publish("ns/CURRENT", b"one")
    assert store.read_pointer("ns/CURRENT") == b"one"
    store.publish("ns/CURRENT", b"two-longer")
    assert store.read_pointer("ns/CURRENT") == b"two-longer"
    assert store.exists("ns/CURRENT")
    assert list((store.root / ".tmp").iterdir()) == []


def test_concurrent_readers_see_old_or_new_pointer_never_a_mix(store: LocalBlobStore) -> None:
    values = [bytes([65 + i % 26]) * (1 + (i * 7919) % 5000) for i in range(60)]
    store.publish("p/CURRENT", values[0])
    allowed = set(values)
    stop = threading.Event()
    bad: list[bytes | None] = []

    def reader() -> None:
        while not stop.is_set():
            value = store.read_pointer("p/CURRENT")
            if value not in allowed:
                bad.append(value)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for value in values[1:]:
            store.publish("p/CURRENT", value)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert bad == []
    assert store.read_pointer("p/CURRENT") == values[-1]


def test_concurrent_puts_of_one_key_have_one_winner(store: LocalBlobStore) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put("race/key", f"writer-{i}".encode() * 1000)
            results.append(f"ok-{i}")
        except BlobExistsError:
            results.append("exists")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if r.startswith("ok-")]
    assert len(winners) == 1
    assert results.count("exists") == 7
    assert store.get("race/key") == f"writer-{winners[0][3:]}".encode() * 1000
    assert list((store.root / ".tmp").iterdir()) == []


def test_concurrent_puts_of_many_keys(store: LocalBlobStore) -> None:
    def writer(t: int) -> None:
        for i in range(25):
            store.put(f"t{t}/deep/er/k{i}", bytes([t, i]))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = store.list()
    assert len(keys) == 150
    assert store.get("t5/deep/er/k24") == bytes([5, 24])


def test_fallback_without_hard_links(store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(blobstore.os, "link", no_link)
    store.put("f/a", b"1")
    assert store.get("f/a") == b"1"
    with pytest.raises(BlobExistsError):
        store.put("f/a", b"2")
    assert store.get("f/a") == b"1"
    assert list((store.root / ".tmp").iterdir()) == []


def test_a_failed_put_leaves_nothing(store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_link(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(blobstore.os, "link", broken_link)
    with pytest.raises(OSError, match="disk on fire"):
        store.put("x/y", b"data")
    monkeypatch.undo()
    assert not store.exists("x/y")
    assert list((store.root / ".tmp").iterdir()) == []

    def failing_chunks() -> object:
        yield b"partial"
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError):
        store.put("x/z", failing_chunks())  # type: ignore[arg-type]
    assert not store.exists("x/z")
    assert list((store.root / ".tmp").iterdir()) == []


def test_leftover_temp_files_are_swept_at_open(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("kept", b"x")
    leftover = tmp_path / ".tmp" / "deadbeef.tmp"
    leftover.write_bytes(b"half-written object from a crash")
    assert store.list() == ["kept"]
    LocalBlobStore(tmp_path, sweep_temp=False)
    assert leftover.exists()
    reopened = LocalBlobStore(tmp_path)
    assert not leftover.exists()
    assert reopened.get("kept") == b"x"


def test_written_files_are_not_group_writable(store: LocalBlobStore) -> None:
    store.put("perm", b"x")
    mode = (store.root / "perm").stat().st_mode
    assert not mode & 0o022

"""The ingest building blocks without an engine: splitting, content-hash ids, the embedding cache, files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinecone_rag.cli_output import render_table, snippet
from pinecone_rag.ingest import EmbeddingCache, IngestError, find_files, make_chunks, split_text, text_hash

if TYPE_CHECKING:
    from pathlib import Path


def test_paragraphs_stay_whole_when_they_fit() -> None:
    text = "First paragraph, short.\n\nSecond paragraph, also short.\n\nThird one."
    assert split_text(text, chunk_size=40, overlap=0) == [
        "First paragraph, short.",
        "Second paragraph, also short.",
        "Third one.",
    ]


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    chunks = split_text("one two three four five", chunk_size=14, overlap=6)
    assert chunks == ["one two three", "three four", "four five"]


def test_a_word_longer_than_a_chunk_is_cut() -> None:
    assert split_text("x" * 25, chunk_size=10, overlap=0) == ["x" * 10, "x" * 10, "x" * 5]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        split_text("text", chunk_size=size, overlap=overlap)


@given(st.text(alphabet=st.sampled_from("ab .\n"), max_size=400), st.integers(5, 60))
def test_chunks_fit_and_cover_every_word(text: str, size: int) -> None:
    chunks = split_text(text, chunk_size=size, overlap=size // 4)
    assert all(0 < len(chunk) <= size for chunk in chunks)
    # Every word of the text appears, in order, in the chunks (overlap only repeats).
    words = text.split()
    joined = " ".join(chunks).split()
    position = 0
    for word in joined:
        if position < len(words) and word == words[position]:
            position += 1
    assert position == len(words) or any(len(w) > size for w in words)


def test_ids_depend_on_source_and_text_only() -> None:
    first = make_chunks("a.md", "alpha.\n\nbeta.", chunk_size=8, overlap=0)
    again = make_chunks("a.md", "alpha.\n\nbeta.", chunk_size=8, overlap=0)
    other = make_chunks("b.md", "alpha.\n\nbeta.", chunk_size=8, overlap=0)
    assert [c.id for c in first] == [c.id for c in again]
    assert {c.id for c in first}.isdisjoint(c.id for c in other)
    assert first[0].id.endswith(text_hash("alpha.")[:24])
    assert first[1].metadata == {"source": "a.md", "chunk": 1, "text": "beta."}


def test_repeated_text_in_one_source_is_one_record() -> None:
    chunks = make_chunks("a.md", "same.\n\nsame.\n\nother.", chunk_size=6, overlap=0)
    assert [c.text for c in chunks] == ["same.", "other."]


def test_cache_round_trips_without_pickle(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "model/x")
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put(["k1", "k2"], vectors)
    assert cache.get("k1") is not None
    cache.save()
    cache.put(["k3"], vectors[:1] + 10)
    cache.save()
    reopened = EmbeddingCache(tmp_path, "model/x")
    assert len(reopened) == 3
    np.testing.assert_array_equal(reopened.get("k2"), vectors[1])
    np.testing.assert_array_equal(reopened.get("k3"), vectors[0] + 10)
    assert reopened.get("missing") is None
    # Another model's cache is separate; files are .npy + .json only.
    assert EmbeddingCache(tmp_path, "other").get("k1") is None
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npy"]


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "m")
    cache.put(["k"], np.ones((1, 2), dtype=np.float32))
    cache.save()
    (tmp_path / "m.json").write_text("{not json", encoding="utf-8")
    assert len(EmbeddingCache(tmp_path, "m")) == 0


def test_find_files_walks_directories_and_checks_named_files(tmp_path: Path) -> None:
    (tmp_path / "d" / ".hidden").mkdir(parents=True)
    for name in ("d/a.md", "d/b.txt", "d/c.rst", "d/.hidden/x.md", "d/img.png"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert [p.name for p in find_files([tmp_path / "d", tmp_path / "d" / "a.md"])] == [
        "a.md",
        "b.txt",
        "c.rst",
    ]
    with pytest.raises(IngestError, match="no such file"):
        find_files([tmp_path / "missing"])
    with pytest.raises(IngestError, match=r"unsupported file type \.png"):
        find_files([tmp_path / "d" / "img.png"])


def test_table_and_snippet() -> None:
    table = render_table(["rank", "text"], [[1, "a long line of text"]], max_width=18)
    assert table.splitlines()[2] == "   1  a long line…"  # 18 columns in all
    assert snippet("a\n\n b", 10) == "a b"

"""PineconeStore (LangGraph BaseStore) against the local engine, tested like LangGraph's own stores."""

from __future__ import annotations

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchOp

from langchain_pinecone_rag import PineconeStore

from .conftest import KeywordEmbeddings, unique


@pytest.fixture
def plain(pc, new_index) -> PineconeStore:
    """A store without an index config: filter-only search, placeholder vectors."""
    return PineconeStore(pc.index(new_index(4)), namespace=unique("mem"))


@pytest.fixture
def semantic(pc, new_index) -> PineconeStore:
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension)
    config = {"dims": embeddings.dimension, "embed": embeddings, "fields": ["text"]}
    return PineconeStore(pc.index(name), index_config=config)


def test_put_get_update_delete(plain) -> None:
    plain.put(("users", "u1"), "prefs", {"theme": "dark", "nested": {"n": 1}, "list": [1, {"a": None}]})
    item = plain.get(("users", "u1"), "prefs")
    assert item is not None
    assert item.value == {"theme": "dark", "nested": {"n": 1}, "list": [1, {"a": None}]}
    assert (item.namespace, item.key) == (("users", "u1"), "prefs")
    plain.put(("users", "u1"), "prefs", {"theme": "light"})
    updated = plain.get(("users", "u1"), "prefs")
    assert updated.value == {"theme": "light"}
    assert updated.created_at == item.created_at  # updates keep the creation time
    assert updated.updated_at > item.updated_at
    plain.delete(("users", "u1"), "prefs")
    assert plain.get(("users", "u1"), "prefs") is None
    assert plain.get(("users", "u1"), "missing") is None


def test_keys_with_dots_and_prefix_siblings(plain) -> None:
    plain.put(("a",), "b..c", {"v": 1})
    plain.put(("a", "b"), "c", {"v": 2})
    plain.put(("ab",), "c", {"v": 3})
    assert plain.get(("a",), "b..c").value == {"v": 1}
    assert plain.get(("a", "b"), "c").value == {"v": 2}
    assert {i.value["v"] for i in plain.search(("a",))} == {1, 2}  # ("ab",) is not below ("a",)


def test_search_filters_and_pagination(plain) -> None:
    for i in range(6):
        plain.put(
            ("docs", f"u{i % 2}"), f"k{i}", {"n": i, "kind": "even" if i % 2 == 0 else "odd", "m": {"x": i}}
        )
    assert {i.key for i in plain.search(("docs",), filter={"kind": "even"}, limit=10)} == {"k0", "k2", "k4"}
    assert {i.key for i in plain.search(("docs", "u1"), limit=10)} == {"k1", "k3", "k5"}
    assert {i.key for i in plain.search(("docs",), filter={"n": {"$gte": 4}})} == {"k4", "k5"}
    assert {i.key for i in plain.search(("docs",), filter={"m": {"x": 3}})} == {"k3"}
    assert {i.key for i in plain.search(("docs",), filter={"n": {"$ne": 0}, "kind": "even"})} == {"k2", "k4"}
    # Newest first, then paged.
    assert [i.key for i in plain.search(("docs",), limit=2)] == ["k5", "k4"]
    assert [i.key for i in plain.search(("docs",), limit=2, offset=2)] == ["k3", "k2"]
    assert all(i.score is None for i in plain.search(("docs",), query="ignored without index config"))
    with pytest.raises(ValueError, match=r"\$in"):
        plain.search(("docs",), filter={"kind": ["even", "odd"]})


def test_list_namespaces(plain) -> None:
    for namespace in [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("z", "b", "c"), ("z",)]:
        plain.put(namespace, "k", {"v": 1})
    assert plain.list_namespaces() == [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("z",), ("z", "b", "c")]
    assert plain.list_namespaces(prefix=("a",)) == [("a", "b", "c"), ("a", "b", "d"), ("a", "x")]
    assert plain.list_namespaces(suffix=("c",)) == [("a", "b", "c"), ("z", "b", "c")]
    assert plain.list_namespaces(prefix=("*", "b")) == [("a", "b", "c"), ("a", "b", "d"), ("z", "b", "c")]
    assert plain.list_namespaces(prefix=("a",), suffix=("d",)) == [("a", "b", "d")]
    assert plain.list_namespaces(max_depth=2) == [("a", "b"), ("a", "x"), ("z",), ("z", "b")]
    assert plain.list_namespaces(limit=2, offset=1) == [("a", "b", "d"), ("a", "x")]
    plain.delete(("z",), "k")
    assert ("z",) not in plain.list_namespaces()


def test_batch_reads_before_writes_and_last_put_wins(plain) -> None:
    ns = ("batch",)
    results = plain.batch(
        [
            PutOp(ns, "k", {"v": 1}),
            GetOp(ns, "k"),
            PutOp(ns, "k", {"v": 2}),
            SearchOp(ns),
        ]
    )
    assert results == [None, None, None, []]
    assert plain.get(ns, "k").value == {"v": 2}


def test_namespace_validation(plain) -> None:
    with pytest.raises(InvalidNamespaceError):
        plain.put(("langgraph", "x"), "k", {})
    with pytest.raises(InvalidNamespaceError):
        plain.batch([GetOp(("a.b",), "k")])
    with pytest.raises(NotImplementedError):
        plain.put(("a",), "k", {}, ttl=5)


def test_semantic_search(semantic) -> None:
    semantic.put(("m", "u1"), "1", {"text": "apple apple", "kind": "fruit"})
    semantic.put(("m", "u1"), "2", {"text": "banana", "kind": "fruit"})
    semantic.put(("m", "u2"), "3", {"text": "cherry", "kind": "tree"})
    semantic.put(("m", "u2"), "4", {"text": "apple"}, index=False)
    results = semantic.search(("m",), query="apple", limit=3)
    assert [i.key for i in results][:1] == ["1"]
    assert "4" not in {i.key for i in results}  # index=False: stored, not ranked
    assert results[0].score == pytest.approx(1.0, abs=1e-5)
    assert results[0].score >= results[1].score
    assert [i.key for i in semantic.search(("m",), query="apple", filter={"kind": "tree"})] == ["3"]
    assert [i.key for i in semantic.search(("m", "u2"), query="apple")] == ["3"]
    assert [i.key for i in semantic.search(("m",), query="apple", limit=1, offset=1)] != ["1"]
    assert semantic.get(("m", "u2"), "4").value == {"text": "apple"}


def test_multiple_vectors_per_item_are_max_pooled(semantic) -> None:
    semantic.put(("p",), "multi", {"parts": [{"t": "banana"}, {"t": "grape"}]}, index=["parts[*].t"])
    semantic.put(("p",), "single", {"text": "banana grape"})
    top = semantic.search(("p",), query="grape", limit=2)
    assert [i.key for i in top] == ["multi", "single"]  # one exact part beats a half match
    assert len(top) == 2  # one result per item, not per vector
    # Re-indexing with fewer texts drops the stale vector: "grape" no longer reaches this item first.
    semantic.put(("p",), "multi", {"parts": [{"t": "banana"}]}, index=["parts[*].t"])
    assert [i.key for i in semantic.search(("p",), query="grape", limit=1)] == ["single"]
    semantic.delete(("p",), "multi")
    assert [i.key for i in semantic.search(("p",), query="banana")] == ["single"]


async def test_async_store(pc, apc, new_index) -> None:
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension)
    config = {"dims": embeddings.dimension, "embed": embeddings, "fields": ["text"]}
    store = PineconeStore(async_index=await apc.index(name), index_config=config)
    await store.aput(("a", "u"), "1", {"text": "fig"})
    await store.aput(("a", "v"), "2", {"text": "date"})
    assert (await store.aget(("a", "u"), "1")).value == {"text": "fig"}
    assert [i.key for i in await store.asearch(("a",), query="date", limit=1)] == ["2"]
    assert {i.key for i in await store.asearch(("a",), filter={"text": "fig"})} == {"1"}
    assert await store.alist_namespaces(prefix=("a",)) == [("a", "u"), ("a", "v")]
    await store.adelete(("a", "u"), "1")
    assert await store.aget(("a", "u"), "1") is None
    with pytest.raises(ValueError, match="async"):
        store.get(("a", "v"), "2")

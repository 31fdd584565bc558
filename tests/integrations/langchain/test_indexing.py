"""LangChain's indexing API over the store: re-runs write nothing, and cleanup removes stale documents."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.indexing import InMemoryRecordManager, aindex, index

from langchain_pinecone_rag import PineconeVectorStore

from .conftest import KeywordEmbeddings, unique


def docs(*pairs: tuple[str, str]) -> list[Document]:
    return [Document(page_content=text, metadata={"source": source}) for text, source in pairs]


@pytest.fixture
def setup(pc, new_index):
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension)
    store = PineconeVectorStore(embedding=embeddings, client=pc, index_name=name)
    manager = InMemoryRecordManager(unique("records"))
    manager.create_schema()
    return store, manager


def contents(store: PineconeVectorStore) -> list[str]:
    ids = [record_id for page in store.index.list() for record_id in page]
    return sorted(doc.page_content for doc in store.get_by_ids(ids))


def run(store, manager, documents, cleanup, **kwargs):
    return index(
        documents, manager, store, cleanup=cleanup, source_id_key="source", key_encoder="sha256", **kwargs
    )


def test_incremental(setup) -> None:
    store, manager = setup
    first = docs(("apple", "a.md"), ("banana", "a.md"), ("cherry", "b.md"))
    assert run(store, manager, first, "incremental") == {
        "num_added": 3,
        "num_updated": 0,
        "num_skipped": 0,
        "num_deleted": 0,
    }
    before = store.embedding.batches[:]
    assert run(store, manager, first, "incremental")["num_skipped"] == 3
    assert store.embedding.batches == before  # nothing embedded, nothing written
    # a.md changed: its old chunks go, b.md (not in this batch) stays.
    result = run(store, manager, docs(("apple fig", "a.md")), "incremental")
    assert (result["num_added"], result["num_deleted"]) == (1, 2)
    assert contents(store) == ["apple fig", "cherry"]


def test_full(setup) -> None:
    store, manager = setup
    run(store, manager, docs(("apple", "a.md"), ("banana", "b.md")), "full")
    result = run(store, manager, docs(("apple", "a.md"), ("grape", "c.md")), "full")
    assert result == {"num_added": 1, "num_updated": 0, "num_skipped": 1, "num_deleted": 1}
    assert contents(store) == ["apple", "grape"]


def test_scoped_full(setup) -> None:
    store, manager = setup
    run(store, manager, docs(("apple", "a.md"), ("banana", "a.md"), ("cherry", "b.md")), "scoped_full")
    result = run(store, manager, docs(("apple", "a.md")), "scoped_full")
    assert (result["num_skipped"], result["num_deleted"]) == (1, 1)
    assert contents(store) == ["apple", "cherry"]  # b.md was not in this run's scope


async def test_aindex_incremental(pc, apc, new_index) -> None:
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension)
    store = PineconeVectorStore(pc.index(name), embeddings, async_index=await apc.index(name))
    manager = InMemoryRecordManager(unique("records"))
    await manager.acreate_schema()
    documents = docs(("apple", "a.md"), ("banana", "b.md"))
    kwargs = {"cleanup": "incremental", "source_id_key": "source", "key_encoder": "sha256"}
    assert (await aindex(documents, manager, store, **kwargs))["num_added"] == 2
    assert (await aindex(documents, manager, store, **kwargs))["num_skipped"] == 2
    result = await aindex(docs(("date", "b.md")), manager, store, **kwargs)
    assert (result["num_added"], result["num_deleted"]) == (1, 1)
    assert contents(store) == ["apple", "date"]

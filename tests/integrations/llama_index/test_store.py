"""PineconeVectorStore against a real local engine: add, query, delete, get/delete nodes, clear, namespaces.

Each test runs through the sync methods and through the async ones (the ``mode`` fixture). Tests named
``test_regression_*`` pin a bug of the official ``llama-index-vector-stores-pinecone`` 0.9.0 that this
store avoids (reference note llamaindex.md §3.6, W1..W16).
"""

from __future__ import annotations

import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from llama_index.vector_stores.pinecone_rag import PineconeVectorStore, UpsertError

from .support import API_KEY, METRICS, bag_of_words

pytestmark = pytest.mark.asyncio

TEXTS = {
    "cat": "the cat sat on the warm mat",
    "dog": "a loyal dog fetched the red ball",
    "fish": "goldfish swim in a glass bowl of water",
    "bird": "a small bird sang on the oak branch",
}


def doc_node(node_id: str, text: str, doc: str | None = None, **metadata: object) -> TextNode:
    node = TextNode(id_=node_id, text=text, metadata=dict(metadata))
    if doc is not None:
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
    return node


def ask(text: str, top_k: int = 10, **kwargs: object) -> VectorStoreQuery:
    return VectorStoreQuery(query_embedding=bag_of_words(text), similarity_top_k=top_k, **kwargs)  # type: ignore[arg-type]


def eq(key: str, value: object) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key=key, value=value)])  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", METRICS)
async def test_add_query_delete_per_metric(make_store, metric: str) -> None:
    h = await make_store(metric)
    nodes = [doc_node(k, t, doc=f"doc-{k}", kind=k) for k, t in TEXTS.items()]
    assert await h.add(nodes) == list(TEXTS)

    result = await h.query(ask("the cat sat on a mat", top_k=2))
    assert result.ids is not None
    assert result.ids[0] == "cat"
    assert result.nodes is not None
    assert result.nodes[0].get_content() == TEXTS["cat"]
    assert result.nodes[0].metadata["kind"] == "cat"
    assert result.nodes[0].ref_doc_id == "doc-cat"
    assert result.similarities is not None
    assert len(result.similarities) == 2
    # Higher is better for every metric, euclidean included.
    assert result.similarities[0] > result.similarities[1]

    await h.delete("doc-cat")
    result = await h.query(ask("the cat sat on a mat", top_k=4))
    assert result.ids is not None
    assert sorted(result.ids) == ["bird", "dog", "fish"]


async def test_regression_delete_by_ref_doc_has_no_prefix_collisions(make_store) -> None:
    """W1: the official store's serverless fallback lists ids by prefix without '#', so deleting doc1 also
    deleted doc10 and doc1-old. Here delete(ref_doc_id) is an exact match on the doc_id metadata."""
    h = await make_store()
    docs = ["doc1", "doc10", "doc1-old", "doc1#x"]
    await h.add([doc_node(f"{d}-n{i}", f"text {d} {i}", doc=d) for d in docs for i in range(2)])
    await h.delete("doc1")
    left = {n.ref_doc_id for n in await h.get_nodes()}
    assert left == {"doc10", "doc1-old", "doc1#x"}


async def test_regression_delete_nodes_by_node_id_of_document_nodes(make_store) -> None:
    """W2: the official store keys records as '{ref_doc_id}#{node_id}' but deletes the bare node id, so
    delete_nodes([node.node_id]) silently deleted nothing for nodes with a ref doc."""
    h = await make_store()
    nodes = [doc_node(f"n{i}", f"text number {i}", doc="d") for i in range(3)]
    ids = await h.add(nodes)
    assert ids == ["n0", "n1", "n2"]
    result = await h.query(ask("text number 1", top_k=3))
    assert sorted(result.ids or []) == ["n0", "n1", "n2"]  # query ids are node ids too
    await h.delete_nodes(["n1"])
    assert [n.node_id for n in await h.get_nodes()] == ["n0", "n2"]


async def test_regression_get_nodes_by_id_and_filters(make_store) -> None:
    """W9: the official get_nodes cannot fetch by id and stops at 100 filter matches."""
    h = await make_store()
    nodes = [doc_node(f"n{i:03d}", f"item {i}", group="big" if i < 150 else "small") for i in range(160)]
    await h.add(nodes)

    got = await h.get_nodes(["n005", "n001", "missing"])
    assert [n.node_id for n in got] == ["n005", "n001"]
    assert got[0].get_content() == "item 5"
    assert got[0].embedding is not None
    assert len(got[0].embedding) == 64

    big = await h.get_nodes(filters=eq("group", "big"))
    assert len(big) == 150
    both = await h.get_nodes(["n001", "n155"], filters=eq("group", "small"))
    assert [n.node_id for n in both] == ["n155"]
    assert await h.get_nodes([]) == []
    assert len(await h.get_nodes()) == 160


async def test_delete_nodes_by_filters_and_both(make_store) -> None:
    h = await make_store()
    await h.add([doc_node(f"n{i}", f"text {i}", parity="even" if i % 2 == 0 else "odd") for i in range(6)])
    await h.delete_nodes(["n0", "n1"], filters=eq("parity", "even"))
    assert [n.node_id for n in await h.get_nodes()] == ["n1", "n2", "n3", "n4", "n5"]
    await h.delete_nodes(filters=eq("parity", "odd"))
    assert [n.node_id for n in await h.get_nodes()] == ["n2", "n4"]
    await h.delete_nodes([])  # an empty list deletes nothing
    assert len(await h.get_nodes()) == 2
    with pytest.raises(ValueError, match="clear"):
        await h.delete_nodes()
    with pytest.raises(ValueError, match="clear"):
        await h.delete_nodes(filters=MetadataFilters(filters=[]))


async def test_clear_only_touches_its_namespace(make_store) -> None:
    h = await make_store()
    await h.add([doc_node("a", "alpha"), doc_node("b", "beta")])
    await h.add([doc_node("c", "gamma")], namespace=h.store.namespace + "-other")
    await h.clear()
    assert await h.get_nodes() == []
    assert [n.node_id for n in await h.get_nodes(namespace=h.store.namespace + "-other")] == ["c"]


async def test_regression_namespace_per_call(make_store) -> None:
    """W13: the official store is bound to one namespace; a per-call namespace= raised TypeError."""
    h = await make_store()
    other = h.store.namespace + "-2"
    await h.add([doc_node("x", "only in the other namespace", doc="dx")], namespace=other)
    assert (await h.query(ask("other namespace"))).ids == []
    assert (await h.query(ask("other namespace"), namespace=other)).ids == ["x"]
    await h.delete("dx", namespace=other)
    assert (await h.query(ask("other namespace"), namespace=other)).ids == []


async def test_regression_node_ids_and_doc_ids_restrict_and_empty_lists_do_not(make_store) -> None:
    """W4: the official store ignores query.node_ids and query.doc_ids. Empty lists (what as_retriever()
    passes for text-storing stores) must not restrict."""
    h = await make_store()
    await h.add([doc_node(k, t, doc=f"doc-{k}") for k, t in TEXTS.items()])
    assert len((await h.query(ask("cat", node_ids=[], doc_ids=[]))).ids or []) == 4
    assert sorted((await h.query(ask("cat", node_ids=["dog", "fish"]))).ids or []) == ["dog", "fish"]
    assert (await h.query(ask("cat", doc_ids=["doc-bird"]))).ids == ["bird"]
    assert (await h.query(ask("cat", node_ids=["dog"], doc_ids=["doc-bird"]))).ids == []


async def test_raw_filter_kwarg_is_anded(make_store) -> None:
    h = await make_store()
    await h.add(
        [doc_node(k, t, kind=k, legs=n) for (k, t), n in zip(TEXTS.items(), [4, 4, 0, 2], strict=False)]
    )
    result = await h.query(ask("cat", filters=eq("legs", 4)), filter={"kind": {"$ne": "cat"}})
    assert result.ids == ["dog"]


async def test_upsert_failure_raises(make_store) -> None:
    h = await make_store()
    node = doc_node("short", "wrong dimension")
    node.embedding = [0.1, 0.2, 0.3]
    with pytest.raises(UpsertError) as caught:
        await h.add([node])
    assert caught.value.failed_ids == ["short"]


async def test_node_without_embedding_is_named(make_store) -> None:
    h = await make_store()
    node = doc_node("bare", "no embedding")
    with pytest.raises(ValueError, match="'bare' has no embedding"):
        await h._call("add", "async_add", [node])


async def test_regression_native_async_with_async_index_only(async_pc, index_names) -> None:
    """W6: the official store has no async methods (the base class runs the sync ones, blocking the loop).
    A store with only an AsyncIndex serves every async method and refuses sync ones clearly."""
    name = index_names["cosine"]
    store = PineconeVectorStore(async_index=await async_pc.index(name), namespace="async-only")
    await store.aclear()
    node = doc_node("a", "asynchronous all the way", doc="d")
    node.embedding = bag_of_words(node.text)
    assert await store.async_add([node]) == ["a"]
    assert (await store.aquery(ask("asynchronous"))).ids == ["a"]
    assert [n.node_id for n in await store.aget_nodes(["a"])] == ["a"]
    await store.adelete_nodes(["a"])
    assert await store.aget_nodes() == []
    await store.async_add([node])
    await store.adelete("d")
    assert await store.aget_nodes() == []
    with pytest.raises(ValueError, match="AsyncIndex only"):
        store.query(ask("x"))


async def test_regression_api_key_is_not_serialised(server, index_names) -> None:
    """W12: the official store serialises api_key in clear text through to_dict(). W16: its class_name is
    misspelt 'PinconeVectorStore'."""
    store = PineconeVectorStore(
        index_name=index_names["cosine"], api_key="secret-" + API_KEY, host=server.url, namespace="n"
    )
    try:
        dumped = store.to_dict()
        assert "secret-" not in repr(dumped)
        assert "secret-" not in store.to_json()
        assert dumped["class_name"] == "PineconeRagVectorStore"
        assert dumped["index_name"] == index_names["cosine"]
        assert dumped["namespace"] == "n"
        # The key still works: the store builds its own client from it.
        assert store.get_nodes() == []
    finally:
        store.close()

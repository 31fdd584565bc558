"""Nodes round-trip through Pinecone metadata; what Pinecone cannot store is caught before sending."""

from __future__ import annotations

import json

import pytest
from llama_index.core.schema import IndexNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters, VectorStoreQuery

from llama_index.vector_stores.pinecone_rag import MetadataTooLargeError

from .support import bag_of_words

pytestmark = pytest.mark.asyncio


def raw_metadata(h, node_id: str) -> dict:
    """The metadata as stored, read with the plain client."""
    return h.store._sync().fetch([node_id], h.store.namespace).vectors[node_id].metadata


async def test_nodes_round_trip(make_store) -> None:
    h = await make_store()
    text = TextNode(
        id_="t1",
        text="body text",
        metadata={"title": "T", "pages": 3, "draft": False, "authors": ["a", "b"]},
        excluded_embed_metadata_keys=["pages"],
    )
    text.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id="doc-1")
    text.relationships[NodeRelationship.NEXT] = RelatedNodeInfo(node_id="t2")
    index_node = IndexNode(id_="i1", text="summary", index_id="sub-index")
    await h.add([text, index_node])

    got = {n.node_id: n for n in await h.get_nodes(["t1", "i1"])}
    assert got["t1"].get_content() == "body text"
    assert got["t1"].metadata == text.metadata
    assert got["t1"].excluded_embed_metadata_keys == ["pages"]
    assert got["t1"].ref_doc_id == "doc-1"
    assert got["t1"].relationships[NodeRelationship.NEXT].node_id == "t2"
    assert isinstance(got["i1"], IndexNode)
    assert got["i1"].index_id == "sub-index"


async def test_regression_none_values_are_dropped(make_store) -> None:
    """W10: Pinecone rejects null metadata (VectorMemoryBlock writes session_id=None; readers write
    last_accessed_date=None); the official store sends them and fails."""
    h = await make_store()
    await h.add([TextNode(id_="n", text="x", metadata={"session_id": None, "kept": "yes", "empty": []})])
    stored = raw_metadata(h, "n")
    assert "session_id" not in stored
    assert "empty" not in stored
    assert stored["kept"] == "yes"
    (node,) = await h.get_nodes(["n"])
    assert node.metadata == {"session_id": None, "kept": "yes", "empty": []}  # kept in _node_content


async def test_regression_nested_metadata_rejected_or_flattened(make_store) -> None:
    """W10: nested objects and lists of non-strings reach Pinecone and fail there with the official store."""
    h = await make_store()
    nested = TextNode(id_="nested", text="x", metadata={"info": {"lang": "en", "score": 2}})
    with pytest.raises(ValueError, match=r"'info' of node 'nested' is a nested object"):
        await h.add([nested])
    numbers = TextNode(id_="numbers", text="x", metadata={"ids": [1, 2]})
    with pytest.raises(ValueError, match=r"'ids' of node 'numbers' is a list containing non-strings"):
        await h.add([numbers])

    flat = await make_store(nested_metadata="flatten")
    await flat.add([nested, numbers])
    assert raw_metadata(flat, "nested")["info.lang"] == "en"
    assert raw_metadata(flat, "numbers")["ids"] == ["1", "2"]
    filters = MetadataFilters(filters=[MetadataFilter(key="info.lang", value="en")])
    assert [n.node_id for n in await flat.get_nodes(filters=filters)] == ["nested"]
    (back,) = await flat.get_nodes(["nested"])
    assert back.metadata == {"info": {"lang": "en", "score": 2}}


async def test_regression_metadata_budget_checked_before_sending(make_store) -> None:
    """W10: _node_content copies the metadata, so ~20 KB of user metadata already overflows Pinecone's
    40 KB per record; the official store finds out from a failed upsert. The error names node and size."""
    h = await make_store()
    small = TextNode(id_="small", text="fits")
    big = TextNode(id_="big", text="too much", metadata={"blob": "x" * 21_000})
    with pytest.raises(MetadataTooLargeError, match=r"node 'big' is \d+ bytes, over .* 40960") as caught:
        await h.add([small, big])
    assert "'blob'" in str(caught.value)
    assert await h.get_nodes() == []  # checked before anything was sent


async def test_regression_text_restored_when_removed_from_metadata(make_store) -> None:
    """W8: with remove_text_from_metadata=True the official store returns every node with empty text."""
    h = await make_store(remove_text_from_metadata=True)
    await h.add([TextNode(id_="n", text="the only copy of the text", metadata={"k": "v"})])
    stored = raw_metadata(h, "n")
    assert json.loads(stored["_node_content"])["text"] == ""
    assert stored["text"] == "the only copy of the text"
    result = await h.query(
        VectorStoreQuery(query_embedding=bag_of_words("only copy text"), similarity_top_k=1)
    )
    assert result.nodes is not None
    assert result.nodes[0].get_content() == "the only copy of the text"
    assert result.nodes[0].metadata == {"k": "v"}
    with pytest.raises(ValueError, match="metadata key 'text'"):
        await h.add([TextNode(id_="m", text="x", metadata={"text": "clash"})])


async def test_user_key_named_like_text_key_is_only_metadata(make_store) -> None:
    h = await make_store()
    await h.add([TextNode(id_="n", text="real text", metadata={"text": "a label"})])
    (node,) = await h.get_nodes(["n"])
    assert node.get_content() == "real text"
    assert node.metadata == {"text": "a label"}


async def test_records_written_by_other_tools(make_store) -> None:
    h = await make_store()
    h.store._sync().upsert(
        [("foreign", bag_of_words("plain record"), {"text": "plain record", "source": "langchain"})],
        h.store.namespace,
    )
    result = await h.query(VectorStoreQuery(query_embedding=bag_of_words("plain record"), similarity_top_k=1))
    assert result.nodes is not None
    assert result.nodes[0].node_id == "foreign"
    assert result.nodes[0].get_content() == "plain record"
    assert result.nodes[0].metadata == {"source": "langchain"}

"""The store under LlamaIndex's own machinery: VectorStoreIndex, retriever, query engine, ref-doc refresh
with a persisted docstore, and an IngestionPipeline that re-writes only what changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.storage.docstore import SimpleDocumentStore

from .support import HashEmbedding

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.asyncio

DOCS = {
    "d1": "Pinecone stores vectors in namespaces. Each namespace is isolated.",
    "d10": "Sourdough bread needs a starter, flour, water and salt.",
    "d2": "Kayaks are paddled with a double-bladed paddle on rivers and lakes.",
}


def documents(**changes: str) -> list[Document]:
    texts = {**DOCS, **changes}
    return [Document(id_=doc_id, text=text) for doc_id, text in texts.items()]


async def test_index_retriever_query_engine_delete_and_refresh(make_store, tmp_path: Path) -> None:
    h = await make_store()
    embed = HashEmbedding()
    storage = StorageContext.from_defaults(vector_store=h.store)
    if h.is_async:
        index = VectorStoreIndex([], storage_context=storage, embed_model=embed)
        for document in documents():
            await index.ainsert(document)
    else:
        index = VectorStoreIndex.from_documents(documents(), storage_context=storage, embed_model=embed)

    retriever = index.as_retriever(similarity_top_k=1)
    question = "how is bread made with sourdough starter"
    hits = await retriever.aretrieve(question) if h.is_async else retriever.retrieve(question)
    assert [hit.node.ref_doc_id for hit in hits] == ["d10"]

    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=1)
    response = await engine.aquery(question) if h.is_async else engine.query(question)
    assert "Sourdough" in response.source_nodes[0].node.get_content()
    assert "Sourdough" in str(response)  # MockLLM echoes its prompt, which carries the context

    # delete_ref_doc("d1") must not touch "d10".
    if h.is_async:
        await index.adelete_ref_doc("d1")
    else:
        index.delete_ref_doc("d1")
    assert sorted(n.ref_doc_id or "" for n in await h.get_nodes()) == ["d10", "d2"]

    # A later process: the docstore (document hashes) was persisted, the vectors live in Pinecone.
    storage.persist(persist_dir=str(tmp_path))
    reloaded = load_index_from_storage(
        StorageContext.from_defaults(vector_store=h.store, persist_dir=str(tmp_path)), embed_model=embed
    )
    changed = documents(d2="Canoes use a single-bladed paddle.", d3="Green tea is steeped briefly.")
    refreshed = (
        await reloaded.arefresh_ref_docs(changed) if h.is_async else reloaded.refresh_ref_docs(changed)
    )
    # d1 was deleted from the store but its hash stays in the docstore (delete_ref_doc keeps it by default
    # for stores_text stores), so only the changed d2 is rewritten and the new d3 inserted.
    assert refreshed == [False, False, True, True]
    texts = sorted(n.get_content() for n in await h.get_nodes())
    assert texts == ["Canoes use a single-bladed paddle.", "Green tea is steeped briefly.", DOCS["d10"]]


async def test_ingestion_pipeline_rerun_writes_only_changes(make_store) -> None:
    h = await make_store()
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), HashEmbedding()],
        vector_store=h.store,
        docstore=SimpleDocumentStore(),
    )

    async def run(docs: list[Document]) -> int:
        nodes = await pipeline.arun(documents=docs) if h.is_async else pipeline.run(documents=docs)
        return len(nodes)

    assert await run(documents()) == 3
    assert len(await h.get_nodes()) == 3
    assert await run(documents()) == 0  # nothing changed, nothing written
    assert await run(documents(d2="Canoes use a single-bladed paddle.")) == 1
    texts = sorted(n.get_content() for n in await h.get_nodes())
    assert texts == sorted([DOCS["d1"], DOCS["d10"], "Canoes use a single-bladed paddle."])

"""Hybrid (dense + BM25) search on dotproduct indexes, against the local engine."""

from __future__ import annotations

import numpy as np
import pytest

from langchain_pinecone_rag import PineconeVectorStore
from pinecone_rag.sparse import BM25Encoder

from .conftest import KeywordEmbeddings

# Dense vectors only see the fruit vocabulary; the rare words below are visible to BM25 alone.
TEXTS = [
    "apple apple",  # dense match for "apple"
    "other zebra quartz",  # keyword match for "zebra"
    "banana zebra",
    "cherry",
]
IDS = ["apple", "zebra", "banana", "cherry"]


@pytest.fixture
def hybrid_store(pc, new_index) -> PineconeVectorStore:
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension, "dotproduct")
    return PineconeVectorStore.from_texts(
        TEXTS, embeddings, ids=IDS, client=pc, index_name=name, sparse_encoder=BM25Encoder()
    )


def test_alpha_moves_between_keyword_and_dense(hybrid_store) -> None:
    assert hybrid_store.sparse_encoder.document_count == len(TEXTS)  # fitted on the corpus
    query = "cherry quartz zebra"  # two rare keywords in one document, one fruit in another
    keyword = hybrid_store.hybrid_search(query, k=1, alpha=0.0)
    dense = hybrid_store.hybrid_search(query, k=1, alpha=1.0)
    assert [doc.id for doc in keyword] == ["zebra"]
    assert [doc.id for doc in dense] == ["cherry"]


def test_scores_are_the_weighted_sum(hybrid_store) -> None:
    query = "apple zebra"
    alpha = 0.3
    scored = {doc.id: score for doc, score in hybrid_store.hybrid_search_with_score(query, k=4, alpha=alpha)}
    embeddings = KeywordEmbeddings()
    encoder = hybrid_store.sparse_encoder
    q_dense = np.asarray(embeddings.vector(query))
    q_sparse = encoder.encode_queries(query)
    for text, record_id in zip(TEXTS, IDS, strict=True):
        doc_sparse = encoder.encode_documents(text)
        sparse = sum(
            float(v) * float(doc_sparse.values[list(doc_sparse.indices).index(i)])
            for i, v in zip(q_sparse.indices, q_sparse.values, strict=True)
            if i in doc_sparse.indices
        )
        dense = float(q_dense @ np.asarray(embeddings.vector(text)))
        assert scored[record_id] == pytest.approx(alpha * dense + (1 - alpha) * sparse, rel=1e-4, abs=1e-5)


async def test_async_hybrid_and_retriever(hybrid_store) -> None:
    pairs = await hybrid_store.ahybrid_search_with_score("zebra quartz", k=1, alpha=0.1)
    assert pairs[0][0].id == "zebra"
    retriever = hybrid_store.as_retriever(search_type="hybrid", search_kwargs={"k": 1, "alpha": 0.0})
    assert [doc.id for doc in retriever.invoke("quartz")] == ["zebra"]
    assert [doc.id for doc in await retriever.ainvoke("quartz")] == ["zebra"]
    assert [doc.id for doc in hybrid_store.search("quartz", "hybrid", k=1, alpha=0.0)] == ["zebra"]
    await hybrid_store.aclose()


def test_filter_applies_to_hybrid(hybrid_store) -> None:
    docs = hybrid_store.hybrid_search("zebra", k=4, alpha=0.0, filter={"text": {"$ne": "banana zebra"}})
    assert "banana" not in {doc.id for doc in docs}


def test_hybrid_needs_dotproduct_and_an_encoder(pc, new_index) -> None:
    embeddings = KeywordEmbeddings()
    cosine = new_index(embeddings.dimension, "cosine")
    store = PineconeVectorStore(
        embedding=embeddings, client=pc, index_name=cosine, sparse_encoder=BM25Encoder()
    )
    with pytest.raises(ValueError, match="dotproduct index"):
        store.hybrid_search("apple")
    plain = PineconeVectorStore(embedding=embeddings, client=pc, index_name=cosine, metric="dotproduct")
    with pytest.raises(ValueError, match="sparse encoder"):
        plain.hybrid_search("apple")
    with pytest.raises(ValueError, match="alpha"):
        PineconeVectorStore(embedding=embeddings, client=pc, index_name=cosine, alpha=1.5)

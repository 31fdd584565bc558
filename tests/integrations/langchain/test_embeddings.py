"""PineconeEmbeddings over the local engine's Inference API (model all-minilm-l6-v2, 384 dimensions)."""

from __future__ import annotations

import numpy as np
import pytest

from langchain_pinecone_rag import PineconeEmbeddings, PineconeVectorStore

pytestmark = pytest.mark.slow  # the first embed call loads the model (~30 s on 2 cores)

MODEL = "all-minilm-l6-v2"
DIMENSION = 384
TEXTS = [
    "The cat sat on the mat.",
    "A kitten is resting on a rug.",
    "Stock markets fell sharply today.",
    "Interest rates were raised by the central bank.",
    "Pinecone is a vector database.",
]


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture
def embeddings(pc) -> PineconeEmbeddings:
    return PineconeEmbeddings(model=MODEL, client=pc, batch_size=2, dimension=DIMENSION)


def test_embed_documents_in_batches(embeddings) -> None:
    vectors = embeddings.embed_documents(TEXTS)  # 5 texts, batch_size 2: three requests
    assert len(vectors) == len(TEXTS)
    assert all(len(vector) == DIMENSION for vector in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])  # order kept across batches
    assert embeddings.embed_documents([]) == []


def test_embed_query_is_close_to_its_document(embeddings) -> None:
    query = embeddings.embed_query("Where is the cat sitting?")
    documents = embeddings.embed_documents(TEXTS)
    scores = [cosine(query, document) for document in documents]
    assert int(np.argmax(scores)) == 0


async def test_async_embeddings(embeddings, apc) -> None:
    built_per_call = await embeddings.aembed_documents(TEXTS[:3])
    shared = PineconeEmbeddings(model=MODEL, async_client=apc, client=embeddings.client)
    with_client = await shared.aembed_documents(TEXTS[:3])
    assert np.allclose(built_per_call, with_client, atol=1e-5)
    assert np.allclose(await shared.aembed_query(TEXTS[0]), embeddings.embed_query(TEXTS[0]), atol=1e-5)


def test_dimension_is_checked(pc) -> None:
    wrong = PineconeEmbeddings(model=MODEL, client=pc, dimension=DIMENSION + 1)
    with pytest.raises(ValueError, match="expected 385"):
        wrong.embed_query("hello")


def test_store_with_server_side_embeddings(pc, new_index, embeddings) -> None:
    store = PineconeVectorStore(embedding=embeddings, client=pc, index_name=new_index(DIMENSION))
    store.add_texts(TEXTS, ids=[str(i) for i in range(len(TEXTS))])
    assert [doc.id for doc in store.similarity_search("central bank interest", k=1)] == ["3"]

"""PineconeEmbedding over the local engine's Inference API (model all-minilm-l6-v2, 384 dimensions)."""

from __future__ import annotations

import numpy as np
import pytest

from llama_index.vector_stores.pinecone_rag import PineconeEmbedding
from pinecone_rag import AsyncPineconeClient

from .support import API_KEY

MODEL = "all-minilm-l6-v2"


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.slow  # the engine loads the model on first use (~20 s)
@pytest.mark.asyncio
async def test_embeddings_sync_and_async(server, pc, mode: str) -> None:
    if mode == "async":
        async with AsyncPineconeClient(api_key=API_KEY, host=server.url) as client:
            embed = PineconeEmbedding(MODEL, async_client=client)
            query = await embed.aget_query_embedding("How do cats sleep?")
            texts = await embed.aget_text_embedding_batch(
                ["Cats sleep up to sixteen hours a day.", "Tax returns are due in April."]
            )
    else:
        embed = PineconeEmbedding(MODEL, client=pc)
        query = embed.get_query_embedding("How do cats sleep?")
        texts = embed.get_text_embedding_batch(
            ["Cats sleep up to sixteen hours a day.", "Tax returns are due in April."]
        )
    assert len(query) == 384
    assert [len(t) for t in texts] == [384, 384]
    assert cosine(query, texts[0]) > cosine(query, texts[1])


@pytest.mark.slow
def test_batches_follow_input_order(pc) -> None:
    embed = PineconeEmbedding(MODEL, client=pc, embed_batch_size=7)
    texts = [f"document number {i} about topic {i % 3}" for i in range(20)]
    batch = embed.get_text_embedding_batch(texts)
    assert len(batch) == 20
    assert batch[13] == pytest.approx(embed.get_text_embedding(texts[13]), abs=1e-5)


def test_api_key_is_not_serialised() -> None:
    embed = PineconeEmbedding(MODEL, api_key="secret-key", host="http://localhost:1")
    assert "secret-key" not in embed.to_json()
    assert embed.to_dict()["class_name"] == "PineconeRagEmbedding"

"""Query modes: DEFAULT, SPARSE, HYBRID (alpha, hybrid_top_k, sparse_top_k), MMR, and refusing the rest."""

from __future__ import annotations

import uuid

import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from llama_index.vector_stores.pinecone_rag import UnsupportedQueryError
from pinecone_rag.sparse import BM25Encoder

from .support import bag_of_words

pytestmark = pytest.mark.asyncio

Mode = VectorStoreQueryMode


def node(node_id: str, text: str, embedded_as: str | None = None) -> TextNode:
    return TextNode(id_=node_id, text=text, embedding=bag_of_words(embedded_as or text))


def crossed_nodes() -> list[TextNode]:
    """Dense and sparse disagree: 'dense' is embedded like 'apple' but reads 'zebra'; 'sparse' the reverse."""
    return [
        node("dense", "zebra stripes zebra", embedded_as="apple orchard apple"),
        node("sparse", "apple orchard apple", embedded_as="zebra stripes zebra"),
        node("other", "granite quarry stone"),
    ]


def hybrid(alpha: float | None, **kwargs: object) -> VectorStoreQuery:
    return VectorStoreQuery(
        query_embedding=bag_of_words("apple orchard"),
        query_str="apple orchard",
        mode=Mode.HYBRID,
        alpha=alpha,
        similarity_top_k=3,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_hybrid_alpha_weights_dense_and_sparse(make_store) -> None:
    nodes = crossed_nodes()
    h = await make_store("dotproduct", sparse_encoder=BM25Encoder().fit(n.text for n in nodes))
    await h.add(nodes)

    dense_only = await h.query(hybrid(1.0))
    sparse_only = await h.query(hybrid(0.0))
    assert dense_only.ids is not None
    assert dense_only.ids[0] == "dense"
    assert sparse_only.ids is not None
    assert sparse_only.ids[0] == "sparse"

    # Pinecone's convex combination: each score at alpha=0.3 is 0.3 * dense + 0.7 * sparse.
    mixed = await h.query(hybrid(0.3))
    dense_score = dict(zip(dense_only.ids, dense_only.similarities or [], strict=True))
    sparse_score = dict(zip(sparse_only.ids, sparse_only.similarities or [], strict=True))
    for node_id, score in zip(mixed.ids or [], mixed.similarities or [], strict=True):
        assert score == pytest.approx(0.3 * dense_score[node_id] + 0.7 * sparse_score[node_id], abs=1e-4)

    assert len((await h.query(hybrid(None, hybrid_top_k=1))).ids or []) == 1


async def test_sparse_mode_needs_no_embedding(make_store) -> None:
    nodes = crossed_nodes()
    h = await make_store("dotproduct", sparse_encoder=BM25Encoder().fit(n.text for n in nodes))
    await h.add(nodes)
    query = VectorStoreQuery(query_str="zebra", mode=Mode.SPARSE, similarity_top_k=3, sparse_top_k=1)
    result = await h.query(query)
    assert result.ids == ["dense"]  # the node whose text says zebra; sparse_top_k wins over similarity_top_k


async def test_sparse_index(make_store, pc) -> None:
    name = f"li-sparse-{uuid.uuid4().hex[:8]}"
    pc.create_index(name, metric="dotproduct", vector_type="sparse")
    try:
        h = await make_store(index_name=name, sparse_encoder=True)
        await h.add([node("a", "granite quarry"), node("b", "apple orchard")])
        result = await h.query(VectorStoreQuery(query_str="orchard", mode=Mode.SPARSE))
        assert result.ids == ["b"]
        with pytest.raises(UnsupportedQueryError, match="index is sparse"):
            await h.query(VectorStoreQuery(query_embedding=bag_of_words("x")))
    finally:
        pc.delete_index(name)


async def test_mmr_trades_relevance_for_diversity(make_store) -> None:
    h = await make_store()
    await h.add(
        [
            node("cat1", "the cat sat on the mat"),
            node("cat2", "the cat sat on the mat today"),
            node("dog", "a dog ran in the park"),
            node("fish", "goldfish swim in bowls"),
        ]
    )
    base = {"query_embedding": bag_of_words("cat sat mat"), "similarity_top_k": 2}
    plain = await h.query(VectorStoreQuery(**base))  # type: ignore[arg-type]
    assert plain.ids == ["cat1", "cat2"]
    diverse = await h.query(VectorStoreQuery(mode=Mode.MMR, mmr_threshold=0.1, **base))  # type: ignore[arg-type]
    assert diverse.ids is not None
    assert diverse.ids[0] == "cat1"
    assert diverse.ids[1] != "cat2"
    # Threshold 1 ignores diversity; a threshold passed as a keyword (as SimpleVectorStore reads it) works.
    relevant = await h.query(VectorStoreQuery(mode=Mode.MMR, **base), mmr_threshold=1.0)  # type: ignore[arg-type]
    assert relevant.ids == ["cat1", "cat2"]


@pytest.mark.parametrize(
    "query_mode", [Mode.TEXT_SEARCH, Mode.SEMANTIC_HYBRID, Mode.SVM, Mode.LINEAR_REGRESSION]
)
async def test_regression_unsupported_modes_raise(make_store, query_mode: VectorStoreQueryMode) -> None:
    """W3: the official store answers MMR, TEXT_SEARCH, SEMANTIC_HYBRID ... with an all-zero dense vector,
    i.e. arbitrary results. Unsupported modes raise, naming the mode."""
    h = await make_store()
    await h.add([node("a", "anything")])
    query = VectorStoreQuery(query_embedding=bag_of_words("anything"), query_str="anything", mode=query_mode)
    with pytest.raises(UnsupportedQueryError, match=query_mode.value):
        await h.query(query)


async def test_regression_sparse_modes_without_encoder_raise(make_store) -> None:
    """W3: without a sparse model the official store runs SPARSE on a zero vector and HYBRID as dense-only,
    silently."""
    h = await make_store("dotproduct")
    await h.add([node("a", "anything")])
    for query_mode in (Mode.SPARSE, Mode.HYBRID):
        query = VectorStoreQuery(query_embedding=bag_of_words("x"), query_str="x", mode=query_mode)
        with pytest.raises(UnsupportedQueryError, match="sparse encoder"):
            await h.query(query)


async def test_regression_missing_embedding_raises(make_store) -> None:
    """W7: the official store sends vector=None for a DEFAULT query without an embedding (and accepts a
    default_empty_query_vector it throws away). Here the missing embedding is named."""
    h = await make_store()
    with pytest.raises(UnsupportedQueryError, match="query_embedding"):
        await h.query(VectorStoreQuery(query_str="no embedding"))


async def test_hybrid_needs_dotproduct(make_store) -> None:
    h = await make_store("cosine", sparse_encoder=True)
    with pytest.raises(UnsupportedQueryError, match="dotproduct"):
        await h.query(hybrid(0.5))

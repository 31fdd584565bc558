"""PineconeVectorStore beyond the standard suite: scores, MMR, batching, filters, lifecycle, and a
regression test for each langchain-pinecone bug we avoid (named in the docstrings)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import pytest
from langchain_core.documents import Document

from langchain_pinecone_rag import FilterError, PineconeVectorStore
from pinecone_rag import InvalidArgumentError, PineconeClient, UpsertError

from .conftest import KeywordEmbeddings, unique

if TYPE_CHECKING:
    from collections.abc import Callable

    from pinecone_rag import AsyncPineconeClient

FRUIT = ["apple", "apple banana", "banana", "cherry", "date fig"]


def make_store(
    pc: PineconeClient, new_index: Callable[..., str], metric: str = "cosine", **kwargs: object
) -> PineconeVectorStore:
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension, metric)
    return PineconeVectorStore(embedding=embeddings, client=pc, index_name=name, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ relevance
@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_relevance_scores_are_exact_for_unit_vectors(pc, new_index, metric) -> None:
    """Identical -> 1, orthogonal -> 0.5, for every metric (langchain-pinecone inverted dotproduct
    relevance and pushed euclidean outside 0..1; langchain-ai/langchain#8207, #12697)."""
    store = make_store(pc, new_index, metric)
    store.add_texts(["apple", "banana"], ids=["a", "b"])
    scored = {doc.id: score for doc, score in store.similarity_search_with_relevance_scores("apple", k=2)}
    assert scored["a"] == pytest.approx(1.0, abs=1e-5)
    assert scored["b"] == pytest.approx(0.5, abs=1e-5)


def test_score_threshold_keeps_the_best_documents(pc, new_index) -> None:
    """A similarity mistaken for a distance made score_threshold drop the best match
    (langchain-ai/langchain#8207, PR #8920)."""
    store = make_store(pc, new_index)
    store.add_texts(FRUIT, ids=[str(i) for i in range(len(FRUIT))])
    retriever = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.9, "k": 5}
    )
    assert [doc.page_content for doc in retriever.invoke("cherry")] == ["cherry"]


def test_native_scores_keep_their_direction(pc, new_index) -> None:
    """Native scores: similarities descending (cosine), squared distances ascending (euclidean)."""
    cosine = make_store(pc, new_index, "cosine")
    euclidean = make_store(pc, new_index, "euclidean")
    for store in (cosine, euclidean):
        store.add_texts(["apple", "apple banana", "banana"], ids=["a", "ab", "b"])
    cos = cosine.similarity_search_with_score("apple", k=3)
    euc = euclidean.similarity_search_with_score("apple", k=3)
    assert [d.id for d, _ in cos] == [d.id for d, _ in euc] == ["a", "ab", "b"]
    assert cos[0][1] == pytest.approx(1.0, abs=1e-5)
    assert euc[0][1] == pytest.approx(0.0, abs=1e-5)
    assert euc[2][1] == pytest.approx(2.0, abs=1e-5)


async def test_relevance_in_async_only_store(pc, apc: AsyncPineconeClient, new_index) -> None:
    """The metric is read through the async index: a store without any sync data plane still scores
    (langchain-pinecone made sync control-plane calls inside async code)."""
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension, "dotproduct")
    store = PineconeVectorStore(embedding=embeddings, async_client=apc, index_name=name)
    await store.aadd_texts(["apple", "banana"], ids=["a", "b"])
    pairs = await store.asimilarity_search_with_relevance_scores("apple", k=2)
    assert [(d.id, round(s, 4)) for d, s in pairs] == [("a", 1.0), ("b", 0.5)]
    with pytest.raises(ValueError, match="async use only"):
        store.similarity_search("apple")


# ------------------------------------------------------------------------------------------- MMR
@pytest.mark.parametrize("use_async", [False, True])
async def test_mmr_prefers_diverse_documents_and_keeps_ids(pc, apc, new_index, use_async) -> None:
    """MMR results carry their ids (langchain-pinecone returned them without, PR #25630) and trade
    relevance for diversity."""
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension)
    store = PineconeVectorStore(
        pc.index(name), embeddings, async_index=await apc.index(name), namespace=unique("ns")
    )
    texts = ["apple", "apple apple", "apple banana", "banana cherry"]
    store.add_texts(texts, ids=["a1", "a2", "ab", "bc"])
    query = "apple banana"
    if use_async:
        diverse = await store.amax_marginal_relevance_search(query, k=2, fetch_k=4, lambda_mult=0.1)
        relevant = await store.amax_marginal_relevance_search(query, k=2, fetch_k=4, lambda_mult=1.0)
    else:
        diverse = store.max_marginal_relevance_search(query, k=2, fetch_k=4, lambda_mult=0.1)
        relevant = store.max_marginal_relevance_search(query, k=2, fetch_k=4, lambda_mult=1.0)
    assert diverse[0].id == relevant[0].id == "ab"
    assert diverse[1].id == "bc"  # the candidate least like "apple banana" among the rest
    assert relevant[1].id in {"a1", "a2"}
    assert all(doc.id for doc in diverse + relevant)


def test_mmr_by_vector_with_filter(pc, new_index) -> None:
    store = make_store(pc, new_index)
    store.add_texts(FRUIT, [{"n": i} for i in range(len(FRUIT))], ids=[str(i) for i in range(len(FRUIT))])
    docs = store.max_marginal_relevance_search_by_vector(
        KeywordEmbeddings().vector("apple"), k=3, filter={"n": {"$gte": 2}}
    )
    assert {doc.id for doc in docs} <= {"2", "3", "4"}
    assert len(docs) == 3


# -------------------------------------------------------------------------------------- writes
def test_add_texts_batches_and_chunks(pc, new_index) -> None:
    """Embedding runs in chunks while the client upserts in batches; every record arrives."""
    store = make_store(pc, new_index, embedding_chunk_size=3)
    texts = [f"apple {i}" for i in range(10)]
    ids = store.add_texts(texts, batch_size=2, max_concurrency=3, show_progress=False)
    assert len(ids) == len(set(ids)) == 10
    assert store.embedding.batches == [3, 3, 3, 1]  # type: ignore[attr-defined]
    assert sorted(doc.page_content for doc in store.get_by_ids(ids)) == sorted(texts)


async def test_aadd_texts_batches(pc, apc, new_index) -> None:
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension)
    store = PineconeVectorStore(
        pc.index(name), embeddings, async_index=await apc.index(name), embedding_chunk_size=4
    )
    ids = await store.aadd_texts([f"fig {i}" for i in range(9)], batch_size=2)
    assert embeddings.batches == [4, 4, 1]
    assert len(await store.aget_by_ids(ids)) == 9


def test_caller_metadata_is_not_mutated(pc, new_index) -> None:
    """add_texts wrote the text key into the caller's metadata dicts (langchain-ai/langchain#3800)."""
    store = make_store(pc, new_index)
    documents = [Document(page_content="apple", metadata={"source": "a.md", "tags": ["x"]})]
    before = copy.deepcopy(documents)
    store.add_documents(documents, ids=["a"])
    assert documents == before
    assert store.get_by_ids(["a"])[0].metadata == {"source": "a.md", "tags": ["x"]}


def test_none_metadata_values_are_dropped(pc, new_index) -> None:
    """Pinecone has no null: None values are dropped rather than failing the whole upsert with a 400."""
    store = make_store(pc, new_index)
    store.add_texts(["apple"], [{"keep": 1, "drop": None}], ids=["a"])
    assert store.get_by_ids(["a"])[0].metadata == {"keep": 1}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"nested": {"a": 1}}, "nested"),
        ({"numbers": [1, 2]}, "numbers"),
        ({"text": "clash"}, "text_key"),
        ({"nan": float("nan")}, "nan"),
    ],
)
def test_unstorable_metadata_fails_before_sending(pc, new_index, metadata, message) -> None:
    """Unsupported metadata types surfaced as server 400s after embedding (langchain-pinecone #8 in the
    reference); here they fail before anything is embedded or sent."""
    store = make_store(pc, new_index)
    with pytest.raises(ValueError, match=message):
        store.add_texts(["apple"], [metadata], ids=["a"])
    assert store.embedding.batches == []  # type: ignore[attr-defined]
    assert store.get_by_ids(["a"]) == []


def test_records_the_server_refuses_raise_upsert_error(pc, new_index) -> None:
    """A batch the server rejects (metadata over its 40 KB limit) is an UpsertError naming its ids; the
    other batches are written."""
    store = make_store(pc, new_index)
    metadata = [{"n": 1}, {"blob": "x" * 50_000}, {"n": 3}]
    with pytest.raises(UpsertError) as caught:
        store.add_texts(["apple", "banana", "cherry"], metadata, ids=["a", "b", "c"], batch_size=1)
    assert caught.value.failed_ids == ["b"]
    assert isinstance(caught.value.__cause__, InvalidArgumentError)
    assert sorted(doc.page_content for doc in store.get_by_ids(["a", "b", "c"])) == ["apple", "cherry"]


def test_mismatched_lengths_are_rejected(pc, new_index) -> None:
    store = make_store(pc, new_index)
    with pytest.raises(ValueError, match="ids"):
        store.add_texts(["a", "b"], ids=["1"])
    with pytest.raises(ValueError, match="metadata"):
        store.add_texts(["a", "b"], [{}])


# ------------------------------------------------------------------------------------- deletes
def test_delete_by_ids_filter_and_everything(pc, new_index) -> None:
    """delete() without arguments deletes all, as LangChain's contract says (langchain-pinecone raised);
    missing ids are fine; every call returns True (langchain-pinecone returned None)."""
    store = make_store(pc, new_index)
    store.add_texts(FRUIT, [{"n": i} for i in range(len(FRUIT))], ids=[str(i) for i in range(len(FRUIT))])
    assert store.delete(["0", "missing"]) is True
    assert store.delete(filter={"n": {"$gte": 3}}) is True
    assert sorted(doc.id for doc in store.similarity_search("apple", k=10)) == ["1", "2"]  # type: ignore[type-var]
    assert store.delete() is True
    assert store.similarity_search("apple", k=10) == []


async def test_adelete_by_filter_and_everything(pc, apc, new_index) -> None:
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension)
    store = PineconeVectorStore(pc.index(name), embeddings, async_index=await apc.index(name))
    await store.aadd_texts(FRUIT, [{"n": i} for i in range(len(FRUIT))])
    assert await store.adelete(filter={"n": {"$lt": 4}}) is True
    assert [doc.page_content for doc in await store.asimilarity_search("fig", k=10)] == ["date fig"]
    assert await store.adelete(delete_all=True) is True
    assert await store.asimilarity_search("fig") == []


# ------------------------------------------------------------------------------ reads and filters
def test_get_by_ids_keeps_the_asked_order(pc, new_index) -> None:
    store = make_store(pc, new_index)
    store.add_texts(["apple", "banana", "cherry"], ids=["a", "b", "c"])
    assert [doc.id for doc in store.get_by_ids(["c", "missing", "a", "c"])] == ["c", "a"]


def test_records_without_text_key_are_returned(pc, new_index) -> None:
    """Records written by other tools lacked the text key and were skipped with a warning
    (langchain-ai/langchain#3460); they come back with empty page content."""
    store = make_store(pc, new_index)
    store.index.upsert([("raw", KeywordEmbeddings().vector("apple"), {"source": "other-tool"})])
    docs = store.similarity_search("apple", k=1)
    assert docs == [Document(id="raw", page_content="", metadata={"source": "other-tool"})]


def test_filters_are_validated_before_the_call(pc, new_index) -> None:
    store = make_store(pc, new_index)
    with pytest.raises(FilterError, match=r"filter\.year: unknown operator '\$like'"):
        store.similarity_search("apple", filter={"year": {"$like": 1}})
    with pytest.raises(FilterError, match=r"\$in"):
        store.similarity_search("apple", filter={"tag": ["a", "b"]})
    with pytest.raises(FilterError, match="nested"):
        store.similarity_search("apple", filter={"a": {"b": 1}})


def test_unknown_keyword_arguments_are_errors(pc, new_index) -> None:
    """langchain-pinecone's similarity_search_by_vector_with_score silently ignored unknown kwargs such
    as include_values."""
    store = make_store(pc, new_index)
    with pytest.raises(TypeError, match="include_values"):
        store.similarity_search("apple", include_values=True)
    with pytest.raises(TypeError, match="bogus"):
        store.add_texts(["apple"], bogus=1)


def test_filter_and_namespace_per_call(pc, new_index) -> None:
    store = make_store(pc, new_index, namespace="main")
    store.add_texts(["apple red", "apple green"], [{"color": "red"}, {"color": "green"}], ids=["r", "g"])
    store.add_texts(["apple blue"], ids=["b"], namespace="other")
    assert [d.id for d in store.similarity_search("apple", k=5, filter={"color": "green"})] == ["g"]
    assert [d.id for d in store.similarity_search("apple", k=5, namespace="other")] == ["b"]
    assert [d.id for d in store.get_by_ids_in(["b"], namespace="other")] == ["b"]


async def test_retriever_uses_the_store_namespace(pc, new_index) -> None:
    """The retriever passed namespace=None and queries hit the default namespace instead of the
    store's (langchain-pinecone #63 / #80)."""
    store = make_store(pc, new_index, namespace="tenant-a")
    store.add_texts(["apple"], ids=["a"])
    assert [d.id for d in store.as_retriever(search_kwargs={"namespace": None}).invoke("apple")] == ["a"]
    assert [d.id for d in await store.as_retriever().ainvoke("apple")] == ["a"]
    await store.aclose()


# ------------------------------------------------------------------------------- construction
def test_constructors_make_no_network_calls() -> None:
    """langchain-pinecone resolved hosts and validated models in constructors; here nothing is
    contacted until the first call, so a dead host only fails then."""
    dead = PineconeClient("key", "http://127.0.0.1:9", retries=0, timeout=2)
    store = PineconeVectorStore.from_existing_index("docs", KeywordEmbeddings(), client=dead)
    assert store.namespace == ""
    with pytest.raises(Exception):  # noqa: B017 - any connection error will do
        store.similarity_search("apple")
    dead.close()


def test_from_texts_and_from_documents(pc, new_index) -> None:
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension)
    store = PineconeVectorStore.from_texts(
        ["apple", "banana"], embeddings, [{"n": 1}, {"n": 2}], ids=["a", "b"], client=pc, index_name=name
    )
    assert [d.id for d in store.similarity_search("banana", k=1)] == ["b"]
    other = PineconeVectorStore.from_documents(
        [Document(page_content="cherry", id="c")], embeddings, client=pc, index_name=name, namespace="x"
    )
    assert other.get_by_ids(["c"])[0].page_content == "cherry"


async def test_afrom_texts_and_async_store_survives_many_calls(pc, apc, new_index) -> None:
    """langchain-pinecone closed a caller's async index after one call ("Session is closed",
    langchain-pinecone #78); a caller-owned async index stays usable."""
    embeddings = KeywordEmbeddings()
    name = new_index(embeddings.dimension)
    async_index = await apc.index(name)
    store = await PineconeVectorStore.afrom_texts(
        ["apple", "banana"], embeddings, ids=["a", "b"], index=pc.index(name), async_index=async_index
    )
    for _ in range(3):
        assert [d.id for d in await store.asimilarity_search("apple", k=1)] == ["a"]
    await store.aclose()
    assert (await async_index.fetch(["a"])).vectors

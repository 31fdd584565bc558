"""The local models behind the Inference API: limits, parameters, errors, lazy loading, and results."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from pinecone_rag.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from pinecone_rag.server.embedding_models import (
    BM25_MODEL,
    BM25_RERANK_MODEL,
    DENSE_MODEL,
    MINILM_RERANK_MODEL,
    MODELS_EXTRA_HINT,
    SPARSE_ALIAS,
    ModelRegistry,
    dense_extra_installed,
    load_minilm,
)
from pinecone_rag.sparse import term_index

needs_models = pytest.mark.skipif(not dense_extra_installed(), reason="the models extra is not installed")


class CountingLoader:
    """Loads the real model, counting calls, with every outbound connection refused."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"the model tried to open a connection: {args!r}")

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(socket.socket, "connect", refuse)
            patch.setattr(socket, "create_connection", refuse)
            return load_minilm()


@pytest.fixture(scope="module")
def loader() -> CountingLoader:
    return CountingLoader()


@pytest.fixture(scope="module")
def registry(loader: CountingLoader) -> ModelRegistry:
    return ModelRegistry(load_dense=loader)


def bm25() -> ModelRegistry:
    # Dense models reported missing: nothing here may load torch.
    return ModelRegistry(dense_available=lambda: False, load_dense=_never)


def _never() -> Any:
    raise AssertionError("the dense model must not be loaded")


# ----------------------------------------------------------------------------------------- catalogue
def test_listing_names_every_model_with_its_dimension_metrics_and_limits():
    listed = {info["model"]: info for info in bm25().list_json()}
    assert set(listed) == {DENSE_MODEL, BM25_MODEL, SPARSE_ALIAS, BM25_RERANK_MODEL, MINILM_RERANK_MODEL}
    dense = listed[DENSE_MODEL]
    assert (dense["type"], dense["vector_type"], dense["default_dimension"]) == ("embed", "dense", 384)
    assert dense["supported_metrics"] == ["cosine", "dotproduct"]
    assert (dense["max_batch_size"], dense["max_sequence_length"]) == (96, 256)
    assert listed[BM25_MODEL]["supported_metrics"] == ["dotproduct"]
    assert "default_dimension" not in listed[BM25_MODEL]
    required = {p["parameter"] for p in listed[BM25_MODEL]["supported_parameters"] if p["required"]}
    assert required == {"input_type"}
    assert [m["model"] for m in bm25().list_json(type="embed", vector_type="sparse")] == [
        BM25_MODEL,
        SPARSE_ALIAS,
    ]


def test_unknown_models_are_pinecones_400_for_embed_and_404_for_describe():
    models = bm25()
    with pytest.raises(InvalidArgumentError) as embed_error:
        models.embed("text-embedding-3-large", ["x"], {"input_type": "query"})
    assert embed_error.value.message == (
        "Model text-embedding-3-large not found. Supported models: "
        f"'{DENSE_MODEL}', '{BM25_MODEL}', '{SPARSE_ALIAS}'"
    )
    with pytest.raises(InvalidArgumentError, match=BM25_RERANK_MODEL):
        models.rerank(DENSE_MODEL, "q", ["d"])  # an embed model is not a reranker
    with pytest.raises(NotFoundError, match="Supported models"):
        models.info("nope")


def test_without_the_models_extra_dense_models_are_listed_unavailable_and_refused_clearly():
    models = bm25()
    listed = {info["model"]: info for info in models.list_json()}
    assert MODELS_EXTRA_HINT in listed[DENSE_MODEL]["short_description"]
    assert MODELS_EXTRA_HINT not in listed[BM25_MODEL]["short_description"]
    with pytest.raises(FailedPreconditionError, match=r"pip install 'pinecone-rag\[models\]'"):
        models.embed(DENSE_MODEL, ["hello"], {"input_type": "passage"})
    with pytest.raises(FailedPreconditionError, match="sentence-transformers"):
        models.rerank(MINILM_RERANK_MODEL, "q", ["d"])
    # The sparse model and the BM25 reranker always work.
    assert models.embed(BM25_MODEL, ["hello"], {"input_type": "passage"}).vector_type == "sparse"
    assert models.rerank(BM25_RERANK_MODEL, "hello", ["hello there", "bye"])[0] > 0


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({}, "requires the parameter 'input_type'"),
        ({"input_type": "document"}, "Invalid value 'document' for parameter 'input_type'"),
        ({"input_type": "query", "truncate": "START"}, "Allowed values: END, NONE"),
        ({"input_type": "query", "dimension": 8}, "Parameter 'dimension' is not supported"),
        ({"input_type": "query", "return_tokens": "yes"}, "'return_tokens'"),
        ({"input_type": "query", "max_tokens_per_sequence": 100}, "Allowed values: 512, 2048"),
    ],
)
def test_bad_parameters_are_400s(parameters: dict[str, Any], message: str):
    with pytest.raises(InvalidArgumentError, match=message):
        bm25().embed(BM25_MODEL, ["text"], parameters)


def test_batch_limits_are_pinecones():
    models = bm25()
    assert len(models.embed(BM25_MODEL, ["a"] * 96, {"input_type": "passage"})) == 96
    with pytest.raises(InvalidArgumentError, match="Batch size 97 exceeds the maximum of 96"):
        models.embed(BM25_MODEL, ["a"] * 97, {"input_type": "passage"})
    with pytest.raises(InvalidArgumentError, match=r"documents \(101\) exceeds the maximum of 100"):
        models.rerank(BM25_RERANK_MODEL, "a", ["a"] * 101)


# -------------------------------------------------------------------------------------------- sparse
def test_sparse_passages_weigh_term_frequency_and_queries_weigh_one_per_term():
    models = bm25()
    passage = models.embed(BM25_MODEL, ["cat cat dog"], {"input_type": "passage"}).sparse[0]
    weights = dict(zip(passage.indices.tolist(), passage.values.tolist(), strict=True))
    assert weights[term_index("cat")] > weights[term_index("dog")] > 0
    query = models.embed(BM25_MODEL, ["cat cat dog"], {"input_type": "query"}).sparse[0]
    assert sorted(query.values.tolist()) == [1.0, 1.0]


def test_sparse_tokens_match_their_indices_and_the_alias_answers_under_its_own_name():
    result = bm25().embed(
        SPARSE_ALIAS, ["Vectors, vectors and indexes"], {"input_type": "passage", "return_tokens": True}
    )
    assert result.model == SPARSE_ALIAS
    body = result.to_json()["data"][0]
    assert [term_index(token) for token in body["sparse_tokens"]] == body["sparse_indices"]
    assert sorted(body["sparse_tokens"]) == ["and", "indexes", "vectors"]


def test_sparse_truncation_cuts_at_the_token_limit_or_refuses():
    models = bm25()
    long_text = " ".join(f"w{i}" for i in range(600))
    cut = models.embed(BM25_MODEL, [long_text], {"input_type": "passage"})
    assert cut.total_tokens == 512
    assert len(cut.sparse[0].indices) == 512
    wide = models.embed(BM25_MODEL, [long_text], {"input_type": "passage", "max_tokens_per_sequence": 2048})
    assert wide.total_tokens == 600
    with pytest.raises(InvalidArgumentError, match="Input 1 has 600 tokens, more than the 512"):
        models.embed(BM25_MODEL, ["short", long_text], {"input_type": "passage", "truncate": "NONE"})


def test_bm25_rerank_prefers_documents_with_the_rarer_query_terms():
    scores = bm25().rerank(
        BM25_RERANK_MODEL, "python decorators", ["python lists", "python decorators", "cooking"]
    )
    assert scores[1] > scores[0] > scores[2] == 0.0
    assert all(0.0 <= score < 1.0 for score in scores)


# --------------------------------------------------------------------------------------------- dense
@needs_models
def test_the_dense_model_loads_lazily_once_and_offline_under_concurrent_use(
    registry: ModelRegistry, loader: CountingLoader
):
    assert registry.list_json()
    assert loader.calls == 0
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: registry.embed(DENSE_MODEL, [f"text {i}"]), range(4)))
    assert loader.calls == 1
    assert all(result.dense is not None and result.dense.shape == (1, 384) for result in results)


@needs_models
def test_dense_embeddings_are_unit_length_symmetric_and_meaningful(registry: ModelRegistry):
    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "Interest rates rose again."]
    passage = registry.embed(DENSE_MODEL, texts, {"input_type": "passage"})
    query = registry.embed(DENSE_MODEL, texts, {"input_type": "query"})
    assert passage.dense is not None
    assert query.dense is not None
    assert passage.dense.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(passage.dense, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(passage.dense, query.dense, atol=1e-6)
    similarity = passage.dense @ passage.dense.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert passage.total_tokens > len(texts) * 3  # word pieces plus [CLS] and [SEP]


@needs_models
def test_dense_truncation_caps_tokens_at_256_or_refuses(registry: ModelRegistry):
    long_text = "token " * 400
    cut = registry.embed(DENSE_MODEL, [long_text])
    assert cut.total_tokens == 256
    with pytest.raises(InvalidArgumentError, match="Input 0 has 402 tokens, more than the 256"):
        registry.embed(DENSE_MODEL, [long_text], {"truncate": "NONE"})


@needs_models
def test_minilm_rerank_orders_by_meaning(registry: ModelRegistry):
    scores = registry.rerank(
        MINILM_RERANK_MODEL, "How do I bake bread?", ["Stock prices fell.", "Knead the dough, then bake it."]
    )
    assert scores[1] > scores[0]
    assert all(0.0 <= score <= 1.0 for score in scores)

"""BM25 encoder: the dot product of a query and a document vector is the BM25 score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pinecone_rag.sparse import BM25Encoder, term_index, tokenize

CORPUS = [
    "The with statement wraps a block with methods of a context manager",
    "A for loop iterates over the items of a sequence",
    "The while loop repeats while the condition is true",
    "Exceptions are raised with the raise statement",
]


def _dot(a, b) -> float:
    common = dict(zip(a.indices.tolist(), a.values.tolist(), strict=True))
    return sum(common.get(i, 0.0) * v for i, v in zip(b.indices.tolist(), b.values.tolist(), strict=True))


def _bm25(encoder: BM25Encoder, query: str, document: str) -> float:
    terms = tokenize(document)
    score = 0.0
    for term in set(tokenize(query)):
        tf = terms.count(term)
        n, df = encoder.document_count, sum(term in tokenize(d) for d in CORPUS)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        norm = encoder.k1 * (1 - encoder.b + encoder.b * len(terms) / encoder.average_length)
        score += idf * tf * (encoder.k1 + 1) / (tf + norm)
    return score


def test_dot_product_equals_textbook_bm25() -> None:
    encoder = BM25Encoder().fit(CORPUS)
    for query in ["with statement", "loop condition", "raise exceptions", "nothing here"]:
        q = encoder.encode_queries(query)
        for document in CORPUS:
            assert _dot(q, encoder.encode_documents(document)) == pytest.approx(
                _bm25(encoder, query, document), rel=1e-5
            )


def test_ranks_the_matching_document_first() -> None:
    encoder = BM25Encoder().fit(CORPUS)
    documents = encoder.encode_documents(CORPUS)
    scores = [_dot(encoder.encode_queries("context manager"), d) for d in documents]
    assert int(np.argmax(scores)) == 0


def test_indices_are_sorted_unique_uint32_and_stable() -> None:
    vector = BM25Encoder().encode_documents("b a b c a")
    assert vector.indices.dtype == np.uint32
    assert vector.values.dtype == np.float32
    assert list(vector.indices) == sorted(set(vector.indices.tolist()))
    assert term_index("python") == term_index("python") != term_index("pythons")


def test_round_trips_through_json(tmp_path) -> None:
    encoder = BM25Encoder(k1=1.5).fit(CORPUS)
    encoder.save(tmp_path / "bm25.json")
    loaded = BM25Encoder.load(tmp_path / "bm25.json")
    assert loaded == encoder
    assert loaded.encode_queries("loop") == encoder.encode_queries("loop")


def test_empty_text_gives_an_empty_vector() -> None:
    assert len(BM25Encoder().encode_queries("the a of").indices) == 0

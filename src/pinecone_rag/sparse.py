"""A BM25 sparse encoder in pure numpy, for hybrid search on dotproduct indexes.

Documents and queries are encoded asymmetrically, the way BM25 scores split when the score is a dot
product: a document's weight for a term is its saturated, length-normalised term frequency; a query's
weight is the term's inverse document frequency. The dot product of the two is then the BM25 score.

Terms become sparse indices through a stable 32-bit hash (BLAKE2b), so an encoder needs no vocabulary,
encodes unseen words, and gives the same indices in every process and on every machine.

Example:
    >>> encoder = BM25Encoder().fit(["the cat sat", "the dog ran"])
    >>> document = encoder.encode_documents("the cat")
    >>> query = encoder.encode_queries("cat")
    >>> sorted(set(query.indices) & set(document.indices)) == list(query.indices)
    True
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import orjson

from pinecone_rag.models import SparseValues

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Sequence

__all__ = ["BM25Encoder", "tokenize"]

_TOKEN = re.compile(r"\w+", re.UNICODE)
# Words so common in English that they carry no signal for retrieval; dropping them keeps vectors short.
# Words that are also Python keywords (with, for, if, in, is, and, or, as, from) stay: they are topics.
_STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "are",
        "at",
        "be",
        "but",
        "by",
        "has",
        "have",
        "he",
        "her",
        "his",
        "i",
        "into",
        "it",
        "its",
        "of",
        "on",
        "she",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "who",
        "will",
        "you",
        "your",
    }
)


def tokenize(text: str, *, stop_words: frozenset[str] = _STOP_WORDS) -> list[str]:
    """Lower-cased word tokens of ``text`` without English stop words.

    Example:
        >>> tokenize("The Cat sat on the mat")
        ['cat', 'sat', 'mat']
    """
    return [token for token in _TOKEN.findall(text.lower()) if token not in stop_words]


def term_index(term: str) -> int:
    """The sparse index of a term: a stable 32-bit hash, the same in every process."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def _sparse(weights: dict[int, float]) -> SparseValues:
    indices = np.fromiter(sorted(weights), dtype=np.uint32, count=len(weights))
    values = np.fromiter((weights[int(i)] for i in indices), dtype=np.float32, count=len(weights))
    return SparseValues(indices, values)


@dataclass
class BM25Encoder:
    """BM25 weights as sparse vectors: fit on a corpus, then encode documents and queries.

    An unfitted encoder treats every term as equally rare (idf 1) and every document as average length,
    which still ranks by term overlap; fitting on the corpus adds BM25's rarity and length terms.

    Args:
        k1: Term-frequency saturation (BM25's ``k1``).
        b: Length normalisation (BM25's ``b``).

    Example:
        >>> encoder = BM25Encoder().fit(["with statements", "for loops"])
        >>> encoder.encode_queries(["with"])[0].values.tolist() > [0.0]
        True
    """

    k1: float = 1.2
    b: float = 0.75
    document_count: int = 0
    average_length: float = 0.0
    document_frequency: dict[int, int] = field(default_factory=dict)

    def fit(self, corpus: Iterable[str]) -> BM25Encoder:
        """Learn document frequencies and the average length from ``corpus``; returns ``self``."""
        frequency: Counter[int] = Counter()
        documents = 0
        total_length = 0
        for text in corpus:
            terms = tokenize(text)
            documents += 1
            total_length += len(terms)
            frequency.update({term_index(term) for term in terms})
        self.document_count = documents
        self.average_length = total_length / documents if documents else 0.0
        self.document_frequency = dict(frequency)
        return self

    def idf(self, index: int) -> float:
        """BM25's inverse document frequency of a term (1.0 for an unfitted encoder)."""
        if not self.document_count:
            return 1.0
        df = self.document_frequency.get(index, 0)
        return math.log(1.0 + (self.document_count - df + 0.5) / (df + 0.5))

    @overload
    def encode_documents(self, texts: str) -> SparseValues: ...  # type: ignore[overload-overlap]
    @overload
    def encode_documents(self, texts: Sequence[str]) -> list[SparseValues]: ...
    def encode_documents(self, texts: str | Sequence[str]) -> SparseValues | list[SparseValues]:
        """Sparse vectors for documents: saturated, length-normalised term frequencies."""
        if isinstance(texts, str):
            return self._document(texts)
        return [self._document(text) for text in texts]

    @overload
    def encode_queries(self, texts: str) -> SparseValues: ...  # type: ignore[overload-overlap]
    @overload
    def encode_queries(self, texts: Sequence[str]) -> list[SparseValues]: ...
    def encode_queries(self, texts: str | Sequence[str]) -> SparseValues | list[SparseValues]:
        """Sparse vectors for queries: each distinct term weighted by its idf."""
        if isinstance(texts, str):
            return self._query(texts)
        return [self._query(text) for text in texts]

    def _document(self, text: str) -> SparseValues:
        counts = Counter(term_index(term) for term in tokenize(text))
        length = sum(counts.values())
        average = self.average_length or float(length) or 1.0
        norm = self.k1 * (1.0 - self.b + self.b * length / average)
        return _sparse({index: tf * (self.k1 + 1.0) / (tf + norm) for index, tf in counts.items()})

    def _query(self, text: str) -> SparseValues:
        terms = {term_index(term) for term in tokenize(text)}
        return _sparse({index: self.idf(index) for index in terms})

    # ------------------------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """The fitted state as JSON-compatible data."""
        return {
            "k1": self.k1,
            "b": self.b,
            "document_count": self.document_count,
            "average_length": self.average_length,
            "document_frequency": {str(k): v for k, v in self.document_frequency.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BM25Encoder:
        """Rebuild an encoder from :meth:`to_dict` output."""
        return cls(
            k1=float(data["k1"]),
            b=float(data["b"]),
            document_count=int(data["document_count"]),
            average_length=float(data["average_length"]),
            document_frequency={int(k): int(v) for k, v in data["document_frequency"].items()},
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted state to a JSON file."""
        with open(path, "wb") as file:  # noqa: PTH123 - path may be any os.PathLike
            file.write(orjson.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BM25Encoder:
        """Read an encoder written by :meth:`save`."""
        with open(path, "rb") as file:  # noqa: PTH123 - path may be any os.PathLike
            return cls.from_dict(orjson.loads(file.read()))

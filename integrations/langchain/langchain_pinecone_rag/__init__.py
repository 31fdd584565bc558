"""LangChain and LangGraph integrations for pinecone-rag.

* :class:`PineconeVectorStore`: a LangChain ``VectorStore`` (sync and native async, MMR, hybrid search).
* :class:`PineconeEmbeddings`: LangChain ``Embeddings`` over Pinecone's Inference API.
* :class:`PineconeTranslator`: the self-query ``Visitor`` that turns structured queries into filters.
* :class:`PineconeStore`: a LangGraph ``BaseStore`` for agent memory (needs the ``langgraph`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_pinecone_rag.embeddings import PineconeEmbeddings
from langchain_pinecone_rag.filters import FilterError, validate_filter
from langchain_pinecone_rag.retrievers import PineconeRetriever
from langchain_pinecone_rag.self_query import PineconeTranslator
from langchain_pinecone_rag.vectorstores import PineconeVectorStore

if TYPE_CHECKING:
    from langchain_pinecone_rag.memory import PineconeStore

__all__ = [
    "FilterError",
    "PineconeEmbeddings",
    "PineconeRetriever",
    "PineconeStore",
    "PineconeTranslator",
    "PineconeVectorStore",
    "validate_filter",
]


def __getattr__(name: str) -> Any:
    # langgraph is an optional extra: import the store only when it is asked for.
    if name == "PineconeStore":
        from langchain_pinecone_rag.memory import PineconeStore  # noqa: PLC0415

        return PineconeStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

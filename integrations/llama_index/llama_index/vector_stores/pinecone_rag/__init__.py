"""LlamaIndex integrations for pinecone-rag: the vector store, embeddings and agent memory helpers.

Example:
    >>> from llama_index.vector_stores.pinecone_rag import PineconeVectorStore  # doctest: +SKIP
"""

from __future__ import annotations

from llama_index.vector_stores.pinecone_rag.base import PineconeVectorStore, UpsertError
from llama_index.vector_stores.pinecone_rag.embedding import PineconeEmbedding
from llama_index.vector_stores.pinecone_rag.filters import UnsupportedFilterError, to_pinecone_filter
from llama_index.vector_stores.pinecone_rag.memory import (
    SessionVectorMemoryBlock,
    areset_memory,
    reset_memory,
)
from llama_index.vector_stores.pinecone_rag.metadata import MetadataTooLargeError
from llama_index.vector_stores.pinecone_rag.query import UnsupportedQueryError

__all__ = [
    "MetadataTooLargeError",
    "PineconeEmbedding",
    "PineconeVectorStore",
    "SessionVectorMemoryBlock",
    "UnsupportedFilterError",
    "UnsupportedQueryError",
    "UpsertError",
    "areset_memory",
    "reset_memory",
    "to_pinecone_filter",
]

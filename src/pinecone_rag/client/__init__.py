"""The client: control plane, discovery, data plane transports and inference (sync and async twins)."""

from __future__ import annotations

from pinecone_rag.client.async_index import AsyncIndex
from pinecone_rag.client.index import Index
from pinecone_rag.client.pinecone import AsyncPineconeClient, PineconeClient

__all__ = ["AsyncIndex", "AsyncPineconeClient", "Index", "PineconeClient"]

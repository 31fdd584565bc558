"""LlamaIndex integrations for pinecone-rag."""

from __future__ import annotations

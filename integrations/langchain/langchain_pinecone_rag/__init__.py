"""LangChain and LangGraph integrations for pinecone-rag."""

from __future__ import annotations

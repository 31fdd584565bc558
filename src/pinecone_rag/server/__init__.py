"""The local engine: a Pinecone-compatible server that runs in-process or as ``pinecone-rag serve``."""

from __future__ import annotations

from pinecone_rag.server.launcher import LocalServer
from pinecone_rag.server.settings import ServerSettings

__all__ = ["LocalServer", "ServerSettings"]

"""pinecone-rag: Pinecone for RAG and agent applications.

The local engine lives in :mod:`pinecone_rag.server` (``LocalServer``, ``pinecone-rag serve``).
"""

from __future__ import annotations

from pinecone_rag._version import __version__
from pinecone_rag.errors import (
    AlreadyExistsError,
    ApiError,
    ConfigurationError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    PineconeError,
    ResourceExhaustedError,
    UnauthenticatedError,
)

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "ConfigurationError",
    "ForbiddenError",
    "InvalidArgumentError",
    "NotFoundError",
    "PineconeError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "__version__",
]

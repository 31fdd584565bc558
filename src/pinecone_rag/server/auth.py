"""The gateway's API-key check: which project, if any, a key belongs to.

Keys come from the settings (``--api-key``, ``PINECONE_RAG_API_KEYS``; they belong to the default
project) and from the control-plane database (``pinecone-rag keys create``). With no key configured
anywhere the engine is open: any non-empty key maps to the default project. The launcher refuses to bind
a non-loopback address in that mode.
"""

from __future__ import annotations

import hmac
import threading
import time
from typing import TYPE_CHECKING

from pinecone_rag.errors import UnauthenticatedError
from pinecone_rag.server.control_db import DEFAULT_PROJECT, hash_key

if TYPE_CHECKING:
    from pinecone_rag.server.control_db import ControlDatabase

INVALID_KEY_MESSAGE = "Invalid API key."
_CACHE_SECONDS = 1.0  # how long a revocation may take to bite; keeps SQLite off the hot path


class KeyRing:
    """Resolves API keys to project ids."""

    def __init__(self, database: ControlDatabase, configured: tuple[str, ...]) -> None:
        self._database = database
        self._configured = {hash_key(key) for key in configured}
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str | None, float]] = {}
        self._open_until = 0.0
        self._open = not self._configured and not database.has_active_keys()

    @property
    def open_mode(self) -> bool:
        """True while no key is configured: any non-empty key is accepted."""
        now = time.monotonic()
        with self._lock:
            if now >= self._open_until:
                self._open = not self._configured and not self._database.has_active_keys()
                self._open_until = now + _CACHE_SECONDS
            return self._open

    def project_for(self, key: str | None) -> str:
        """The project id of ``key``.

        Raises:
            UnauthenticatedError: the key is missing, or matches no active key.
        """
        if not key:
            raise UnauthenticatedError(INVALID_KEY_MESSAGE)
        if self.open_mode:
            return DEFAULT_PROJECT
        digest = hash_key(key)
        if any(hmac.compare_digest(digest, known) for known in self._configured):
            return DEFAULT_PROJECT
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            project = cached[0]
        else:
            project = self._database.project_for_key_hash(digest)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (project, now + _CACHE_SECONDS)
        if project is None:
            raise UnauthenticatedError(INVALID_KEY_MESSAGE)
        return project

"""Where an adapter gets its sync ``Index`` and its ``AsyncIndex`` from, without network calls up front.

grpc.aio channels belong to the event loop they were created on, so an ``AsyncIndex`` cannot be built
in a constructor and reused under ``asyncio.run`` twice. :class:`IndexSource` therefore keeps what the
caller gave it and builds async connections on first use, one per running loop:

* ``async_index`` given: used as is, never closed here (the caller owns it; a store that closed a
  caller's index after one call was langchain-pinecone#78).
* ``async_client`` + ``index_name``: ``await async_client.index(name)``, the caller owns the client.
* ``client`` + ``index_name`` only: an ``AsyncPineconeClient`` with the same key and host is opened for
  the running loop and closed by :meth:`IndexSource.aclose` (``async with store:``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pinecone_rag import AsyncPineconeClient

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from pinecone_rag import AsyncIndex, Index, PineconeClient


class IndexSource:
    """The sync and async data planes of one index, resolved lazily.

    Args:
        index: A sync ``Index``.
        async_index: An ``AsyncIndex`` for the loop it will be used on.
        client: A ``PineconeClient`` (with ``index_name``) for the sync index and to derive async ones.
        async_client: An ``AsyncPineconeClient`` (with ``index_name``) for the async index.
        index_name: The index name for ``client`` / ``async_client``.
    """

    def __init__(
        self,
        index: Index | None = None,
        *,
        async_index: AsyncIndex | None = None,
        client: PineconeClient | None = None,
        async_client: AsyncPineconeClient | None = None,
        index_name: str | None = None,
    ) -> None:
        if index is None and async_index is None and index_name is None:
            raise ValueError("Pass index=, async_index=, or index_name= with client= / async_client=.")
        if index_name is not None and client is None and async_client is None:
            raise ValueError("index_name= needs client= (a PineconeClient) or async_client=.")
        self._index = index
        self._async_index = async_index
        self.client = client
        self._async_client = async_client
        self.index_name = index_name if index_name is not None else _name_of(index, async_index)
        self._owned: dict[asyncio.AbstractEventLoop, tuple[AsyncGenerator[None, None], AsyncIndex]] = {}

    @property
    def index(self) -> Index:
        """The sync index (resolved through the client on first use)."""
        if self._index is None:
            if self.client is None or self.index_name is None:
                raise ValueError(
                    "This store was built for async use only (async_index= / async_client=); use the "
                    "a-prefixed methods, or pass index= or client= for sync calls."
                )
            self._index = self.client.index(self.index_name)
        return self._index

    async def async_index(self) -> AsyncIndex:
        """The async index for the running event loop."""
        if self._async_index is not None:
            return self._async_index
        if self._async_client is not None and self.index_name is not None:
            return await self._async_client.index(self.index_name)
        if self.client is None or self.index_name is None:
            raise ValueError(
                "Async calls need an async data plane: pass async_index=, async_client= (with "
                "index_name=) or client= (with index_name=) when building the store."
            )
        loop = asyncio.get_running_loop()
        owned = self._owned.get(loop)
        if owned is None:
            config = self.client.config
            async_client = AsyncPineconeClient(
                config.api_key,
                config.controller_host,
                timeout=config.timeout,
                retries=config.retries,
                source_tag=config.source_tag,
                additional_headers=config.additional_headers,
                environment=config.environment,
                transport=self.client.transport,
            )
            guard = self._close_at_loop_shutdown(loop, async_client)
            await anext(guard)
            owned = (guard, await async_client.index(self.index_name))
            self._owned[loop] = owned
        return owned[1]

    async def aclose(self) -> None:
        """Close the async client opened for the running loop, if any (caller-owned ones stay open)."""
        owned = self._owned.get(asyncio.get_running_loop())
        if owned is not None:
            await owned[0].aclose()

    async def _close_at_loop_shutdown(
        self, loop: asyncio.AbstractEventLoop, client: AsyncPineconeClient
    ) -> AsyncGenerator[None, None]:
        """Hold ``client`` open until :meth:`aclose`, or until its loop shuts down.

        ``asyncio.run`` (and ``asyncio.Runner``) finalise suspended async generators before closing the
        loop; parking the client's ``aclose`` here closes its channel on the right loop even when the
        caller never calls ``store.aclose()``. Dropping every reference afterwards matters too: a grpc.aio
        channel left for the garbage collector at interpreter exit fails in its finaliser.
        """
        try:
            yield
        finally:
            self._owned.pop(loop, None)
            await client.aclose()


def _name_of(index: Index | None, async_index: AsyncIndex | None) -> str | None:
    if index is not None:
        return index.name
    return None if async_index is None else async_index.name

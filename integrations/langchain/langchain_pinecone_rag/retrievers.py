"""The retriever of :class:`~langchain_pinecone_rag.vectorstores.PineconeVectorStore`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from langchain_core.vectorstores import VectorStoreRetriever
from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Collection

    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document

    from langchain_pinecone_rag.vectorstores import PineconeVectorStore

__all__ = ["PineconeRetriever"]


class PineconeRetriever(VectorStoreRetriever):
    """``VectorStoreRetriever`` that also accepts ``search_type="hybrid"`` (a ``PineconeVectorStore``).

    Example:
        >>> kwargs = {"k": 3, "alpha": 0.3}
        >>> retriever = store.as_retriever(search_type="hybrid", search_kwargs=kwargs)  # doctest: +SKIP
    """

    allowed_search_types: ClassVar[Collection[str]] = (
        "similarity",
        "similarity_score_threshold",
        "mmr",
        "hybrid",
    )

    @override
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            store = cast("PineconeVectorStore", self.vectorstore)
            return store.hybrid_search(query, **(self.search_kwargs | kwargs))
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    @override
    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            store = cast("PineconeVectorStore", self.vectorstore)
            return await store.ahybrid_search(query, **(self.search_kwargs | kwargs))
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)

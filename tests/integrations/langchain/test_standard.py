"""langchain-tests' standard suites against the real local engine: cosine, dotproduct and euclidean.

Every test gets its own namespace in a per-class index, so tests never see each other's records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests

from langchain_pinecone_rag import PineconeVectorStore

from .conftest import unique

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from pinecone_rag import AsyncPineconeClient, PineconeClient

DIMENSION = 6  # langchain-tests' DeterministicFakeEmbedding(size=6)


class _Suite(VectorStoreIntegrationTests):
    metric = "cosine"

    @pytest.fixture(scope="class")
    @classmethod
    def index_name(cls, pc: PineconeClient) -> Iterator[str]:
        name = unique(cls.metric[:3])
        pc.create_index(name, dimension=DIMENSION, metric=cls.metric)  # type: ignore[arg-type]
        yield name
        pc.delete_index(name)

    @pytest_asyncio.fixture
    async def vectorstore(  # type: ignore[override]
        self, pc: PineconeClient, apc: AsyncPineconeClient, index_name: str
    ) -> AsyncIterator[PineconeVectorStore]:
        """An empty store: a fresh namespace, deleted afterwards."""
        store = PineconeVectorStore(
            pc.index(index_name),
            self.get_embeddings(),
            async_index=await apc.index(index_name),
            namespace=unique("ns"),
        )
        yield store
        store.delete(delete_all=True)

    @property
    def has_async(self) -> bool:
        return True


class TestCosine(_Suite):
    metric = "cosine"


class TestDotproduct(_Suite):
    metric = "dotproduct"


class TestEuclidean(_Suite):
    metric = "euclidean"


class TestRetriever(RetrieversIntegrationTests):
    """The retriever standard tests over ``store.as_retriever`` (k from the constructor or the call)."""

    @pytest.fixture(autouse=True)
    def _store(self, pc: PineconeClient) -> Iterator[None]:
        name = unique("ret")
        pc.create_index(name, dimension=DIMENSION, metric="cosine")
        self.store = PineconeVectorStore(
            pc.index(name), VectorStoreIntegrationTests.get_embeddings(), client=pc, index_name=name
        )
        self.store.add_documents(
            [Document(page_content=f"document {i}", metadata={"i": i}) for i in range(8)]
        )
        yield
        pc.delete_index(name)

    @property
    def retriever_constructor(self) -> Any:
        def build(k: int = 4) -> Any:
            return self.store.as_retriever(search_kwargs={"k": k})

        return build

    @property
    def retriever_query_example(self) -> str:
        return "document 3"

"""LangChain's ``langchain-pinecone`` ``PineconeVectorStore`` against a running engine.

Run with the Python of the venv that holds ``langchain-pinecone`` (and the SDK line it pins)::

    python scripts/compat/langchain_scenario.py --url http://127.0.0.1:5080

The embedding is langchain-core's ``DeterministicFakeEmbedding`` (a seeded vector per text), so the
expected ranking is computed here from the same vectors. Output: one JSON line per step, as
``scenario.py`` prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
import warnings
from typing import Any

from scenario import API_KEY, check, check_equal, cosine, get, run_steps

DIMENSION = 16
NAMESPACE = "lc"
TEXTS = [
    "Pinecone stores dense vectors.",
    "Filters narrow a query by metadata.",
    "Namespaces keep tenants apart.",
    "An index has one dimension and one metric.",
    "Upserts overwrite records with the same id.",
    "The gRPC data plane uses HTTP/2.",
    "Deletes by id ignore missing ids.",
    "Cosine similarity ignores vector length.",
]
IDS = [f"lc-{i}" for i in range(len(TEXTS))]
METADATAS = [{"source": "ab"[i % 2], "n": i} for i in range(len(TEXTS))]
STEPS = (
    "create_index",
    "add_texts",
    "similarity_search",
    "search_filter",
    "async_search",
    "delete",
    "delete_index",
)


def plain_float_embedding(size: int) -> Any:
    """langchain-core's ``DeterministicFakeEmbedding`` with Python floats.

    It returns numpy float64 items, which the 7.x REST client's type check refuses ("passed type was
    float64"); real embedding clients return plain floats, so the conversion keeps the scenario about the
    engine.
    """
    from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: PLC0415

    class PlainFloats(DeterministicFakeEmbedding):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[float(x) for x in vector] for vector in super().embed_documents(texts)]

        def embed_query(self, text: str) -> list[float]:
            return [float(x) for x in super().embed_query(text)]

    return PlainFloats(size=size)


class Run:
    """The index, the store and the embedding of one run."""

    def __init__(self, url: str) -> None:
        from pinecone import Pinecone  # noqa: PLC0415

        self.pc = Pinecone(api_key=API_KEY, host=url)
        self.name = f"compat-lc-{uuid.uuid4().hex[:8]}"
        self.embedding = plain_float_embedding(DIMENSION)
        self.store: Any = None
        self.live = dict(zip(IDS, TEXTS, strict=True))

    def expected(self, query: str, k: int, source: str | None = None) -> list[tuple[str, float]]:
        target = self.embedding.embed_query(query)
        vectors = dict(zip(IDS, self.embedding.embed_documents(TEXTS), strict=True))
        scored = [
            (rid, cosine(target, vectors[rid]))
            for rid in self.live
            if source is None or METADATAS[IDS.index(rid)]["source"] == source
        ]
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        return scored[:k]

    def check_results(self, results: list[tuple[Any, float]], expected: list[tuple[str, float]]) -> None:
        check_equal([doc.id for doc, _ in results], [rid for rid, _ in expected], "document ids")
        for (doc, score), (rid, want) in zip(results, expected, strict=True):
            check(abs(score - want) < 1e-5, f"score of {rid}: {score} != {want}")
            check_equal(doc.page_content, self.live[rid], f"text of {rid}")
            meta = METADATAS[IDS.index(rid)]
            check_equal({key: doc.metadata[key] for key in sorted(doc.metadata)}, meta, f"metadata of {rid}")


def step_create_index(run: Run) -> None:
    from langchain_pinecone import PineconeVectorStore  # noqa: PLC0415
    from pinecone import ServerlessSpec  # noqa: PLC0415

    run.pc.create_index(
        name=run.name,
        dimension=DIMENSION,
        metric="cosine",
        spec=ServerlessSpec(cloud="aws", region="us-east-1"),
    )
    bare = str(run.pc.describe_index(run.name).host).removeprefix("http://")
    index = run.pc.Index(host=f"http://{bare}")
    run.store = PineconeVectorStore(index=index, embedding=run.embedding, namespace=NAMESPACE)


def step_add_texts(run: Run) -> None:
    returned = run.store.add_texts(TEXTS, metadatas=[dict(m) for m in METADATAS], ids=IDS)
    check_equal(returned, IDS, "returned ids")
    stats = run.store.index.describe_index_stats()
    check_equal(int(get(get(stats, "namespaces")[NAMESPACE], "vector_count")), len(TEXTS), "vector count")


def step_similarity_search(run: Run) -> None:
    results = run.store.similarity_search_with_score(TEXTS[2], k=4)
    run.check_results(results, run.expected(TEXTS[2], 4))
    check_equal(results[0][0].id, IDS[2], "the text itself ranks first")
    docs = run.store.similarity_search(TEXTS[5], k=2)
    check_equal([d.id for d in docs], [rid for rid, _ in run.expected(TEXTS[5], 2)], "similarity_search ids")


def step_search_filter(run: Run) -> None:
    results = run.store.similarity_search_with_score(TEXTS[0], k=8, filter={"source": {"$eq": "b"}})
    run.check_results(results, run.expected(TEXTS[0], 8, source="b"))


def step_async_search(run: Run) -> None:
    async def search() -> list[tuple[Any, float]]:
        async with run.store:
            return await run.store.asimilarity_search_with_score(TEXTS[4], k=3)

    run.check_results(asyncio.run(search()), run.expected(TEXTS[4], 3))


def step_delete(run: Run) -> None:
    run.store.delete(ids=[IDS[2], IDS[3]])
    for rid in (IDS[2], IDS[3]):
        run.live.pop(rid)
    results = run.store.similarity_search_with_score(TEXTS[2], k=8)
    run.check_results(results, run.expected(TEXTS[2], 8))
    run.store.delete(filter={"source": "a"})
    run.live = {rid: text for rid, text in run.live.items() if METADATAS[IDS.index(rid)]["source"] != "a"}
    run.check_results(run.store.similarity_search_with_score(TEXTS[1], k=8), run.expected(TEXTS[1], 8))
    run.store.delete(delete_all=True)
    check_equal(run.store.similarity_search(TEXTS[1], k=8), [], "search after delete_all")


def step_delete_index(run: Run) -> None:
    run.pc.delete_index(run.name)
    check(run.name not in [get(m, "name") for m in run.pc.list_indexes()], "still listed after delete")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the engine's control-plane URL")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)
    from importlib.metadata import version  # noqa: PLC0415

    run = Run(args.url)
    versions = f"langchain-pinecone {version('langchain-pinecone')}, pinecone {version('pinecone')}"
    return run_steps(
        run, {name: globals()[f"step_{name}"] for name in STEPS}, version=versions, transport="rest"
    )


if __name__ == "__main__":
    sys.exit(main())

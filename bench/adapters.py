"""Our LangChain and LlamaIndex adapters vs the official ones vs our raw client, against one local engine.

One engine (``pinecone-rag serve`` in a subprocess), one index (cosine, ``--dimension`` 384) and
``--count`` (50,000) documents: a seeded L2-normalised float32 vector, a text of about 400 characters and
small metadata (``{"source": "doc-17.md", "chunk": 3, "tags": ["a", "b"]}``) each. Embedding costs nothing
and is the same for everyone: a fake ``Embeddings`` (LangChain) / ``BaseEmbedding`` (LlamaIndex) returns
the precomputed vector of each text by dictionary lookup (``matrix[rows].tolist()``). Eight contenders,
four per framework, each writing all documents into its own namespace, then querying the namespace our
adapter of its framework wrote (the records are the same: this keeps differences between namespaces'
indexes out of the latency):

LangChain (``add_documents``, then ``similarity_search(text, k)``):

* ``ours``: ``langchain_pinecone_rag.PineconeVectorStore`` over our gRPC ``Index`` (``batch_size=B``,
  ``max_concurrency=C``, ``embedding_chunk_size=E``);
* ``raw client + conversion``: the adapter's job by hand through our ``Index``: texts of the same
  ``Document``s embedded ``E`` at a time by the same fake, record dicts (metadata plus the text) streamed
  into ``index.upsert(..., batch_size=B, max_concurrency=C)``; ``index.query(embed_query(text), top_k=k,
  include_metadata=True)`` turned into ``Document``s;
* ``raw client``: bare: ready records (vectors looked up before the clock) in one ``upsert`` call,
  precomputed query vectors, matches not converted;
* ``langchain-pinecone``: the official ``langchain_pinecone.PineconeVectorStore`` 0.2.x over the official
  SDK 7.x (it requires ``pinecone<8``), so it runs in ``.venv-compat/langchain`` (built by
  ``scripts/compat/run.py``'s ``ensure_venv``) as a worker subprocess that takes commands on stdin and
  prints JSON figures. It gets its fastest documented settings: ``Index(pool_threads=C)``,
  ``add_documents(batch_size=B, embedding_chunk_size=E)`` (``async_req=True``, its default). It can only
  use the REST client: it settles its parallel upserts with ``.get()``, which the gRPC client's futures
  lack.

LlamaIndex (``add(nodes)`` in calls of ``E`` nodes, then ``query(VectorStoreQuery(embedding, k))``):

* ``ours``: ``llama_index.vector_stores.pinecone_rag.PineconeVectorStore`` over our gRPC ``Index``
  (``batch_size=B``; the store sends with the client's default concurrency, 8 requests in flight);
* ``raw client + conversion``: LlamaIndex's own ``node_to_metadata_dict`` (which every LlamaIndex store,
  the official one too, runs per node) and ``index.upsert(..., batch_size=B, max_concurrency=8)``;
  ``index.query(embedding, top_k=k, include_metadata=True)`` turned into nodes by ``metadata_dict_to_node``;
* ``raw client``: bare: ``index.upsert`` of exactly the records our store sends (built by the store's
  ``node_to_metadata`` before the clock starts), matches not converted;
* ``llama-index-vector-stores-pinecone``: the official store 0.9 over the official SDK 8.x's gRPC client
  (``PineconeGRPC``, its fastest transport; the store accepts any ``Index``-like object),
  ``batch_size=B``, ``insert_kwargs={"show_progress": False}``. It writes one batch at a time: it calls
  ``upsert(batch_size=...)``, and the SDK cannot combine ``batch_size`` with ``async_req``. Queries pass
  ``include_values=False`` (its default returns every vector; ours does not).

Nodes are built (and embedded) before the clock starts; LangChain's ``add_documents`` embeds inside the
timed call (and so does the conversion path). Adding runs in ``--rounds`` slices and querying in as many
rounds, contenders in a fresh seeded order each round, so drift in machine load hits all alike; add
overheads are the median over rounds of the per-round ratio. The query texts are texts
of stored documents, so each query's top hit should be that document; the engine's index is approximate,
so the run fails only when more than 1% miss. It fails when describe_index_stats does not show exactly
``--count`` records in every namespace. The adapter overhead is the adapter's time over the raw client's
for the same work, minus one; the <= 10% target is measured against ``raw client + conversion``.

Run (from the repository root)::

    .venv/bin/python bench/adapters.py                  # full: 50k x 384, 5 to 10 minutes
    .venv/bin/python bench/adapters.py --quick          # CI smoke: 1k documents
    .venv/bin/python bench/adapters.py --write bench/RESULTS.md

The full run builds ``.venv-compat/langchain`` if it is missing (pip, network); ``--quick`` only uses it
when it exists and otherwise skips the langchain-pinecone contender, saying so. The markdown printed to
stdout is also written (``--write``) between ``<!-- adapters:start -->`` and ``<!-- adapters:end -->``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from _adapters_report import (
    CLIENT_DEFAULT_CONCURRENCY,
    LANGCHAIN,
    LC_PEER,
    LI_PEER,
    LLAMA_INDEX,
    OURS,
    RAW,
    RAW_OBJECTS,
    Contender,
    render,
)
from _common import (
    API_KEY,
    SEED,
    data_host_of,
    emit_section,
    grpc_port_of,
    load_average,
    package_version,
    quiet_sdk_warnings,
    record_id,
    record_metadata,
    running_engine,
    sdk_grpc_index,
    unit_rows,
)

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
SECTION = "adapters"
INDEX_NAME = "adapters"
WARMUP_DOCS = 400
MAX_MISSES = 0.01  # of queries whose top hit may be another document than the query's own
WARMUP_QUERIES = 5
WORDS_PER_TEXT = 60
WORDS = (
    "vector index query record namespace metadata filter score dense sparse embedding chunk document "
    "retrieval latency throughput batch request engine cluster shard replica segment cosine euclidean "
    "dotproduct recall precision model token context answer question source paragraph section summary "
    "language search ranking hybrid keyword semantic storage memory cache update delete insert fetch list"
)
VOCABULARY = WORDS.split()
REPLY = "@@adapters "  # prefix of the worker's JSON replies: anything else on its stdout is not ours


# ------------------------------------------------------------------------------------------------ data
class Corpus:
    """The documents every contender writes, and the fake embedding's lookup table."""

    def __init__(self, count: int, dimension: int, queries: int) -> None:
        self.matrix = unit_rows(np.random.default_rng(SEED), count, dimension)
        words = np.random.default_rng(SEED + 1).integers(0, len(VOCABULARY), size=(count, WORDS_PER_TEXT))
        self.ids = [record_id(i) for i in range(count)]
        self.texts = [
            f"{self.ids[i]}: " + " ".join(VOCABULARY[w] for w in row) for i, row in enumerate(words.tolist())
        ]
        self.rows = {text: i for i, text in enumerate(self.texts)}
        # Stored documents' own texts: each query's nearest record is known (itself, score 1).
        picks = np.random.default_rng(SEED + 2).permutation(count)[: min(queries, count)]
        self.query_rows = [int(i) for i in picks]

    @property
    def count(self) -> int:
        return len(self.ids)

    def checksum(self) -> str:
        """Both processes build the corpus from the seed; this proves they got the same one."""
        digest = hashlib.sha256(self.matrix.tobytes())
        for text in self.texts:
            digest.update(text.encode())
        return digest.hexdigest()[:16]

    def vectors(self, texts: list[str]) -> list[list[float]]:
        """The fake embedding: a lookup, and Python floats as real embedding clients return them."""
        return self.matrix[[self.rows[text] for text in texts]].tolist()


def lookup_embeddings(corpus: Corpus) -> Any:
    """A LangChain ``Embeddings`` answering from ``corpus`` (no model, no I/O)."""
    from langchain_core.embeddings import Embeddings  # noqa: PLC0415  (also runs in the compat venv)

    class LookupEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return corpus.vectors(texts)

        def embed_query(self, text: str) -> list[float]:
            return corpus.vectors([text])[0]

    return LookupEmbeddings()


def lookup_embedding(corpus: Corpus) -> Any:
    """A LlamaIndex ``BaseEmbedding`` answering from ``corpus``."""
    from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: PLC0415

    class LookupEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return corpus.vectors([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return corpus.vectors([query])[0]

        def _get_text_embedding(self, text: str) -> list[float]:
            return corpus.vectors([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return corpus.vectors(texts)

    return LookupEmbedding(model_name="lookup", embed_batch_size=2048)


def lc_documents(corpus: Corpus, start: int, stop: int) -> list[Any]:
    """Fresh ``Document`` objects (langchain-pinecone writes the text into the caller's metadata)."""
    from langchain_core.documents import Document  # noqa: PLC0415

    return [
        Document(id=corpus.ids[i], page_content=corpus.texts[i], metadata=record_metadata(i))
        for i in range(start, stop)
    ]


def li_nodes(corpus: Corpus, embed: Any, start: int, stop: int) -> list[Any]:
    """Embedded ``TextNode`` objects with a source document, as a LlamaIndex splitter makes them."""
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: PLC0415

    texts = corpus.texts[start:stop]
    vectors = embed.get_text_embedding_batch(texts)
    return [
        TextNode(
            id_=corpus.ids[i],
            text=text,
            metadata=record_metadata(i),
            embedding=vector,
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{i // 20}.md")},
        )
        for i, text, vector in zip(range(start, stop), texts, vectors, strict=True)
    ]


def timed_queries(search: Callable[[str], list[str]], texts: list[str]) -> tuple[list[float], list[str]]:
    """Per-query seconds and top ids of ``search`` (a query text to the ids it returns, best first)."""
    latencies: list[float] = []
    tops: list[str] = []
    for text in texts:
        began = time.perf_counter()
        found = search(text)
        latencies.append(time.perf_counter() - began)
        tops.append(found[0] if found else "")
    return latencies, tops


# ----------------------------------------------------------------------- langchain-pinecone (worker)
def peer_worker(config: dict[str, Any]) -> int:
    """langchain-pinecone in ``.venv-compat/langchain``: JSON commands on stdin, JSON replies on stdout."""
    warnings.filterwarnings("ignore")  # the 7.x SDK warns about its own internals; not our output
    from langchain_pinecone import PineconeVectorStore  # noqa: PLC0415
    from pinecone import Pinecone  # noqa: PLC0415

    def reply(**fields: Any) -> None:
        print(REPLY + json.dumps(fields), flush=True)

    corpus = Corpus(config["count"], config["dimension"], config["queries"])
    index = Pinecone(api_key=API_KEY, host=config["control_url"]).Index(
        host=f"http://{config['data_host']}", pool_threads=config["concurrency"]
    )
    store = PineconeVectorStore(index=index, embedding=lookup_embeddings(corpus), text_key="text")
    versions = {name: package_version(name) for name in ("langchain-pinecone", "pinecone", "langchain-core")}
    reply(checksum=corpus.checksum(), versions=versions)
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["op"] == "add":
                docs = lc_documents(corpus, command["start"], command["stop"])
                began = time.perf_counter()
                store.add_documents(
                    docs,
                    namespace=command["namespace"],
                    batch_size=config["batch"],
                    embedding_chunk_size=config["chunk"],
                )
                reply(seconds=time.perf_counter() - began)
            elif command["op"] == "query":
                namespace = str(command["namespace"])

                def search(text: str, namespace: str = namespace) -> list[str]:
                    found = store.similarity_search(text, k=config["top_k"], namespace=namespace)
                    return [str(doc.id) for doc in found]

                latencies, tops = timed_queries(search, [corpus.texts[i] for i in command["rows"]])
                reply(latencies=latencies, tops=tops)
            else:
                reply(bye=True)
                return 0
        except Exception as error:
            reply(error=f"{type(error).__name__}: {error}")
    return 0


class PeerWorker:
    """The parent's end of the langchain-pinecone worker."""

    def __init__(self, python: Path, config: dict[str, Any]) -> None:
        command = [str(python), str(Path(__file__).resolve()), "--peer-worker", json.dumps(config)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        self.hello = self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(REPLY):
                answer: dict[str, Any] = json.loads(line[len(REPLY) :])
                if "error" in answer:
                    raise RuntimeError(f"langchain-pinecone worker: {answer['error']}")
                return answer
            print(f"# worker: {line.rstrip()}", file=sys.stderr)
        raise RuntimeError(f"the langchain-pinecone worker exited ({self.process.wait()})")

    def call(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(RuntimeError, OSError):
                self.call(op="quit")
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def langchain_peer_python(*, build: bool) -> Path | None:
    """The compat venv's Python (built by ``scripts/compat/run.py``'s own function when ``build``)."""
    compat = ROOT / "scripts" / "compat"
    if str(compat) not in sys.path:
        sys.path.insert(0, str(compat))  # run.py imports its sibling scenario.py
    spec = importlib.util.spec_from_file_location("compat_run", compat / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    line = next(line for line in module.LINES if line.name == "langchain")
    if build:
        return Path(module.ensure_venv(line, reinstall=False))
    python = Path(module.VENVS) / line.venv / "bin" / "python"
    return python if python.exists() else None


# ---------------------------------------------------------------------------------------- contenders
class Bench:
    """The engine's index, every contender, and the rounds."""

    def __init__(self, control_url: str, args: argparse.Namespace, corpus: Corpus, peer: Path | None):
        from pinecone_rag import PineconeClient  # noqa: PLC0415

        self.args, self.corpus = args, corpus
        self.client = PineconeClient(API_KEY, host=control_url)
        self.client.create_index(INDEX_NAME, dimension=args.dimension, metric="cosine")
        self.index = self.client.index(INDEX_NAME)
        grpc_target = f"127.0.0.1:{grpc_port_of(control_url, INDEX_NAME)}"
        self.sdk_grpc = sdk_grpc_index(control_url, grpc_target)
        self.worker: PeerWorker | None = None
        self.peer_versions: dict[str, str] = {}
        if peer is not None:
            self.worker = PeerWorker(
                peer,
                {
                    "control_url": control_url,
                    "data_host": data_host_of(control_url, INDEX_NAME),
                    "count": args.count,
                    "dimension": args.dimension,
                    "queries": args.queries,
                    "concurrency": args.concurrency,
                    "batch": args.batch,
                    "chunk": args.chunk,
                    "top_k": args.top_k,
                },
            )
            if self.worker.hello["checksum"] != corpus.checksum():
                self.worker.close()
                raise RuntimeError("the langchain-pinecone worker built a different corpus")
            self.peer_versions = self.worker.hello["versions"]
        self.contenders = self.langchain() + self.llama_index()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
        self.sdk_grpc.close()
        self.client.delete_index(INDEX_NAME)
        self.client.close()

    # --------------------------------------------------------------------------------- LangChain
    def langchain(self) -> list[Contender]:
        from langchain_core.documents import Document  # noqa: PLC0415

        from langchain_pinecone_rag import PineconeVectorStore  # noqa: PLC0415

        args, corpus, index = self.args, self.corpus, self.index
        embeddings = lookup_embeddings(corpus)
        ours = PineconeVectorStore(
            index,
            embeddings,
            text_key="text",
            metric="cosine",
            batch_size=args.batch,
            max_concurrency=args.concurrency,
            embedding_chunk_size=args.chunk,
            show_progress=False,
        )

        def upsert(records: Any, namespace: str, expected: int) -> float:
            began = time.perf_counter()
            result = index.upsert(
                records,
                namespace,
                batch_size=args.batch,
                max_concurrency=args.concurrency,
                show_progress=False,
            )
            seconds = time.perf_counter() - began
            if result.failed or result.upserted_count != expected:
                raise RuntimeError(f"raw upsert wrote {result.upserted_count} of {expected}")
            return seconds

        def ours_add(start: int, stop: int, namespace: str) -> float:
            docs = lc_documents(corpus, start, stop)
            began = time.perf_counter()
            ours.add_documents(docs, namespace=namespace)
            return time.perf_counter() - began

        def ours_query(rows: list[int], namespace: str) -> tuple[list[float], list[str]]:
            return timed_queries(
                lambda text: [
                    str(doc.id) for doc in ours.similarity_search(text, k=args.top_k, namespace=namespace)
                ],
                [corpus.texts[i] for i in rows],
            )

        def bare_add(start: int, stop: int, namespace: str) -> float:
            vectors = corpus.vectors(corpus.texts[start:stop])
            records = [
                {
                    "id": corpus.ids[i],
                    "values": values,
                    "metadata": {**record_metadata(i), "text": corpus.texts[i]},
                }
                for i, values in zip(range(start, stop), vectors, strict=True)
            ]
            return upsert(records, namespace, stop - start)

        def bare_query(rows: list[int], namespace: str) -> tuple[list[float], list[str]]:
            vectors = dict(zip(rows, corpus.vectors([corpus.texts[i] for i in rows]), strict=True))

            def search(text: str) -> list[str]:
                response = index.query(
                    vectors[corpus.rows[text]], top_k=args.top_k, namespace=namespace, include_metadata=True
                )
                return [match.id for match in response.matches]

            return timed_queries(search, [corpus.texts[i] for i in rows])

        def objects_add(start: int, stop: int, namespace: str) -> float:
            docs = lc_documents(corpus, start, stop)

            def records() -> Any:
                # The adapter's job without the adapter: embed a chunk of texts, stream its records.
                for first in range(0, len(docs), args.chunk):
                    chunk = docs[first : first + args.chunk]
                    vectors = embeddings.embed_documents([doc.page_content for doc in chunk])
                    for doc, values in zip(chunk, vectors, strict=True):
                        yield {
                            "id": doc.id,
                            "values": values,
                            "metadata": {**doc.metadata, "text": doc.page_content},
                        }

            return upsert(records(), namespace, stop - start)

        def objects_query(rows: list[int], namespace: str) -> tuple[list[float], list[str]]:
            def search(text: str) -> list[str]:
                response = index.query(
                    embeddings.embed_query(text), top_k=args.top_k, namespace=namespace, include_metadata=True
                )
                docs = []
                for match in response.matches:
                    metadata = dict(match.metadata or {})
                    docs.append(Document(id=match.id, page_content=metadata.pop("text"), metadata=metadata))
                return [str(doc.id) for doc in docs]

            return timed_queries(search, [corpus.texts[i] for i in rows])

        batch, flight = args.batch, str(args.concurrency)
        contenders = [
            Contender(LANGCHAIN, OURS, "our gRPC `Index`, `max_concurrency`", batch, flight, ours_add,
                      ours_query),
            Contender(LANGCHAIN, RAW_OBJECTS, "`Document`s in and out, embedding inside", batch, flight,
                      objects_add, objects_query),
            Contender(LANGCHAIN, RAW, "ready records in, matches out", batch, flight, bare_add, bare_query),
        ]  # fmt: skip
        worker = self.worker
        if worker is not None:

            def peer_add(start: int, stop: int, namespace: str) -> float:
                return float(worker.call(op="add", start=start, stop=stop, namespace=namespace)["seconds"])

            def peer_query(rows: list[int], namespace: str) -> tuple[list[float], list[str]]:
                answer = worker.call(op="query", rows=rows, namespace=namespace)
                return answer["latencies"], answer["tops"]

            # Per embedding chunk it sends its batches on the pool and waits for all of them.
            flight = f"{args.concurrency} (pool threads)"
            how = "official SDK 7.x REST, `async_req=True`"
            contenders.append(Contender(LANGCHAIN, LC_PEER, how, batch, flight, peer_add, peer_query))
        return contenders

    # -------------------------------------------------------------------------------- LlamaIndex
    def llama_index(self) -> list[Contender]:
        from llama_index.core.vector_stores.types import VectorStoreQuery  # noqa: PLC0415
        from llama_index.core.vector_stores.utils import (  # noqa: PLC0415
            metadata_dict_to_node,
            node_to_metadata_dict,
        )
        from llama_index.vector_stores.pinecone import PineconeVectorStore as OfficialStore  # noqa: PLC0415

        from llama_index.vector_stores.pinecone_rag import PineconeVectorStore  # noqa: PLC0415
        from llama_index.vector_stores.pinecone_rag.metadata import node_to_metadata  # noqa: PLC0415

        args, corpus, index = self.args, self.corpus, self.index
        embed = lookup_embedding(corpus)
        stores: dict[tuple[str, str], Any] = {}

        def store(name: str, namespace: str) -> Any:
            # The official store has no per-call namespace: one store per namespace, for both.
            if (name, namespace) not in stores:
                if name == OURS:
                    stores[name, namespace] = PineconeVectorStore(
                        index, namespace=namespace, batch_size=args.batch
                    )
                else:
                    stores[name, namespace] = OfficialStore(
                        pinecone_index=self.sdk_grpc,
                        namespace=namespace,
                        batch_size=args.batch,
                        insert_kwargs={"show_progress": False},
                    )
            return stores[name, namespace]

        def upsert(records: list[dict[str, Any]], namespace: str) -> None:
            result = index.upsert(
                records,
                namespace,
                batch_size=args.batch,
                max_concurrency=CLIENT_DEFAULT_CONCURRENCY,
                show_progress=False,
            )
            if result.failed or result.upserted_count != len(records):
                raise RuntimeError(f"raw upsert wrote {result.upserted_count} of {len(records)}")

        def chunked_add(write: Callable[[list[Any], str], float]) -> Callable[[int, int, str], float]:
            # Nodes are built and embedded before the clock, a chunk at a time (memory), as an index would.
            def add(start: int, stop: int, namespace: str) -> float:
                return sum(
                    write(li_nodes(corpus, embed, first, min(first + args.chunk, stop)), namespace)
                    for first in range(start, stop, args.chunk)
                )

            return add

        def store_write(name: str) -> Callable[[list[Any], str], float]:
            def write(nodes: list[Any], namespace: str) -> float:
                target = store(name, namespace)
                began = time.perf_counter()
                target.add(nodes)
                return time.perf_counter() - began

            return write

        def bare_write(nodes: list[Any], namespace: str) -> float:
            # Exactly the records our store sends, built before the clock.
            records = [
                {"id": node.node_id, "values": node.embedding, "metadata": node_to_metadata(node)}
                for node in nodes
            ]
            began = time.perf_counter()
            upsert(records, namespace)
            return time.perf_counter() - began

        def objects_write(nodes: list[Any], namespace: str) -> float:
            began = time.perf_counter()
            # LlamaIndex's own serialisation, which every LlamaIndex store (the official one too) does.
            records = [
                {
                    "id": node.node_id,
                    "values": node.embedding,
                    "metadata": node_to_metadata_dict(node, remove_text=False, flat_metadata=False),
                }
                for node in nodes
            ]
            upsert(records, namespace)
            return time.perf_counter() - began

        def timed(search: Callable[[list[float], str], list[str]]) -> Callable[[list[int], str], Any]:
            def query(rows: list[int], namespace: str) -> tuple[list[float], list[str]]:
                # Query embeddings are the caller's (the retriever's) work: made before the clock.
                vectors = dict(zip(rows, corpus.vectors([corpus.texts[i] for i in rows]), strict=True))
                return timed_queries(
                    lambda text: search(vectors[corpus.rows[text]], namespace),
                    [corpus.texts[i] for i in rows],
                )

            return query

        def store_search(name: str) -> Callable[[list[float], str], list[str]]:
            extra = {} if name == OURS else {"include_values": False}

            def search(vector: list[float], namespace: str) -> list[str]:
                request = VectorStoreQuery(query_embedding=vector, similarity_top_k=args.top_k)
                return [node.node_id for node in store(name, namespace).query(request, **extra).nodes]

            return search

        def bare_search(vector: list[float], namespace: str) -> list[str]:
            response = index.query(vector, top_k=args.top_k, namespace=namespace, include_metadata=True)
            return [match.id for match in response.matches]

        def objects_search(vector: list[float], namespace: str) -> list[str]:
            response = index.query(vector, top_k=args.top_k, namespace=namespace, include_metadata=True)
            return [metadata_dict_to_node(dict(match.metadata or {})).node_id for match in response.matches]

        batch, flight = args.batch, str(CLIENT_DEFAULT_CONCURRENCY)
        return [
            Contender(LLAMA_INDEX, OURS, "our gRPC `Index` (client's default concurrency)", batch, flight,
                      chunked_add(store_write(OURS)), timed(store_search(OURS))),
            Contender(LLAMA_INDEX, RAW_OBJECTS, "nodes in and out (`node_to_metadata_dict`, "
                      "`metadata_dict_to_node`)", batch, flight, chunked_add(objects_write),
                      timed(objects_search)),
            Contender(LLAMA_INDEX, RAW, "our store's records ready, matches out", batch, flight,
                      chunked_add(bare_write), timed(bare_search)),
            Contender(LLAMA_INDEX, LI_PEER, "official SDK 8.x gRPC, `upsert(batch_size=B)`", batch,
                      "1 (sequential batches)", chunked_add(store_write(LI_PEER)),
                      timed(store_search(LI_PEER))),
        ]  # fmt: skip

    # ------------------------------------------------------------------------------------- rounds
    def namespace(self, contender: Contender, phase: str) -> str:
        family = "lc" if contender.family == LANGCHAIN else "li"
        slug = {OURS: "ours", RAW: "raw", RAW_OBJECTS: "conv"}.get(contender.name, "peer")
        return f"{phase}-{family}-{slug}"

    def warm_up(self) -> None:
        """Connections, thread pools, imports and first-call caches, in namespaces of their own."""
        rows = self.corpus.query_rows[:WARMUP_QUERIES]
        for contender in self.contenders:
            namespace = self.namespace(contender, "warmup")
            contender.add(0, min(WARMUP_DOCS, self.corpus.count // 5), namespace)
            contender.query(rows, namespace)

    def run(self) -> None:
        args, count = self.args, self.corpus.count
        for contender in self.contenders:
            contender.namespace = self.namespace(contender, "docs")
        # A fresh seeded order each round: a fixed cyclic order would give every contender the same
        # predecessor each time, and so the same leftovers of its writes in the engine.
        rng = np.random.default_rng(SEED + 3)
        orders = [rng.permutation(len(self.contenders)).tolist() for _ in range(args.rounds)]
        for r in range(args.rounds):
            start, stop = r * count // args.rounds, (r + 1) * count // args.rounds
            for position in orders[r]:
                contender = self.contenders[position]
                seconds = contender.add(start, stop, contender.namespace)
                contender.seconds += seconds
                contender.round_seconds.append(seconds)
                contender.written += stop - start
            progress = ", ".join(f"{c.family} {c.name} {c.seconds:.1f} s" for c in self.contenders)
            print(f"# add round {r + 1}/{args.rounds}: {progress}", file=sys.stderr, flush=True)
        self.verify_counts()
        # Every contender of a family queries the namespace our adapter wrote (the records are the same in
        # all of them): two namespaces with the same records can differ in query cost, as their indexes
        # were built at different moments, and that is not what this compares.
        shared = {c.family: c.namespace for c in self.contenders if c.name == OURS}
        rows = self.corpus.query_rows
        # The first queries after bulk writes are slower for a few seconds (the engine settles the new
        # data); untimed, so that they do not land on whichever contender comes first in round one.
        for contender in self.contenders:
            if contender.name == RAW:
                contender.query(rows[: len(rows) // args.rounds], shared[contender.family])
        for r in range(args.rounds):
            part = rows[r * len(rows) // args.rounds : (r + 1) * len(rows) // args.rounds]
            for position in orders[r]:
                contender = self.contenders[position]
                latencies, tops = contender.query(part, shared[contender.family])
                contender.latencies += latencies
                contender.misses += sum(top != self.corpus.ids[i] for i, top in zip(part, tops, strict=True))
            progress = ", ".join(f"{c.family} {c.name} p50 {c.ms(50):.2f} ms" for c in self.contenders)
            print(f"# query round {r + 1}/{args.rounds}: {progress}", file=sys.stderr, flush=True)
        # The engine's index is approximate, so a query can miss even its own record once in a while;
        # wrong ids or records (a broken adapter) would miss nearly always.
        missed = [
            f"{c.family} {c.name}: {c.misses}" for c in self.contenders if c.misses > MAX_MISSES * len(rows)
        ]
        if missed:
            raise RuntimeError(f"queries whose top hit was not the document itself: {', '.join(missed)}")

    def verify_counts(self) -> None:
        """Every namespace holds exactly the documents: nothing lost, nothing duplicated under other ids."""
        stats = self.index.describe_index_stats()
        counts = {name: int(summary.vector_count) for name, summary in stats.namespaces.items()}
        wrong = {
            c.namespace: counts.get(c.namespace)
            for c in self.contenders
            if counts.get(c.namespace) != c.written
        }
        if wrong:
            raise RuntimeError(f"describe_index_stats shows {wrong}; expected {self.corpus.count} each")


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 1,000 documents, 60 queries")
    parser.add_argument("--count", type=int, default=None, help="documents (default 50,000)")
    parser.add_argument("--queries", type=int, default=None, help="queries per contender (default 1,000)")
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--batch", type=int, default=200, help="records per upsert request, for everyone")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (where allowed)")
    parser.add_argument("--chunk", type=int, default=2000, help="texts embedded / nodes added per call")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 10)")
    parser.add_argument("--skip-peer", action="store_true", help="do not run langchain-pinecone")
    parser.add_argument("--write", type=Path, default=None, help="write the markdown section to this file")
    parser.add_argument("--peer-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = 1_000 if args.quick else 50_000
    if args.queries is None:
        args.queries = 60 if args.quick else 1_000
    if args.rounds is None:
        args.rounds = 2 if args.quick else 10
    if args.count < 5 * args.rounds or args.queries < args.rounds or min(args.batch, args.chunk) < 1:
        parser.error("need --count >= 5 x --rounds, --queries >= --rounds, --batch and --chunk >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.peer_worker is not None:
        return peer_worker(json.loads(args.peer_worker))
    quiet_sdk_warnings()
    load_before = load_average()
    began = time.perf_counter()
    peer: Path | None = None
    skipped = ""
    if args.skip_peer:
        skipped = "`--skip-peer`."
    else:
        peer = langchain_peer_python(build=not args.quick)
        if peer is None:
            skipped = "`.venv-compat/langchain` does not exist (`scripts/compat/run.py --lines langchain`)."
    if skipped:
        print(f"# skipping {LC_PEER}: {skipped}", file=sys.stderr, flush=True)
    corpus = Corpus(args.count, args.dimension, args.queries)
    with (
        tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp,
        running_engine("process", Path(tmp)) as control_url,
    ):
        bench = Bench(control_url, args, corpus, peer)
        try:
            bench.warm_up()
            bench.run()
        finally:
            bench.close()
    section = render(args, bench, time.perf_counter() - began, load_before, skipped)
    emit_section(section, args.write, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())

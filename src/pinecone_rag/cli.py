"""The ``pinecone-rag`` command: ``serve``, ``keys``, ``demo``, ``ingest``, ``query``, ``indexes``, ``stats``.

``ingest``, ``query``, ``indexes`` and ``stats`` run against the embedded engine on ``--data-dir`` by
default, or against any Pinecone-compatible server with ``--host`` (``--cloud`` for Pinecone's own; the
API key from ``--api-key`` or ``PINECONE_API_KEY``). Their errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pinecone_rag._version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pinecone_rag.client import PineconeClient

DEFAULT_DATA_DIR = "./pinecone-data"
DEFAULT_DEMO_DIR = "./pinecone-data/demo"
CACHE_DIR = "embedding-cache"
DEFAULT_TIMEOUT = 300.0
_LOCAL_KEY = "pinecone-rag-local"


class CliError(Exception):
    """A mistake the user can fix; printed as one line, exit code 1."""


def _serve(args: argparse.Namespace) -> int:
    from pinecone_rag.server import LocalServer
    from pinecone_rag.server.heap import tune_for_server

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server = LocalServer(
        args.data_dir,
        host=args.host,
        port=args.port,
        api_keys=tuple(args.api_key or ()),
        data_port_start=args.data_port_start,
        host_format=args.host_format,
        log_level=args.log_level,
        blas_threads=args.blas_threads,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    tune_for_server()
    server.start()
    _tune_garbage_collector()
    manager = server.manager
    count = sum(len(manager.list(p)) for p in ("default",)) if manager else 0
    print(f"pinecone-rag {__version__} serving {Path(args.data_dir).resolve()} on {server.url}", flush=True)
    print(f"  {count} index(es) in the default project; stop with Ctrl-C", flush=True)
    print(f'  from pinecone import Pinecone; pc = Pinecone(api_key="local", host="{server.url}")', flush=True)
    while not stopping.wait(0.5):
        pass
    print("stopping...", flush=True)
    server.stop()
    return 0


def _tune_garbage_collector() -> None:
    """Collect cycles less often in a process that only serves.

    Every write allocates thousands of containers (decoded metadata, ids) that live on in the engine,
    and CPython's default thresholds (a young collection every 700 allocations) keep walking them on
    their way to the oldest generation; the engine creates almost no reference cycles. Objects alive
    after start-up are frozen out of collection, and young collections run about 70x less often.
    Only ``serve`` does this: an embedded engine leaves its host's collector alone.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def _keys(args: argparse.Namespace) -> int:
    from pinecone_rag.server.control_db import ControlDatabase
    from pinecone_rag.server.launcher import CONTROL_DB

    database = ControlDatabase(Path(args.data_dir) / CONTROL_DB)
    try:
        if args.keys_command == "create":
            key, secret = database.create_key(args.project, args.name)
            print(f"created key {key.id} in project {key.project!r}; its secret (shown only once):")
            print(secret)
        elif args.keys_command == "list":
            print(f"{'id':<14}{'project':<20}{'name':<16}{'ends with':<11}state")
            for key in database.list_keys():
                state = "revoked" if key.revoked else "active"
                print(f"{key.id:<14}{key.project:<20}{key.name:<16}...{key.hint:<8}{state}")
        elif args.keys_command == "revoke":
            if not database.revoke_key(args.key_id):
                print(f"no active key with id {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
    finally:
        database.close()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pinecone_rag.demo import run_demo

    if args.chunk_size < 50:
        raise CliError(f"--chunk-size must be at least 50 characters, got {args.chunk_size}")
    topics = [t.strip() for t in args.topics.split(",") if t.strip()] if args.topics else None
    return run_demo(
        args.data_dir,
        limit=args.limit,
        topics=topics,
        chunk_size=args.chunk_size,
        show_progress=False if args.no_progress else None,
    )


# ------------------------------------------------------------------------------------ data commands
@contextlib.contextmanager
def _client(args: argparse.Namespace) -> Iterator[PineconeClient]:
    """The client the connection options ask for: embedded engine, a server, or Pinecone's cloud."""
    from pinecone_rag.client import PineconeClient

    if args.host or args.cloud:
        api_key = args.api_key or os.environ.get("PINECONE_API_KEY")
        if args.cloud and not api_key:
            raise CliError("--cloud needs an API key: set PINECONE_API_KEY or pass --api-key")
        # A local server without configured keys accepts any non-empty key on loopback.
        client = PineconeClient(api_key or _LOCAL_KEY, args.host, timeout=args.timeout)
    else:
        client = PineconeClient.local(args.data_dir, timeout=args.timeout)
    try:
        yield client
    finally:
        client.close()


def _cache_dir(args: argparse.Namespace) -> Path | None:
    if args.cache_dir:
        return Path(args.cache_dir)
    # Against a remote service nothing is written locally unless asked for.
    return None if args.host or args.cloud else Path(args.data_dir) / CACHE_DIR


def _model_needs_extra(model: str) -> bool:
    from pinecone_rag.server.embedding_models import DENSE_MODEL, MINILM_RERANK_MODEL

    return model in (DENSE_MODEL, MINILM_RERANK_MODEL)


def _check_local_model(args: argparse.Namespace, model: str) -> None:
    """Fail before starting anything when the embedded engine cannot run ``model``."""
    if args.host or args.cloud or not _model_needs_extra(model):
        return
    from pinecone_rag.server.embedding_models import MODELS_EXTRA_HINT, dense_extra_installed

    if not dense_extra_installed():
        raise CliError(
            f"model {model!r} needs the models extra ({MODELS_EXTRA_HINT}); "
            "or use --model pinecone-rag-bm25 (keyword search, no extra)"
        )


def _ingest(args: argparse.Namespace) -> int:
    from pinecone_rag.cli_output import render_table
    from pinecone_rag.ingest import EmbeddingCache, find_files, ingest_chunks, make_chunks, read_text

    if args.chunk_size < 50:
        raise CliError(f"--chunk-size must be at least 50 characters, got {args.chunk_size}")
    overlap = args.chunk_overlap if args.chunk_overlap is not None else min(100, args.chunk_size // 8)
    if not 0 <= overlap < args.chunk_size:
        raise CliError(f"--chunk-overlap must be between 0 and the chunk size, got {overlap}")
    files = find_files(args.paths)
    if not files:
        raise CliError(f"no supported files under {' '.join(args.paths)} (.txt, .md, .rst, .pdf with pypdf)")
    chunks = []
    for path in files:
        chunks.extend(
            make_chunks(path.as_posix(), read_text(path), chunk_size=args.chunk_size, overlap=overlap)
        )
    print(f"read {len(files)} file(s): {len(chunks)} chunk(s) of up to {args.chunk_size} characters")
    _check_local_model(args, args.model)
    cache_dir = _cache_dir(args)
    with _client(args) as pc:
        report = ingest_chunks(
            pc,
            args.index,
            chunks,
            model=args.model,
            namespace=args.namespace,
            cache=None if cache_dir is None else EmbeddingCache(cache_dir, args.model),
            show_progress=False if args.no_progress else None,
        )
    created = " (created)" if report.created_index else ""
    print(
        render_table(
            ["index", "namespace", "chunks", "already stored", "embedded", "from cache", "upserted"],
            [
                [
                    f"{report.index}{created}",
                    report.namespace or "(default)",
                    report.chunks,
                    report.existing,
                    report.embedded,
                    report.cached,
                    report.upserted,
                ]
            ],
        )
    )
    timing = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in report.seconds.items())
    print(
        f"{report.upserted} record(s) written, {report.existing} already stored, "
        f"{report.embedded} embedded ({timing})"
    )
    return 0


def _parse_filter(raw: str | None) -> dict[str, object] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CliError(f"--filter is not valid JSON ({error.msg} at position {error.pos}): {raw}") from None
    if not isinstance(value, dict):
        raise CliError(f'--filter must be a JSON object such as {{"source": "a.md"}}, got: {raw}')
    return value


def _describe(pc: PineconeClient, name: str) -> object:
    from pinecone_rag.errors import NotFoundError

    try:
        return pc.describe_index(name)
    except NotFoundError:
        names = ", ".join(sorted(model.name for model in pc.list_indexes())) or "none"
        raise CliError(f"no index named {name!r} (indexes: {names})") from None


def _query(args: argparse.Namespace) -> int:
    from pinecone_rag.cli_output import format_score, render_table, snippet, terminal_width
    from pinecone_rag.ingest import DEFAULT_MODEL, MODEL_TAG
    from pinecone_rag.models import IndexModel, SparseValues

    query_filter = _parse_filter(args.filter)
    if args.k < 1:
        raise CliError(f"-k must be at least 1, got {args.k}")
    if not args.question.strip():
        raise CliError("the question is empty")
    with _client(args) as pc:
        model_info = _describe(pc, args.index)
        assert isinstance(model_info, IndexModel)
        model = args.model or model_info.tags.get(MODEL_TAG) or DEFAULT_MODEL
        _check_local_model(args, model)
        parameters = {"input_type": "query", "truncate": "END"}
        embedded = pc.inference.embed(model, [args.question], parameters)[0]
        index = pc.index(args.index)
        if embedded.values is None:
            sparse = SparseValues.of(embedded.sparse_indices or [], embedded.sparse_values or [])
            if not len(sparse.indices):
                raise CliError("the question has no searchable words for a keyword (sparse) index")
            answer = index.query(
                sparse_vector=sparse,
                top_k=args.k,
                namespace=args.namespace,
                filter=query_filter,
                include_metadata=True,
            )
        else:
            answer = index.query(
                embedded.values,
                top_k=args.k,
                namespace=args.namespace,
                filter=query_filter,
                include_metadata=True,
            )
    if not answer.matches:
        print("no matches")
        return 0
    rows = []
    for rank, match in enumerate(answer.matches, start=1):
        metadata = match.metadata or {}
        source = str(metadata.get("source", ""))
        chunk = metadata.get("chunk")
        if isinstance(chunk, (int, float)):
            # Pinecone keeps metadata numbers as floats; chunk numbers were integers.
            source += f" #{int(chunk)}"
        rows.append([rank, format_score(match.score), source, snippet(str(metadata.get("text", "")), 400)])
    print(render_table(["rank", "score", "source", "snippet"], rows, max_width=terminal_width()))
    return 0


def _indexes(args: argparse.Namespace) -> int:
    from pinecone_rag.cli_output import render_table
    from pinecone_rag.ingest import MODEL_TAG

    with _client(args) as pc:
        models = sorted(pc.list_indexes(), key=lambda model: model.name)
        rows = []
        for model in models:
            count: object = pc.index(model.name).describe_index_stats().total_vector_count
            rows.append(
                [
                    model.name,
                    count,
                    model.vector_type,
                    model.dimension if model.dimension is not None else "",
                    model.metric,
                    model.tags.get(MODEL_TAG, ""),
                    model.host,
                ]
            )
    headers = ["name", "records", "type", "dimension", "metric", "model", "host"]
    if not (args.host or args.cloud):
        # The embedded engine picks free ports on every start: its hosts mean nothing afterwards.
        headers.pop()
        rows = [row[:-1] for row in rows]
    if not rows:
        print("no indexes yet: pinecone-rag ingest PATH --index NAME creates one")
        return 0
    print(render_table(headers, rows))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from pinecone_rag.cli_output import render_table

    with _client(args) as pc:
        names = [args.index] if args.index else sorted(model.name for model in pc.list_indexes())
        if args.index:
            _describe(pc, args.index)
        rows: list[list[object]] = []
        for name in names:
            stats = pc.index(name).describe_index_stats()
            shape = f"{stats.vector_type or 'dense'}, {stats.metric or '?'}"
            if stats.dimension:
                shape += f", {stats.dimension}-d"
            rows.append([name, "(all)", stats.total_vector_count, shape])
            for namespace, summary in sorted(stats.namespaces.items()):
                # "" and "__default__" both name the default namespace.
                label = "(default)" if namespace in ("", "__default__") else namespace
                rows.append(["", label, summary.vector_count, ""])
    if not rows:
        print("no indexes yet")
        return 0
    print(render_table(["index", "namespace", "records", "vectors"], rows))
    return 0


def _add_connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the data lives (default: the embedded engine)")
    group.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help="the embedded engine's data directory (default %(default)s)",
    )
    group.add_argument("--host", default=None, help="a Pinecone-compatible control plane URL instead")
    group.add_argument(
        "--cloud",
        action="store_true",
        help="Pinecone's cloud (PINECONE_CONTROLLER_HOST or api.pinecone.io) instead",
    )
    group.add_argument(
        "--api-key", default=None, help="API key for --host/--cloud (default $PINECONE_API_KEY)"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds per call (default %(default)s: a busy CPU embeds a batch of 96 chunks slowly)",
    )


def _add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``demo``, ``ingest``, ``query``, ``indexes`` and ``stats``."""
    demo = commands.add_parser(
        "demo",
        help="ingest Python's language reference and answer questions with LangChain and LlamaIndex",
    )
    demo.add_argument(
        "--data-dir", default=DEFAULT_DEMO_DIR, help="index and embedding cache (default %(default)s)"
    )
    demo.add_argument("--limit", type=int, default=None, help="ingest at most N topics (the answers' first)")
    demo.add_argument("--topics", default=None, help="comma-separated topics to ingest (default: all)")
    demo.add_argument(
        "--chunk-size", type=int, default=800, help="characters per chunk (default %(default)s)"
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

    ingest = commands.add_parser("ingest", help="load, chunk, embed and upsert files into an index")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (.txt .md .rst .pdf)")
    ingest.add_argument("--index", required=True, help="the index (created if missing)")
    ingest.add_argument("--namespace", default="", help="the namespace (default: the default namespace)")
    ingest.add_argument(
        "--chunk-size", type=int, default=800, help="characters per chunk (default %(default)s)"
    )
    ingest.add_argument("--chunk-overlap", type=int, default=None, help="characters repeated between chunks")
    ingest.add_argument(
        "--model",
        default="all-minilm-l6-v2",
        help="embedding model (default %(default)s; pinecone-rag-bm25 for keyword search)",
    )
    ingest.add_argument(
        "--cache-dir", default=None, help="embedding cache (default DATA_DIR/embedding-cache)"
    )
    ingest.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_connection(ingest)
    ingest.set_defaults(func=_ingest)

    query = commands.add_parser("query", help="search an index with a question; prints a table of hits")
    query.add_argument("question")
    query.add_argument("--index", required=True)
    query.add_argument(
        "-k", "--top-k", dest="k", type=int, default=5, help="hits to show (default %(default)s)"
    )
    query.add_argument("--filter", default=None, help='metadata filter as JSON, e.g. \'{"source": "a.md"}\'')
    query.add_argument("--namespace", default="")
    query.add_argument(
        "--model", default=None, help="embedding model (default: the one the index was built with)"
    )
    _add_connection(query)
    query.set_defaults(func=_query)

    indexes = commands.add_parser("indexes", help="list indexes with their record counts")
    _add_connection(indexes)
    indexes.set_defaults(func=_indexes)

    stats = commands.add_parser("stats", help="record counts per namespace")
    stats.add_argument("--index", default=None, help="one index (default: all)")
    _add_connection(stats)
    stats.set_defaults(func=_stats)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pinecone-rag`` command."""
    parser = argparse.ArgumentParser(
        prog="pinecone-rag", description="Pinecone for RAG: local engine and tools."
    )
    parser.add_argument("--version", action="version", version=f"pinecone-rag {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the Pinecone-compatible local engine")
    serve.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help="where data is stored (default %(default)s)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument("--port", type=int, default=5080, help="control-plane port (default %(default)s)")
    serve.add_argument("--api-key", action="append", help="an API key of the default project (repeatable)")
    serve.add_argument("--data-port-start", type=int, default=None, help="first index port (default port+1)")
    serve.add_argument(
        "--host-format",
        choices=("http", "bare"),
        default="http",
        help="index hosts for API 2025-10: http://host:port (default) or bare host:port",
    )
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads per query (default 1: parallel queries give the concurrency; 0: leave BLAS alone)",
    )
    serve.add_argument("--tls-cert", default=None, help="PEM certificate: serve HTTPS and gRPC over TLS")
    serve.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    serve.set_defaults(func=_serve)

    keys = commands.add_parser("keys", help="manage API keys stored in the data directory")
    keys.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--project", default="default")
    create.add_argument("--name", default="default")
    key_commands.add_parser("list", help="list keys (never their secrets)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    keys.set_defaults(func=_keys)

    _add_data_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pinecone-rag`` console script."""
    args = build_parser().parse_args(argv)
    from pinecone_rag.errors import ApiError, PineconeError
    from pinecone_rag.ingest import IngestError

    try:
        code: int = args.func(args)
    except (CliError, IngestError) as error:
        return _fail(str(error))
    except ApiError as error:
        return _fail(error.message)
    except PineconeError as error:
        return _fail(str(error))
    except OSError as error:  # e.g. a data directory that cannot be created or written
        where = f": {error.filename}" if error.filename else ""
        return _fail(f"{error.strerror or error}{where}")
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)
    return code


def _fail(message: str, *, code: int = 1) -> int:
    # One line, whatever the message: a multi-line server message would read like a traceback.
    print(f"pinecone-rag: error: {' '.join(message.split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

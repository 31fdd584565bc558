"""The ``pinecone-rag`` command: ``serve``, ``keys``, and ``demo``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pinecone_rag._version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_DATA_DIR = "./pinecone-data"


def _serve(args: argparse.Namespace) -> int:
    from pinecone_rag.server import LocalServer

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
    )
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
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

    return run_demo(args.data_dir, count=args.count, dimension=args.dimension)


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

    demo = commands.add_parser(
        "demo", help="start the engine, index vectors, query them, print what happened"
    )
    demo.add_argument("--data-dir", default=None, help="keep the data here (default: a temporary directory)")
    demo.add_argument("--count", type=int, default=5000)
    demo.add_argument("--dimension", type=int, default=384)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pinecone-rag`` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

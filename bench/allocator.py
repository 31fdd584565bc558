"""What the serving allocator settings (``server/heap.tune_for_server``) save: page faults and kernel time.

Two measurements, each with the settings and with glibc's defaults, side by side in one run:

* **gRPC alone**: a grpcio server (a fresh process per run) whose handler does nothing takes ``--requests``
  (400) requests of 1.6 MB (a 500 x 768 upsert with metadata) from 8 threads, after a warm-up; per request:
  the server's minor page faults, kernel and user CPU. Runs alternate which setting goes first.
* **Engine ingest**: two ``pinecone-rag serve`` processes, one as shipped and one with the tuning switched
  off, each taking ``--count`` (40,000) records of 768 dimensions with metadata from our client at 8
  requests in flight, alternately, ``--pairs`` times, each into a new namespace, each after the engine
  went idle (runs alternate which engine goes first); per record: the engine's minor page faults, kernel
  and user CPU, and records/s (medians).

Run (from the repository root)::

    .venv/bin/python bench/allocator.py
    .venv/bin/python bench/allocator.py --quick
    .venv/bin/python bench/allocator.py --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import (
    API_KEY,
    Engine,
    command_line,
    dataset,
    emit_section,
    load_average,
    machine_facts,
    process_counters,
    process_cpu_seconds,
    wait_until_idle,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

SECTION = "allocator"
INDEX_NAME = "allocator"
TUNED = "tuned (`pinecone-rag serve`)"
DEFAULT = "glibc defaults"

# A grpcio server whose handler does nothing, with or without the tuning: gRPC's own share of an upsert.
_FLOOR_SERVER = """
import sys, threading
from concurrent import futures
import grpc
from pinecone_rag.server.heap import tune_for_server
if sys.argv[1] == "tuned" and not tune_for_server():
    raise SystemExit("the C library has no mallopt")
server = grpc.server(futures.ThreadPoolExecutor(8), options=[("grpc.max_receive_message_length", 64 << 20)])
handler = grpc.unary_unary_rpc_method_handler(lambda request, context: b"")
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Floor", {"Call": handler}),))
print(server.add_insecure_port("127.0.0.1:0"), flush=True)
server.start()
sys.stdin.read()  # until the benchmark closes our stdin
"""
REQUEST_BYTES = 1_600_000  # a 500 x 768 upsert with metadata


# ``pinecone-rag serve`` with the allocator tuning switched off (the control of the experiment).
_SERVE_UNTUNED = """
import sys
import pinecone_rag.server.heap as heap
heap.tune_for_server = lambda: False
import pinecone_rag.cli as cli
sys.exit(cli.main(sys.argv[1:]))
"""


def grpc_floor(setting: str, requests: int) -> dict[str, float]:
    """Per request to a do-nothing grpcio server (``tuned`` or ``default``), 8 in flight: faults and CPU."""
    import grpc  # noqa: PLC0415

    with subprocess.Popen(
        [sys.executable, "-c", _FLOOR_SERVER, setting],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            options = [("grpc.max_send_message_length", 64 << 20)]
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
                call = channel.unary_unary("/bench.Floor/Call")
                payload = os.urandom(REQUEST_BYTES)

                def send(count: int) -> None:
                    for _ in range(count):
                        call(payload, timeout=60)

                def round_of(total: int) -> None:
                    workers = [threading.Thread(target=send, args=(total // 8,)) for _ in range(8)]
                    for worker in workers:
                        worker.start()
                    for worker in workers:
                        worker.join()

                round_of(64)  # warm-up: connection, threads, arenas
                faults, user, system = process_counters(server.pid)
                began = time.perf_counter()
                round_of(requests)
                seconds = time.perf_counter() - began
                faults_after, user_after, system_after = process_counters(server.pid)
        finally:
            server.kill()
    return {
        "faults": (faults_after - faults) / requests,
        "sys_ms": 1000 * (system_after - system) / requests,
        "user_ms": 1000 * (user_after - user) / requests,
        "rate": requests / seconds,
    }


@contextlib.contextmanager
def serve(data_dir: Path, *, tuned: bool) -> Iterator[tuple[Engine, int]]:
    """An engine as ``pinecone-rag serve``, with or without the tuning: (engine, pid)."""
    prefix = ["-m", "pinecone_rag.cli"] if tuned else ["-c", _SERVE_UNTUNED]
    command = [sys.executable, *prefix, "serve", "--data-dir", str(data_dir), "--port", "0"]
    process = subprocess.Popen([*command, "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        match = re.search(r" on (http://\S+)", process.stdout.readline())
        if match is None:
            raise RuntimeError("`pinecone-rag serve` did not report its URL")
        yield Engine(match.group(1), process_cpu_seconds(process.pid)), process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def ingest(
    engine: Engine, pid: int, data: tuple[Any, list[str], list[Any]], namespace: str, quiet: list[Engine]
) -> dict[str, float]:
    """One ingest through our client at 8 in flight: the engine's faults and CPU per record, records/s.

    It starts once every engine in ``quiet`` is idle, so neither engine's builds overlap the other's ingest.
    """
    from pinecone_rag import PineconeClient  # noqa: PLC0415

    matrix, ids, metadata = data
    with PineconeClient(API_KEY, host=engine.url) as client:
        if not client.has_index(INDEX_NAME):
            client.create_index(INDEX_NAME, dimension=matrix.shape[1], metric="cosine")
        index = client.index(INDEX_NAME)
        for other in quiet:
            wait_until_idle(other)
        faults, user, system = process_counters(pid)
        began = time.perf_counter()
        result = index.upsert(
            matrix, namespace, ids=ids, metadata=metadata, max_concurrency=8, batch_size=500
        )
        seconds = time.perf_counter() - began
        faults_after, user_after, system_after = process_counters(pid)
        if result.upserted_count != len(ids) or result.failed:
            raise RuntimeError(f"the ingest lost records: {result}")
    count = len(ids)
    return {
        "faults": (faults_after - faults) / count,
        "sys_us": 1e6 * (system_after - system) / count,
        "user_us": 1e6 * (user_after - user) / count,
        "rate": count / seconds,
    }


def median_of(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def table_rows(results: dict[str, list[dict[str, float]]], columns: list[tuple[str, str]]) -> list[str]:
    """One markdown row per setting: the median of each ``(key, format)`` column over its runs."""
    return [
        "| " + " | ".join([setting, *(format(median_of(samples, key), spec) for key, spec in columns)]) + " |"
        for setting, samples in results.items()
    ]


def render(
    args: argparse.Namespace,
    floor: dict[str, list[dict[str, float]]],
    engine: dict[str, list[dict[str, float]]],
) -> str:
    lines = [
        "## Allocator settings of `pinecone-rag serve`: page faults and kernel time",
        "",
        f"Command: `{command_line()}` (from the repository root).",
        "",
        "Machine:",
        "",
        *machine_facts(args.load_before),
        "",
        (
            f"### gRPC alone: a grpcio server whose handler does nothing, {args.requests} requests of "
            f"1.6 MB from 8 threads (medians of {args.runs} runs, each server a fresh process)"
        ),
        "",
        "| server allocator | page faults / request | kernel ms / request | user ms / request | requests/s |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += table_rows(floor, [("faults", ".0f"), ("sys_ms", ".2f"), ("user_ms", ".2f"), ("rate", ",.0f")])
    lines += [
        "",
        (
            f"### Engine ingest: {args.count:,} x 768 with metadata, our client, 8 in flight "
            f"(medians of {args.pairs} alternating runs per engine)"
        ),
        "",
        "| engine | page faults / record | kernel us / record | user us / record | records/s |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += table_rows(engine, [("faults", ".2f"), ("sys_us", ".1f"), ("user_us", ".1f"), ("rate", ",.0f")])
    lines += [
        "",
        "The engine's per-record figures include what every ingest must do (storing the new vectors in",
        "fresh memory, the write-ahead log in the page cache); the allocator settings only remove the",
        "re-faulting of freed request buffers. Records/s moves with the machine's load more than with the",
        "setting: compare the faults and kernel time.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: small sizes, one pair")
    parser.add_argument("--requests", type=int, default=None, help="requests per gRPC run (default 400)")
    parser.add_argument("--runs", type=int, default=None, help="runs of the gRPC test (default 5)")
    parser.add_argument("--count", type=int, default=None, help="records per ingest (default 40,000)")
    parser.add_argument("--pairs", type=int, default=None, help="ingests per engine (default 5)")
    parser.add_argument("--write", type=Path, default=None, help="write the markdown section to this file")
    args = parser.parse_args(argv)
    args.requests = args.requests or (64 if args.quick else 400)
    args.runs = args.runs or (1 if args.quick else 5)
    args.count = args.count or (2_000 if args.quick else 40_000)
    args.pairs = args.pairs or (1 if args.quick else 5)
    args.load_before = load_average()
    floor: dict[str, list[dict[str, float]]] = {TUNED: [], DEFAULT: []}
    for run in range(args.runs):
        for setting in (TUNED, DEFAULT) if run % 2 == 0 else (DEFAULT, TUNED):
            floor[setting].append(grpc_floor("tuned" if setting == TUNED else "default", args.requests))
            print(f"# gRPC {setting} run {run + 1}: {floor[setting][-1]}", file=sys.stderr, flush=True)
    engine: dict[str, list[dict[str, float]]] = {TUNED: [], DEFAULT: []}
    data = dataset(args.count, 768)
    with (
        tempfile.TemporaryDirectory(prefix="bench-allocator-") as tmp,
        serve(Path(tmp, "tuned"), tuned=True) as (tuned, tuned_pid),
        serve(Path(tmp, "default"), tuned=False) as (untuned, untuned_pid),
    ):
        engines = [(TUNED, (tuned, tuned_pid)), (DEFAULT, (untuned, untuned_pid))]
        for pair in range(args.pairs):
            for setting, (handle, pid) in engines if pair % 2 == 0 else engines[::-1]:
                engine[setting].append(ingest(handle, pid, data, f"run-{pair}", [tuned, untuned]))
                print(f"# {setting} run {pair + 1}: {engine[setting][-1]}", file=sys.stderr, flush=True)
    section = render(args, floor, engine)
    emit_section(section, args.write, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())

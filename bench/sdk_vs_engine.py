"""The official Pinecone SDK (8.x) against the local engine: REST vs gRPC on the shared port vs direct gRPC.

Each index of the local engine has one data-plane port that serves REST (HTTP/1.1) and gRPC (h2c). A gRPC
connection on that port is spliced by an asyncio proxy to the index's grpcio server, whose own ("direct")
loopback port describe_index advertises in the ``x-pinecone-rag-grpc-port`` response header. This benchmark
drives the official SDK through these paths to the same index:

* ``REST``: ``Pinecone(...).Index(host="http://127.0.0.1:PORT")``, the SDK's default call;
* ``REST unchecked``: the same call with the SDK's private ``_check_type=False`` keyword, which skips its
  per-float type validation in Python (so the REST wire and server cost shows through);
* ``gRPC shared``: ``PineconeGRPC(...).Index(host="127.0.0.1:PORT", grpc_config=...)`` with
  ``GRPCClientConfig(secure=False)``, i.e. through the splice proxy;
* ``gRPC direct``: the same, to the direct port from the ``x-pinecone-rag-grpc-port`` header.

and measures:

1. Upsert throughput (vectors/s) of ``--count`` L2-normalised float32 vectors (seeded
   ``numpy.random.default_rng``), sequential requests (one in flight), at batch size 100 without metadata
   (all paths), 100 with small metadata (two keys; not the default REST path, which runs at about a hundred
   vectors/s), and 500 without metadata over gRPC only (500 x 768 floats is about 1.5 MB, under the 2 MB
   request limit; as JSON it is about 7.7 MB, over it). Batches shrink for large ``--dimension`` so that
   every request stays under 2 MB. Each configuration gets a fresh index and each path its own namespace
   in it; batches go round-robin across the paths, so machine-load drift hits all of them alike. Only the
   SDK call is timed (``time.perf_counter``); turning numpy rows into Python lists happens before it.
   Afterwards describe_index_stats (through the REST, shared and direct clients) must report exactly
   ``--count`` vectors per namespace plus the warm-up namespace, or the run fails.
2. Query latency p50/p99 (ms) and sequential queries/s of ``--queries`` top_k=10 queries (seeded, distinct
   from the data) against one namespace of the first (batch-100) index, through every path, also
   round-robin. Every query must return top_k matches; recall@10 against exact numpy search is reported.
3. The cost of sharing the port: shared/direct ratios of query latency and upsert throughput.

Every path is warmed up (upserts into a separate namespace, a few queries) before it is timed. By default
the engine runs in this process (``LocalServer`` on its own thread, as ``PineconeClient.local`` does), so
client and server share one GIL; ``--server process`` runs ``pinecone-rag serve`` in a subprocess instead.

Run (from the repository root)::

    .venv/bin/python bench/sdk_vs_engine.py                    # full: 10k x 768, 500 queries
    .venv/bin/python bench/sdk_vs_engine.py --quick            # CI smoke: 1k x 768, 50 queries
    .venv/bin/python bench/sdk_vs_engine.py --write bench/RESULTS.md

The markdown printed to stdout is also written (``--write``) between ``<!-- sdk_vs_engine:start -->`` and
``<!-- sdk_vs_engine:end -->`` in the given file, leaving the rest of the file alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from _common import (
    command_line,
    emit_section,
    fmt_rate,
    fmt_ratio,
    grpc_port_of,
    package_version,
    running_engine,
    unit_rows,
)

API_KEY = "bench-key"
API_VERSION = "2025-10"
TOP_K = 10
SEED = 20250101
TABLE_HEADER = "## Official SDK 8.x vs the local engine: REST, gRPC on the shared port, direct gRPC"

REST = "REST"
UNCHECKED = "REST unchecked"
SHARED = "gRPC shared"
DIRECT = "gRPC direct"
PATHS = (REST, UNCHECKED, SHARED, DIRECT)
NAMESPACES = {REST: "rest", UNCHECKED: "rest-unchecked", SHARED: "grpc-shared", DIRECT: "grpc-direct"}
# The SDK's REST path validates every float of every vector in Python unless told not to (a private
# keyword, `_check_type`, that upsert and query accept); "REST unchecked" shows what REST costs without it.
CALL_OPTIONS: dict[str, dict[str, Any]] = {UNCHECKED: {"_check_type": False}}
WARMUP_NAMESPACE = "warmup"
# Every path queries the same namespace (all hold the same vectors): rotating over four 30 MB namespaces
# would run every scan from DRAM rather than cache (measured here: ~8 ms instead of ~3 ms for 10k x 768)
# and bury the transport differences this benchmark is about.
QUERY_NAMESPACE = NAMESPACES[DIRECT]
UPSERT_HEADER = (
    "| batch | metadata | REST | REST unchecked | gRPC shared | gRPC direct | shared/direct "
    "| REST unchecked/direct | REST/direct |"
)


# ---------------------------------------------------------------------------------------------- engine


# ------------------------------------------------------------------------------------------------ data


def small_metadata(i: int) -> dict[str, Any]:
    """Two keys, the size of a typical RAG chunk reference."""
    return {"doc": f"doc-{i // 10}", "chunk": i % 10}


def make_batch(data: np.ndarray, start: int, stop: int, *, metadata: bool) -> list[dict[str, Any]]:
    """The SDK's dict format, values as Python lists (built before the clock starts)."""
    rows = data[start:stop].tolist()
    if metadata:
        return [
            {"id": f"v{start + k}", "values": row, "metadata": small_metadata(start + k)}
            for k, row in enumerate(rows)
        ]
    return [{"id": f"v{start + k}", "values": row} for k, row in enumerate(rows)]


# ------------------------------------------------------------------------------------------- measuring
@dataclass
class UpsertConfig:
    """One upsert measurement: a batch size, with or without metadata, over some paths."""

    label: str
    batch: int
    metadata: bool
    paths: tuple[str, ...]
    seconds: dict[str, float] = field(default_factory=dict)
    vectors_per_s: dict[str, float] = field(default_factory=dict)


@dataclass
class QueryResult:
    """Per-path query latencies (seconds) and recall against exact search."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    recall: dict[str, float] = field(default_factory=dict)
    tiny: dict[str, list[float]] = field(default_factory=dict)  # describe_index_stats latencies

    def percentile_ms(self, path: str, q: float) -> float:
        return float(np.percentile(np.asarray(self.latencies[path]), q)) * 1000.0

    def tiny_ms(self, path: str, q: float) -> float:
        return float(np.percentile(np.asarray(self.tiny[path]), q)) * 1000.0

    def qps(self, path: str) -> float:
        return len(self.latencies[path]) / sum(self.latencies[path])


def stats_counts(index: Any) -> tuple[dict[str, int], int]:
    """Per-namespace vector counts and the total from describe_index_stats."""
    stats = index.describe_index_stats()
    namespaces = {name: int(summary.vector_count) for name, summary in stats.namespaces.items()}
    return namespaces, int(stats.total_vector_count)


class Bench:
    """The SDK clients against one engine, and the measurements."""

    def __init__(self, control_url: str, args: argparse.Namespace) -> None:
        from pinecone import Pinecone  # noqa: PLC0415  (imported late: warnings filters are set first)
        from pinecone.grpc import GRPCClientConfig, PineconeGRPC  # noqa: PLC0415

        self.args = args
        self.control_url = control_url
        self.rest = Pinecone(api_key=API_KEY, host=control_url)
        self.grpc = PineconeGRPC(api_key=API_KEY, host=control_url)
        self.grpc_config = GRPCClientConfig(secure=False)
        self.counter = 0

    def create_index(self, label: str) -> tuple[str, dict[str, Any]]:
        """A fresh index and one SDK Index object per path."""
        from pinecone import ServerlessSpec  # noqa: PLC0415

        self.counter += 1
        name = f"bench-{self.counter}-{label}"
        self.rest.create_index(
            name=name,
            dimension=self.args.dimension,
            metric="cosine",
            spec=ServerlessSpec(cloud="aws", region="us-east-1"),
        )
        host = self.rest.describe_index(name).host
        bare = host.removeprefix("http://").removeprefix("https://")
        direct = f"127.0.0.1:{grpc_port_of(self.control_url, name)}"
        if direct == bare:
            raise RuntimeError("the direct gRPC port is the shared port; nothing to compare")
        rest = self.rest.Index(host=host if "://" in host else f"http://{host}")
        clients = {
            REST: rest,
            UNCHECKED: rest,
            SHARED: self.grpc.Index(host=bare, grpc_config=self.grpc_config),
            DIRECT: self.grpc.Index(host=direct, grpc_config=self.grpc_config),
        }
        return name, clients

    def delete_index(self, name: str, clients: dict[str, Any]) -> None:
        for client in {id(c): c for c in clients.values()}.values():
            close = getattr(client, "close", None)
            if close is not None:
                close()
        self.rest.delete_index(name)

    def upsert(self, config: UpsertConfig, data: np.ndarray, clients: dict[str, Any]) -> None:
        """Warm up, then time round-robin sequential upserts of every batch through every path."""
        warm_batches = 1 if self.args.quick else 3
        warm_count = min(len(data), warm_batches * config.batch)
        for path in config.paths:
            for start in range(0, warm_count, config.batch):
                stop = min(start + config.batch, warm_count)
                batch = make_batch(data, start, stop, metadata=config.metadata)
                clients[path].upsert(vectors=batch, namespace=WARMUP_NAMESPACE, **CALL_OPTIONS.get(path, {}))
        seconds = dict.fromkeys(config.paths, 0.0)
        for i, start in enumerate(range(0, len(data), config.batch)):
            stop = min(start + config.batch, len(data))
            order = config.paths[i % len(config.paths) :] + config.paths[: i % len(config.paths)]
            for path in order:
                # A fresh batch per call: the SDK's gRPC path replaces metadata dicts by Structs in place.
                batch = make_batch(data, start, stop, metadata=config.metadata)
                client, namespace, options = clients[path], NAMESPACES[path], CALL_OPTIONS.get(path, {})
                began = time.perf_counter()
                response = client.upsert(vectors=batch, namespace=namespace, **options)
                seconds[path] += time.perf_counter() - began
                if response.upserted_count != len(batch):
                    raise RuntimeError(
                        f"{path}: upserted_count {response.upserted_count} != batch of {len(batch)}"
                    )
        config.seconds = seconds
        config.vectors_per_s = {path: len(data) / s for path, s in seconds.items()}
        self.verify_counts(clients, config, len(data), warm_count)

    def verify_counts(self, clients: dict[str, Any], config: UpsertConfig, count: int, warm: int) -> None:
        """describe_index_stats, through every path, must show every vector: no silent loss."""
        expected = {NAMESPACES[path]: count for path in config.paths}
        expected[WARMUP_NAMESPACE] = warm  # every path upserted the same warm-up ids
        for path in (REST, SHARED, DIRECT):  # the three distinct clients
            namespaces, total = stats_counts(clients[path])
            if namespaces != expected or total != sum(expected.values()):
                raise RuntimeError(
                    f"{config.label}: describe_index_stats via {path} reports {namespaces} "
                    f"(total {total}); expected {expected}"
                )

    def query(self, data: np.ndarray, queries: np.ndarray, clients: dict[str, Any]) -> QueryResult:
        """Warm up, then time round-robin sequential top_k queries through every path."""
        exact = np.argsort(-(queries @ data.T), axis=1)[:, :TOP_K]
        warm = queries[: (5 if self.args.quick else 20)].tolist()
        for path in PATHS:
            for vector in warm:
                options = CALL_OPTIONS.get(path, {})
                clients[path].query(vector=vector, top_k=TOP_K, namespace=QUERY_NAMESPACE, **options)
        result = QueryResult(latencies={p: [] for p in PATHS})
        hits = dict.fromkeys(PATHS, 0)
        for i, vector in enumerate(queries.tolist()):
            order = PATHS[i % len(PATHS) :] + PATHS[: i % len(PATHS)]
            truth = {f"v{j}" for j in exact[i]}
            for path in order:
                client, options = clients[path], CALL_OPTIONS.get(path, {})
                began = time.perf_counter()
                response = client.query(vector=vector, top_k=TOP_K, namespace=QUERY_NAMESPACE, **options)
                result.latencies[path].append(time.perf_counter() - began)
                ids = [match.id for match in response.matches]
                if len(ids) != TOP_K:
                    raise RuntimeError(f"{path}: query {i} returned {len(ids)} matches, expected {TOP_K}")
                hits[path] += len(truth.intersection(ids))
        result.recall = {path: hits[path] / (TOP_K * len(queries)) for path in PATHS}
        # A call with tiny request and response isolates the per-call cost of each transport.
        tiny_paths = (REST, SHARED, DIRECT)
        result.tiny = {path: [] for path in tiny_paths}
        for path in tiny_paths:
            for _ in warm:
                clients[path].describe_index_stats()
        for i in range(len(queries)):
            for path in tiny_paths[i % 3 :] + tiny_paths[: i % 3]:
                began = time.perf_counter()
                clients[path].describe_index_stats()
                result.tiny[path].append(time.perf_counter() - began)
        return result


# --------------------------------------------------------------------------------------------- report


def machine_facts() -> list[str]:
    from google.protobuf.internal import api_implementation  # noqa: PLC0415

    versions = ", ".join(
        f"{name} {package_version(name)}"
        for name in ("pinecone", "grpcio", "protobuf", "numpy", "urllib3", "pinecone-rag")
    )
    return [
        f"- cores (`os.cpu_count()`): {os.cpu_count()}; {platform.system()} {platform.machine()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- {versions}; protobuf backend: {api_implementation.Type()}",
    ]


def upsert_rows(configs: list[UpsertConfig]) -> list[str]:
    rows = []
    for config in configs:
        rate = config.vectors_per_s
        rest, unchecked = rate.get(REST), rate.get(UNCHECKED)
        shared, direct = rate.get(SHARED), rate.get(DIRECT)
        cells = [
            str(config.batch),
            "2 keys" if config.metadata else "none",
            fmt_rate(rest),
            fmt_rate(unchecked),
            fmt_rate(shared),
            fmt_rate(direct),
            fmt_ratio(shared, direct),
            fmt_ratio(unchecked, direct),
            fmt_ratio(rest, direct),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def query_rows(queries: QueryResult) -> list[str]:
    rows = []
    direct_p50 = queries.percentile_ms(DIRECT, 50)
    for path in PATHS:
        p50 = queries.percentile_ms(path, 50)
        mean_ms = 1000.0 * sum(queries.latencies[path]) / len(queries.latencies[path])
        cells = [
            path,
            f"{p50:.2f}",
            f"{queries.percentile_ms(path, 99):.2f}",
            f"{mean_ms:.2f}",
            f"{queries.qps(path):,.0f}",
            f"{queries.recall[path]:.3f}",
            fmt_ratio(p50, direct_p50),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def tiny_rows(queries: QueryResult) -> list[str]:
    direct_p50 = queries.tiny_ms(DIRECT, 50)
    rows = []
    for path in queries.tiny:
        p50, p99 = queries.tiny_ms(path, 50), queries.tiny_ms(path, 99)
        rows.append(f"| {path} | {p50:.2f} | {p99:.2f} | {fmt_ratio(p50, direct_p50)} |")
    return rows


def sharing_rows(configs: list[UpsertConfig], queries: QueryResult) -> list[str]:
    rows = []
    for q in (50, 99):
        shared, direct = queries.percentile_ms(SHARED, q), queries.percentile_ms(DIRECT, q)
        rows.append(f"| query p{q} ms | {shared:.2f} | {direct:.2f} | {fmt_ratio(shared, direct)} |")
    shared, direct = queries.qps(SHARED), queries.qps(DIRECT)
    rows.append(f"| queries/s | {shared:,.0f} | {direct:,.0f} | {fmt_ratio(shared, direct)} |")
    for q in (50, 99):
        shared, direct = queries.tiny_ms(SHARED, q), queries.tiny_ms(DIRECT, q)
        ratio = fmt_ratio(shared, direct)
        rows.append(f"| describe_index_stats p{q} ms | {shared:.2f} | {direct:.2f} | {ratio} |")
    for config in configs:
        shared_rate, direct_rate = config.vectors_per_s.get(SHARED), config.vectors_per_s.get(DIRECT)
        what = f"upsert vec/s, batch {config.batch}" + (", metadata" if config.metadata else "")
        ratio = fmt_ratio(shared_rate, direct_rate)
        rows.append(f"| {what} | {fmt_rate(shared_rate)} | {fmt_rate(direct_rate)} | {ratio} |")
    return rows


def render(
    args: argparse.Namespace, configs: list[UpsertConfig], queries: QueryResult, elapsed: float
) -> str:
    where = (
        "in this process (a thread)" if args.server == "thread" else "in a subprocess (`pinecone-rag serve`)"
    )
    size = f"{args.count:,} x {args.dimension}"
    big = configs[-1].batch
    json_mb = big * args.dimension * 20 / 1e6
    lines = [
        TABLE_HEADER,
        "",
        f"Command: `{command_line()}` (from the repository root).",
        f"Wall time {elapsed:.1f} s; engine {where}; official SDK calls, sequential (one request in flight).",
        "",
        "Machine:",
        "",
        *machine_facts(),
        "",
        f"### Upsert throughput, {size} float32 (vectors/s)",
        "",
        UPSERT_HEADER,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        *upsert_rows(configs),
        "",
        "REST is the SDK's default call; REST unchecked is the same call with `_check_type=False`, which",
        "skips the SDK's per-float type validation in Python (the dominant cost of the default REST path).",
        "The default REST path is measured once (no metadata) because it is that slow.",
        f"REST at batch {big} is n/a: as JSON it is about {json_mb:.1f} MB, over the 2 MB request limit.",
        f"Afterwards describe_index_stats (through all three paths) showed {args.count:,} vectors in every",
        "namespace, plus the warm-up namespace, and nothing else.",
        "",
        f"### Query latency, top_k={TOP_K}, {args.queries} queries per path against one namespace of {size}",
        "",
        "| path | p50 ms | p99 ms | mean ms | queries/s | recall@10 vs exact | p50 / direct p50 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *query_rows(queries),
        "",
        f"### Per-call cost: describe_index_stats (tiny request and response), {args.queries} calls per path",
        "",
        "| path | p50 ms | p99 ms | p50 / direct p50 |",
        "|---|---:|---:|---:|",
        *tiny_rows(queries),
        "",
        "### Cost of sharing the port (gRPC shared vs gRPC direct)",
        "",
        "| measure | shared | direct | shared/direct |",
        "|---|---:|---:|---:|",
        *sharing_rows(configs, queries),
        "",
        "A latency ratio above 1, or a throughput ratio below 1, is what the splice proxy costs. The paths",
        "ran round-robin (batch by batch, query by query), so load drift on the machine hits them alike.",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 1k vectors, 50 queries")
    parser.add_argument("--count", type=int, default=None, help="vectors per upsert run (default 10,000)")
    parser.add_argument("--dimension", type=int, default=768)
    parser.add_argument("--queries", type=int, default=None, help="timed queries per path (default 500)")
    parser.add_argument("--server", choices=("thread", "process"), default="thread")
    parser.add_argument("--write", type=Path, default=None, help="write the markdown section to this file")
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = 1_000 if args.quick else 10_000
    if args.queries is None:
        args.queries = 50 if args.quick else 500
    if args.count < TOP_K or args.queries < 1 or args.dimension < 1:
        parser.error("need --count >= 10, --queries >= 1 and --dimension >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pinecone(_plugin_interface)?\b.*")
    began = time.perf_counter()
    rng = np.random.default_rng(SEED)
    data = unit_rows(rng, args.count, args.dimension)
    queries = unit_rows(rng, args.queries, args.dimension)
    # Requests must stay under the 2 MB upsert limit: about 4 bytes per float on gRPC (packed float32),
    # up to about 22 as JSON (the SDK writes float64 reprs of the float32 values).
    budget = 2 * 1024 * 1024 - 64 * 1024
    batch = max(1, min(100, budget // (22 * args.dimension + 128)))
    big_batch = max(1, min(500, budget // (4 * args.dimension + 32)))
    configs = [
        UpsertConfig(f"b{batch}", batch, metadata=False, paths=PATHS),
        # The SDK's default REST path runs at about a hundred vectors/s (its per-float type checks), so
        # it is measured once, without metadata; "REST unchecked" covers REST with metadata.
        UpsertConfig(f"b{batch}-meta", batch, metadata=True, paths=(UNCHECKED, SHARED, DIRECT)),
        UpsertConfig(f"b{big_batch}", big_batch, metadata=False, paths=(SHARED, DIRECT)),
    ]
    with (
        tempfile.TemporaryDirectory(prefix="bench-sdk-") as tmp,
        running_engine(args.server, Path(tmp)) as control_url,
    ):
        bench = Bench(control_url, args)
        query_result: QueryResult | None = None
        for config in configs:
            name, clients = bench.create_index(config.label)
            bench.upsert(config, data, clients)
            print(
                f"# upsert {config.label}: "
                + ", ".join(f"{p} {v:,.0f} vec/s" for p, v in config.vectors_per_s.items()),
                file=sys.stderr,
                flush=True,
            )
            if config is configs[0]:
                query_result = bench.query(data, queries, clients)
            bench.delete_index(name, clients)
    assert query_result is not None
    section = render(args, configs, query_result, time.perf_counter() - began)
    emit_section(section, args.write, "sdk_vs_engine")
    return 0


if __name__ == "__main__":
    sys.exit(main())

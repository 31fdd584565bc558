"""Query latency of our client vs the official SDK 8.x (gRPC and REST): same engine, data and concurrency.

One engine, one index (cosine, ``--dimension`` 768) holding ``--count`` (100,000) seeded L2-normalised
float32 rows with small metadata (``{"source": "doc-17.md", "chunk": 3, "tags": ["a", "b"]}``), written
once with our client (untimed); the benchmark then waits until the engine is idle, so the clustered index
is built and answers every query. The rows are a Gaussian mixture in a low-dimensional subspace (the
``Mixture`` of ``bench/_engine_data.py``, shaped like sentence embeddings): on uniform noise, where every
row is about as far from a query as any other, a clustered index finds a quarter of the true neighbours
and recall would say nothing about real use. Then ``--queries`` (1000) query vectors from the same
mixture, distinct from the data, ``top_k=10`` with ``include_metadata=True``, through four paths (see
``bench/_common.py``): ``ours gRPC``, ``ours REST``, ``SDK gRPC``, ``SDK REST``. Ours get the numpy row;
the SDK a Python list (converted before the clock starts, as its documentation shows lists).

* **Sequential**: one query in flight; query by query, every path in rotating order, so drift in machine
  load hits all paths alike.
* **Concurrent**: ``--concurrency`` (8) threads of one ``ThreadPoolExecutor`` share one client object per
  path (each client is documented as thread-safe); the queries are split into ``--rounds`` slices and each
  round runs every path on its slice, in rotating order.

Each query is timed alone (``time.perf_counter`` around the call); queries/s is queries over the wall time
of the path's share. Every response must hold ``top_k`` matches whose metadata is the record's own; recall
@10 against exact numpy search (float64 scores) is reported per path; the engine's index is approximate,
and every path queries the same index, so recall must agree across paths (ties: the 10th and 11th exact
scores closer than float32 rounding).

Run (from the repository root)::

    .venv/bin/python bench/client_query.py                   # full: 100k x 768, 1000 queries
    .venv/bin/python bench/client_query.py --quick           # CI smoke: 5k x 768, 100 queries
    .venv/bin/python bench/client_query.py --write bench/RESULTS.md

The markdown printed to stdout is also written (``--write``) between ``<!-- client_query:start -->`` and
``<!-- client_query:end -->`` in the given file, leaving the rest of the file alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from _common import (
    API_KEY,
    OURS_GRPC,
    OURS_REST,
    PATHS,
    SDK_GRPC,
    SDK_REST,
    Engine,
    command_line,
    data_host_of,
    emit_section,
    engine_description,
    engine_process,
    fmt_rate,
    fmt_ratio,
    grpc_port_of,
    load_average,
    machine_facts,
    namespace_counts,
    quiet_sdk_warnings,
    record_id,
    record_metadata,
    records,
    sdk_grpc_index,
    sdk_rest_index,
    wait_until_idle,
)
from _engine_data import LATENT, RECORDS_PER_COMPONENT, Mixture

if TYPE_CHECKING:
    from collections.abc import Callable

SECTION = "client_query"
TABLE_HEADER = "## Query: our client vs the official SDK 8.x, same engine, data and concurrency"
INDEX_NAME = "client-query"
NAMESPACE = "docs"
TOP_K = 10
DATA_SEED = 20250102
# float32 scores of unit vectors carry about 7 significant digits: exact scores closer than this are ties.
TIE = 1e-5
SEQUENTIAL = "sequential"


@dataclass
class Measure:
    """One path in one mode: per-query latencies (seconds), wall seconds, and recall bookkeeping."""

    path: str
    mode: str
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    hits: int = 0
    ties: int = 0

    def ms(self, q: float) -> float:
        return 1000.0 * float(np.percentile(np.asarray(self.latencies), q))

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.wall

    @property
    def recall(self) -> float:
        return self.hits / (TOP_K * len(self.latencies))


def clustered_rows(count: int, queries: int, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` data rows and ``queries`` query rows of one seeded mixture (unit length, float32)."""
    rng = np.random.default_rng(DATA_SEED)
    mixture = Mixture(rng, max(4, count // RECORDS_PER_COMPONENT), dimension)
    data, _ = mixture.sample(rng, count)
    query_rows, _ = mixture.sample(rng, queries)
    return data, query_rows


class Truth:
    """Exact top-k (float64 scores) of every query, and the check of one response against it."""

    def __init__(self, data: np.ndarray, queries: np.ndarray) -> None:
        self.scores = np.empty((len(queries), TOP_K + 1))
        self.ids: list[set[str]] = []
        for start in range(0, len(queries), 100):
            block = queries[start : start + 100]
            # float32 to shortlist 2k candidates, float64 to rank them exactly.
            shortlist = np.argpartition(-(block @ data.T), 2 * TOP_K, axis=1)[:, : 2 * TOP_K]
            for row, candidates in enumerate(shortlist):
                exact = data[candidates].astype(np.float64) @ block[row].astype(np.float64)
                order = np.argsort(-exact)[: TOP_K + 1]
                self.scores[start + row] = exact[order]
                self.ids.append({record_id(int(i)) for i in candidates[order[:TOP_K]]})
        self.index_of = {record_id(i): i for i in range(len(data))}

    def check(self, measure: Measure, query: int, matches: list[Any]) -> None:
        """Count recall hits and ties; fail on a short answer, wrong metadata or a real miss."""
        if len(matches) != TOP_K:
            raise RuntimeError(f"{measure.path}: query {query} returned {len(matches)} matches, not {TOP_K}")
        ids = [match.id for match in matches]
        for match in matches:
            expected = record_metadata(self.index_of[match.id])
            if dict(match.metadata or {}) != expected:
                raise RuntimeError(f"{measure.path}: {match.id} came back with metadata {match.metadata!r}")
        hits = len(self.ids[query].intersection(ids))
        measure.hits += hits
        if hits < TOP_K:
            # The engine's clustered index is approximate: a miss is recall, reported per path (every
            # client queries the same index, so recall must agree across paths). A miss where the 10th
            # and 11th exact scores tie within float32 rounding is counted as a tie instead.
            kth, next_best = self.scores[query, TOP_K - 1], self.scores[query, TOP_K]
            if kth - next_best <= TIE:
                measure.ties += 1


class Bench:
    """The four clients against one index, the data, the queries and the truth."""

    def __init__(self, engine: Engine, args: argparse.Namespace) -> None:
        from pinecone_rag import PineconeClient  # noqa: PLC0415

        self.args = args
        self.engine = engine
        control_url = engine.url
        self.client = PineconeClient(API_KEY, host=control_url)
        self.client.create_index(INDEX_NAME, dimension=args.dimension, metric="cosine")
        self.ours_grpc = self.client.index(INDEX_NAME)
        self.ours_rest = self.client.index(INDEX_NAME, transport="rest")
        grpc_target = f"127.0.0.1:{grpc_port_of(control_url, INDEX_NAME)}"
        data_host = data_host_of(control_url, INDEX_NAME)
        if grpc_target == data_host:
            raise RuntimeError("the engine did not advertise a direct gRPC port")
        self.sdk_grpc = sdk_grpc_index(control_url, grpc_target)
        self.sdk_rest = sdk_rest_index(control_url, data_host, args.concurrency)
        self.load_seconds = 0.0
        self.build_wait = 0.0  # seconds from the last write until the engine was idle (its index built)

    def close(self) -> None:
        self.sdk_grpc.close()
        self.sdk_rest.close()
        self.client.delete_index(INDEX_NAME)
        self.client.close()

    def load(self, data: np.ndarray, ids: list[str], metadata: list[dict[str, Any]]) -> None:
        """Write the namespace once with our client (untimed for the comparison) and check its count."""
        began = time.perf_counter()
        result = self.ours_grpc.upsert(
            data, NAMESPACE, ids=ids, metadata=metadata, batch_size=500, show_progress=False
        )
        self.load_seconds = time.perf_counter() - began
        self.build_wait = wait_until_idle(self.engine)
        if result.failed or result.upserted_count != len(ids):
            raise RuntimeError(f"loading the namespace failed: {result!r}")
        for label, index in (("our client", self.ours_grpc), ("the SDK's gRPC client", self.sdk_grpc)):
            counts = namespace_counts(index.describe_index_stats())
            if counts != {NAMESPACE: len(ids)}:
                raise RuntimeError(f"describe_index_stats via {label} reports {counts}")

    def callers(self, queries: np.ndarray) -> dict[str, Callable[[int], list[Any]]]:
        """Per path: run query ``i`` and return its matches."""
        lists = queries.tolist()
        options = {"top_k": TOP_K, "namespace": NAMESPACE, "include_metadata": True}

        def ours(index: Any) -> Callable[[int], list[Any]]:
            return lambda i: index.query(queries[i], **options).matches

        def sdk(index: Any) -> Callable[[int], list[Any]]:
            return lambda i: index.query(vector=lists[i], **options).matches

        return {
            OURS_GRPC: ours(self.ours_grpc),
            OURS_REST: ours(self.ours_rest),
            SDK_GRPC: sdk(self.sdk_grpc),
            SDK_REST: sdk(self.sdk_rest),
        }

    def sequential(self, callers: dict[str, Callable[[int], list[Any]]], truth: Truth) -> list[Measure]:
        measures = {path: Measure(path, SEQUENTIAL) for path in PATHS}
        for i in range(self.args.queries):
            for path in PATHS[i % len(PATHS) :] + PATHS[: i % len(PATHS)]:
                began = time.perf_counter()
                matches = callers[path](i)
                elapsed = time.perf_counter() - began
                measures[path].latencies.append(elapsed)
                measures[path].wall += elapsed
                truth.check(measures[path], i, matches)
        return list(measures.values())

    def concurrent(self, callers: dict[str, Callable[[int], list[Any]]], truth: Truth) -> list[Measure]:
        args = self.args
        mode = f"C={args.concurrency}"
        measures = {path: Measure(path, mode) for path in PATHS}

        def timed(path: str, i: int) -> tuple[float, list[Any]]:
            began = time.perf_counter()
            matches = callers[path](i)
            return time.perf_counter() - began, matches

        with ThreadPoolExecutor(args.concurrency, thread_name_prefix="bench-query") as pool:
            for r in range(args.rounds):
                share = range(r * args.queries // args.rounds, (r + 1) * args.queries // args.rounds)
                for path in PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]:
                    began = time.perf_counter()
                    results = list(pool.map(lambda i, p=path: timed(p, i), share))
                    measures[path].wall += time.perf_counter() - began
                    for i, (elapsed, matches) in zip(share, results, strict=True):
                        measures[path].latencies.append(elapsed)
                        truth.check(measures[path], i, matches)
        return list(measures.values())


# --------------------------------------------------------------------------------------------- report
def rows(measures: list[Measure]) -> list[str]:
    reference = {m.mode: m for m in measures if m.path == SDK_GRPC}
    lines = []
    for m in measures:
        ref = reference[m.mode]
        cells = [
            m.path,
            m.mode,
            f"{m.ms(50):.2f}",
            f"{m.ms(99):.2f}",
            fmt_rate(m.qps),
            f"{m.recall:.3f}",
            str(m.ties),
            fmt_ratio(m.qps, ref.qps),
            fmt_ratio(ref.ms(50), m.ms(50)),
            fmt_ratio(ref.ms(99), m.ms(99)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def contention_note(measures: list[Measure], mode: str) -> list[str]:
    """A note when concurrency lowers the engine's throughput (it did on 2 cores: BLAS threads contend)."""
    by_mode = {(m.path, m.mode): m for m in measures}
    sequential, concurrent = by_mode[SDK_GRPC, SEQUENTIAL], by_mode[SDK_GRPC, mode]
    if concurrent.qps >= sequential.qps:
        return []
    rates = f"SDK gRPC: {concurrent.qps:,.0f} vs {sequential.qps:,.0f}"
    return [
        f"- At {mode} the engine answers fewer queries/s than one at a time ({rates}):",
        "  concurrent scans contend inside the engine, for every client alike; compare paths within a mode.",
    ]


def render(
    args: argparse.Namespace, bench: Bench, measures: list[Measure], elapsed: float, load_before: str
) -> str:
    size = f"{args.count:,} x {args.dimension}"
    loaded = args.count / bench.load_seconds
    mode = f"C={args.concurrency}"
    lines = [
        TABLE_HEADER,
        "",
        f"Command: `{command_line()}` (from the repository root).",
        f"Wall time {elapsed:.1f} s; engine {engine_description(args.server)}.",
        "",
        "Machine:",
        "",
        *machine_facts(load_before),
        "",
        (
            f"### top_k={TOP_K}, include_metadata=True: {args.queries:,} queries per path and mode against "
            f"{size} float32 with metadata"
        ),
        "",
        (
            "| path | in flight | p50 ms | p99 ms | queries/s | recall@10 | ties | queries/s vs SDK gRPC "
            "| SDK gRPC p50 / this | SDK gRPC p99 / this |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows(measures),
        "",
        "- Latency is per query: the client call, response parsed. Sequential: one query in flight,",
        f"  paths in rotating order query by query. {mode}: {args.concurrency} threads share one client",
        f"  per path; {args.rounds} rounds, paths in rotating order. Ratios above 1 favour the path over the",
        "  SDK's gRPC client.",
        f"- Every response had {TOP_K} matches carrying the records' own metadata. Recall is against exact",
        f"  numpy search; ties: queries whose 10th and 11th exact scores are closer than {TIE:g}.",
        f"- The namespace was written once with our client (gRPC) in {bench.load_seconds:.1f} s",
        f"  ({loaded:,.0f} records/s), outside the comparison; the queries began once the engine had",
        f"  been idle for 1 s ({bench.build_wait:.1f} s after the last write), so its clustered index",
        f"  answered them all. The data are a Gaussian mixture in a {LATENT}-d subspace",
        "  (`bench/_engine_data.py`), the queries drawn from the same mixture: recall is what the server",
        "  default gives on data shaped like embeddings.",
        *contention_note(measures, mode),
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 5k records, 100 queries")
    parser.add_argument("--count", type=int, default=None, help="records in the namespace (default 100,000)")
    parser.add_argument("--dimension", type=int, default=768)
    parser.add_argument("--queries", type=int, default=None, help="queries per path and mode (default 1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="threads of the concurrent mode")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the concurrent mode (default 5)")
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument("--write", type=Path, default=None, help="write the markdown section to this file")
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = 5_000 if args.quick else 100_000
    if args.queries is None:
        args.queries = 100 if args.quick else 1000
    if args.rounds is None:
        args.rounds = 2 if args.quick else 5
    if args.count <= TOP_K or args.queries < args.rounds or args.concurrency < 2 or args.rounds < 1:
        parser.error("need --count > 10, --queries >= --rounds >= 1 and --concurrency >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_sdk_warnings()
    load_before = load_average()
    began = time.perf_counter()
    data, queries = clustered_rows(args.count, args.queries, args.dimension)
    ids, metadata = records(args.count)
    truth = Truth(data, queries)
    with (
        tempfile.TemporaryDirectory(prefix="bench-client-query-") as tmp,
        engine_process(args.server, Path(tmp)) as engine,
    ):
        bench = Bench(engine, args)
        try:
            bench.load(data, ids, metadata)
            callers = bench.callers(queries)
            for call in callers.values():  # warm-up: connections, code paths, the engine's caches
                for i in range(min(10, args.queries)):
                    call(i)
            measures = bench.sequential(callers, truth)
            print(
                "# sequential: " + ", ".join(f"{m.path} p50 {m.ms(50):.2f} ms" for m in measures),
                file=sys.stderr,
                flush=True,
            )
            measures += bench.concurrent(callers, truth)
        finally:
            bench.close()
    section = render(args, bench, measures, time.perf_counter() - began, load_before)
    emit_section(section, args.write, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The local engine vs FAISS IVF-Flat vs numpy brute force: recall, latency, build, ingest, memory, freshness.

Issue 4's benchmark. Each data set is generated (or loaded) once, and every contender answers the same
queries against it in one run:

* ``ours in-process``: ``IndexEngine(directory, IndexSpec(d, "cosine", "dense"))`` called directly,
  written with ``upsert`` in batches of 1000 (the API's maximum) and, after the last acknowledgement,
  ``wait_until_indexed`` so that queries meet the built index rather than the freshness layer. The sweep
  covers the API's ``scan_factor`` range (0.5 to 4, plus the server default) and ``max_candidates`` caps.
* ``ours gRPC``: ``pinecone-rag serve`` in a subprocess, written and queried through our client over gRPC.
  The client has no ``scan_factor``/``max_candidates`` arguments, so this path runs the server default only.
* ``FAISS IVF-Flat``: ``IndexIVFFlat`` (inner product on unit vectors, i.e. cosine) with ``nlist`` equal to
  the engine's cluster count for the namespace, and ``nprobe`` over the probe counts the engine's planner
  derives from the same ``scan_factor`` grid (FAISS has no ``max_candidates``
  analogue: its ``max_codes`` stops inside a list rather than between whole clusters).
* ``numpy brute force``: ``data @ q`` and ``argpartition``, one query at a time.

Data sets (cosine, L2-normalised float32, seeded):

* ``synthetic-128``: ``--size-128`` (1,000,000) x 128 and ``synthetic-768``: ``--size-768`` (200,000) x 768,
  a mixture of Gaussians (one per 250 records, spreads drawn per component) in a random 24-dimensional
  subspace plus isotropic noise, normalised; queries and freshness probes drawn from the same mixture;
* ``real``: ``/work/shared/data/stdlib-docstrings-minilm`` (3,426 x 384 all-MiniLM-L6-v2 docstring
  embeddings and 1,000 held-out queries) when it exists.

Every record carries metadata. Synthetic: ``{"topic": "t07", "shard": 42}``, where ``topic`` follows the
mixture component (so it is clustered: the records of one topic sit in few clusters) and ``shard`` is the
row number mod 100 (spread over every cluster); each value matches 1% of the records. Real: the docstring's
``source`` and ``module``; the filter picks the module holding closest to 1% of the records.

Ground truth is exact search (numpy, float32, in blocks of queries), for filtered queries over the
matching rows. Latency is per query with one query in flight (``time.perf_counter`` around the call);
queries/s is the inverse of the mean latency. Each series answers up to ``--queries`` queries
(``--brute-queries`` for brute force), stopping early once it has run ``--budget`` seconds and answered at
least ``--min-queries``; the tables give the count. Freshness: a new record is upserted and, from its
acknowledgement, queried (with its own vector, default settings) until it is returned.

Targets (computed per data set, never assumed): recall@10 >= 0.95 in-process at a p50 no more than 2x
FAISS IVF-Flat's best p50 at recall@10 >= 0.95; at >= 1M records, that p50 at least 10x below brute
force's; filtered p50 below unfiltered p50; every fresh record returned by the first query after its ack.

Run (from the repository root)::

    .venv/bin/python bench/engine.py                  # full: 1M x 128, 200k x 768, real; ~15 min on 2 cores
    .venv/bin/python bench/engine.py --quick          # CI smoke: 20k x 128, 5k x 768, real; seconds
    .venv/bin/python bench/engine.py --write bench/RESULTS.md

``--write`` puts the markdown printed to stdout between ``<!-- engine:start -->`` and ``<!-- engine:end -->``
in the given file and the recall/latency plot (``engine_recall_latency.png``) next to it.

The result types, contender labels and targets live in ``_engine_results.py``; the targets table, the
markdown section and the plot are drawn by ``_engine_report.py``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from _common import API_KEY, emit_section, load_average, running_engine
from _engine_data import REAL_DATA, TOP_K, Dataset, prepare_truth, real, synthetic
from _engine_report import plot_outcomes, render
from _engine_results import (
    BRUTE,
    DEFAULT_SETTING,
    FAISS,
    FRESH_TIMEOUT_S,
    OURS,
    OURS_GRPC,
    Build,
    Freshness,
    Limits,
    Outcome,
    Series,
)
from pinecone_rag.errors import ResourceExhaustedError
from pinecone_rag.server.engine import IndexEngine
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.filters import parse_filter
from pinecone_rag.server.kmeans import choose_k
from pinecone_rag.server.planner import probe_count as planner_probe_count
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    from collections.abc import Callable

SECTION = "engine"
PLOT_NAME = "engine_recall_latency.png"
NAMESPACE = "bench"
INDEX_NAME = "engine-bench"
UPSERT_BATCH = 1000
WARM_UP = 50  # queries before each contender's first series (caches, page tables, CPU frequency)
# scan_factor values of the sweep over the API's range, the same grid for both engines (FAISS gets the
# probe counts our planner derives from each); the server default is also measured as its own row.
FACTORS = (0.5, 0.75, 0.875, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)
MAX_CANDIDATES_LIMIT = 100_000  # the API's ceiling


# ------------------------------------------------------------------------------------------- measuring
def measure(
    series: Series,
    call: Callable[[np.ndarray], list[int]],
    queries: np.ndarray,
    truth: list[set[int]],
    limits: Limits,
) -> Series:
    """Answer queries in order until ``limits`` says stop; count recall hits against ``truth``."""
    gc.collect()
    began = time.perf_counter()
    for i in range(min(limits.queries, len(queries))):
        start = time.perf_counter()
        ids = call(queries[i])
        series.latencies.append(time.perf_counter() - start)
        series.hits += len(truth[i].intersection(ids))
        if time.perf_counter() - began > limits.budget and i + 1 >= limits.min_queries:
            break
    label = f"{series.contender} [{series.setting}]"
    print(
        f"#   {label:<58} n={len(series.latencies):>4} recall {series.recall:.3f} "
        f"p50 {series.ms(50):8.2f} ms",
        file=sys.stderr,
        flush=True,
    )
    return series


def rss_bytes(pid: int | None = None) -> int | None:
    """Resident set size of a process (this one by default), from /proc; None where that is missing."""
    try:
        fields = Path(f"/proc/{pid or 'self'}/statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_delta(before: int | None, after: int | None) -> int | None:
    """Growth of the resident set; None when unknown or negative (memory freed from an earlier set)."""
    if before is None or after is None or after < before:
        return None
    return after - before


def child_pids() -> list[int]:
    """This process's children, from /proc (the `pinecone-rag serve` subprocess)."""
    pids: list[int] = []
    for task in Path("/proc/self/task").glob("*"):
        try:
            pids += [int(pid) for pid in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


def probe_count(clusters: int, scan_factor: float | None) -> int:
    """How many clusters the engine probes for an unfiltered query with the default ``EngineConfig``."""
    defaults = EngineConfig()
    return min(
        clusters, planner_probe_count(clusters, scan_factor, defaults.probe_fraction, defaults.min_probe)
    )


def candidate_caps(count: int) -> list[int]:
    """``max_candidates`` values of the sweep: about 5% and 10% of the records, within the API's limits."""
    caps = {
        min(MAX_CANDIDATES_LIMIT, max(TOP_K, count // 20)),
        min(MAX_CANDIDATES_LIMIT, max(TOP_K, count // 10)),
    }
    return sorted(caps)


def fresh_trials(
    contender: str,
    vectors: np.ndarray,
    upsert: Callable[[str, np.ndarray], None],
    query: Callable[[np.ndarray], list[str]],
) -> Freshness:
    """Upsert each vector as a new record, then query it from the ack until it is returned."""
    result = Freshness(contender, trials=len(vectors))
    for t, vector in enumerate(vectors):
        record = f"fresh-{t}"
        upsert(record, vector)
        acked = time.perf_counter()
        asked = 0
        while True:
            asked += 1
            found = record in query(vector)
            elapsed = time.perf_counter() - acked
            if found:
                result.delays.append(elapsed)
                result.queries_needed.append(asked)
                result.first_query += asked == 1
                break
            if elapsed > FRESH_TIMEOUT_S:
                result.missed += 1
                break
    return result


# ------------------------------------------------------------------------------------------ contenders
class InProcess:
    """Our engine called directly."""

    def __init__(self, directory: Path, dimension: int) -> None:
        self.engine = IndexEngine(directory, IndexSpec(dimension, "cosine", "dense"))
        self.throttled_s = 0.0
        self.indexed = False

    def upsert(self, batch: UpsertBatch) -> None:
        # The freshness layer refuses writes while full, until the builder catches up: retry, never drop.
        while True:
            try:
                self.engine.upsert(NAMESPACE, batch)
                return
            except ResourceExhaustedError as exc:
                pause = getattr(exc, "retry_after", None) or 0.05
                self.throttled_s += pause
                time.sleep(pause)

    def load(self, dataset: Dataset) -> tuple[float, float]:
        """Write every record; the seconds until the last ack and from it until the index is built."""
        began = time.perf_counter()
        for start in range(0, dataset.count, UPSERT_BATCH):
            end = min(start + UPSERT_BATCH, dataset.count)
            ids = [str(i) for i in range(start, end)]
            self.upsert(
                UpsertBatch(ids, dataset.data[start:end], [None] * len(ids), dataset.metadata[start:end])
            )
        acked = time.perf_counter()
        self.indexed = self.engine.wait_until_indexed(timeout=1800)
        if not self.indexed:
            print(
                "# !!! NOTE: wait_until_indexed returned False (builder off, or 30 minutes passed): "
                "queries meet the freshness layer",
                file=sys.stderr,
                flush=True,
            )
        return acked - began, time.perf_counter() - acked

    def query(
        self,
        vector: np.ndarray,
        flt: Any = None,
        scan_factor: float | None = None,
        max_candidates: int | None = None,
    ) -> list[str]:
        matches, _ = self.engine.query(
            NAMESPACE,
            top_k=TOP_K,
            vector=vector,
            sparse=None,
            record_id=None,
            flt=flt,
            include_values=False,
            include_metadata=False,
            scan_factor=scan_factor,
            max_candidates=max_candidates,
        )
        return [match.record.id for match in matches]

    def caller(self, **options: Any) -> Callable[[np.ndarray], list[int]]:
        return lambda vector: [int(i) for i in self.query(vector, **options)]


def brute_caller(data: np.ndarray, rows: np.ndarray | None = None) -> Callable[[np.ndarray], list[int]]:
    """Exact search; with ``rows`` (a filter evaluated ahead, like a bitmap index) over those rows only."""

    def call(vector: np.ndarray) -> list[int]:
        source = data if rows is None else data[rows]
        scores = source @ vector
        top = np.argpartition(-scores, TOP_K - 1)[:TOP_K]
        top = top[np.argsort(-scores[top])]
        return (top if rows is None else rows[top]).tolist()

    return call


def faiss_caller(index: Any, nprobe: int) -> Callable[[np.ndarray], list[int]]:
    params = faiss.SearchParametersIVF(nprobe=nprobe)

    def call(vector: np.ndarray) -> list[int]:
        _, found = index.search(vector[None, :], TOP_K, params=params)
        return found[0].tolist()

    return call


# ---------------------------------------------------------------------------------------------- runner
def run_in_process(dataset: Dataset, tmp: Path, sweep: Limits) -> Outcome:
    gc.collect()
    before = rss_bytes()
    ours = InProcess(tmp / f"in-process-{dataset.name}", dataset.dimension)
    try:
        ingest_s, build_s = ours.load(dataset)
        # The last build's files may still be written back to disk: let that finish before timing, so
        # the first series does not share the machine with it (FAISS writes nothing).
        os.sync()
        clusters = ours.engine.cluster_count(NAMESPACE)
        nlist = clusters if clusters > 0 else choose_k(dataset.count)
        outcome = Outcome(dataset, clusters, nlist)
        throttled = f"; {ours.throttled_s:.1f} s throttled by the freshness cap" if ours.throttled_s else ""
        if not ours.indexed:
            throttled += "; **`wait_until_indexed` returned False**"
        probes = "all (no clusters)" if clusters == 0 else None
        for vector in dataset.queries[:WARM_UP]:
            ours.query(vector)
        settings: list[tuple[str, float | None, int | None]] = [(DEFAULT_SETTING, None, None)]
        settings += [(f"scan_factor={factor:g}", factor, None) for factor in FACTORS if factor != 1.0]
        settings += [
            (f"scan_factor=4, max_candidates={cap:,}", 4.0, cap) for cap in candidate_caps(dataset.count)
        ]
        for label, factor, cap in settings:
            planned = probes or str(probe_count(clusters, factor))
            if cap is not None and clusters:
                planned = f"<= {planned}"
            series = Series(OURS, label, planned)
            outcome.sweep.append(
                measure(
                    series,
                    ours.caller(scan_factor=factor, max_candidates=cap),
                    dataset.queries,
                    dataset.truth,
                    sweep,
                )
            )
        # Measured once the unfiltered sweep has run: by then the builder has finished cleaning up after
        # its last publish (which `wait_until_indexed` does not wait for), so this is the steady state.
        gc.collect()
        memory = rss_delta(before, rss_bytes())
        outcome.builds.insert(
            0,
            Build(
                OURS,
                dataset.count / ingest_s,
                build_s,
                memory,
                f"upsert batches of {UPSERT_BATCH}; build = last ack to `wait_until_indexed`; memory after"
                f" the unfiltered queries{throttled}",
            ),
        )
        before_filters = rss_bytes()
        for case in dataset.filters:
            flt = parse_filter(case.raw)
            series = Series(OURS, f"filter {case.label}", probes or "planner")
            # The first query with a filter evaluates it over every record and gathers a selective one's
            # rows (later ones reuse both): timed apart, reported beside p50.
            started = time.perf_counter()
            ours.query(dataset.fresh[0], flt=flt)
            series.first = time.perf_counter() - started
            outcome.filtered.append(
                (case, measure(series, ours.caller(flt=flt), dataset.queries, case.truth, sweep))
            )

        outcome.filter_memory = rss_delta(before_filters, rss_bytes())

        def upsert_one(record: str, vector: np.ndarray) -> None:
            ours.upsert(UpsertBatch([record], vector[None, :], [None], [None]))

        outcome.freshness.append(fresh_trials(OURS, dataset.fresh, upsert_one, ours.query))
    finally:
        ours.engine.destroy()
    return outcome


def run_faiss(outcome: Outcome, sweep: Limits) -> None:
    dataset = outcome.dataset
    gc.collect()
    before = rss_bytes()
    began = time.perf_counter()
    quantizer = faiss.IndexFlatIP(dataset.dimension)
    index = faiss.IndexIVFFlat(quantizer, dataset.dimension, outcome.nlist, faiss.METRIC_INNER_PRODUCT)
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building may use every core, as our builder may
    index.train(dataset.data)
    trained = time.perf_counter()
    index.add(dataset.data)
    added = time.perf_counter()
    # One query in flight runs on one thread anyway; idle OpenMP workers would only spin.
    faiss.omp_set_num_threads(1)
    memory = rss_delta(before, rss_bytes())
    outcome.builds.append(
        Build(
            FAISS,
            dataset.count / (added - trained),
            added - began,
            memory,
            f"nlist={outcome.nlist}; build = train {trained - began:.1f} s + add; ingest = `add` rate",
        )
    )
    probes = sorted({probe_count(outcome.nlist, factor) for factor in FACTORS})
    warm = faiss_caller(index, probes[0])
    for vector in dataset.queries[:WARM_UP]:
        warm(vector)
    for nprobe in probes:
        series = Series(FAISS, f"nprobe={nprobe}", str(nprobe))
        outcome.sweep.append(
            measure(series, faiss_caller(index, nprobe), dataset.queries, dataset.truth, sweep)
        )
    del index, quantizer


def run_brute(outcome: Outcome, limits: Limits) -> None:
    dataset = outcome.dataset
    outcome.builds.append(
        Build(BRUTE, None, 0.0, dataset.data.nbytes, "memory = the float32 matrix it scans")
    )
    exact = measure(
        Series(BRUTE, "exact", "all"), brute_caller(dataset.data), dataset.queries, dataset.truth, limits
    )
    if exact.recall < 0.999:
        raise RuntimeError(f"brute force disagrees with the ground truth: recall {exact.recall:.4f}")
    outcome.sweep.append(exact)
    for case in dataset.filters:
        series = Series(BRUTE, f"filter {case.label}", "matching rows")
        outcome.filtered.append(
            (
                case,
                measure(series, brute_caller(dataset.data, case.rows), dataset.queries, case.truth, limits),
            )
        )


def settle(directory: Path, minimum: float, quiet: float, limit: float = 900.0) -> float:
    """Wait until the server has probably built its index; the seconds waited.

    The client cannot ask whether the builder has caught up, so wait at least ``minimum`` (derived from
    the in-process build of the same data) and then until no file under the server's data directory has
    changed for ``quiet`` seconds.
    """
    began = time.perf_counter()
    time.sleep(minimum)
    last, still_since = None, time.perf_counter()
    while time.perf_counter() - began < limit:
        state = directory_state(directory)
        if state != last:
            last, still_since = state, time.perf_counter()
        elif time.perf_counter() - still_since >= quiet:
            break
        time.sleep(0.25)
    return time.perf_counter() - began


def directory_state(directory: Path) -> tuple[int, int, int]:
    """File count, total size and newest modification time under ``directory``."""
    count = size = newest = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                info = Path(root, name).stat()
            except OSError:
                continue  # removed while walking: the builder is still at work
            count += 1
            size += info.st_size
            newest = max(newest, info.st_mtime_ns)
    return count, size, newest


def run_grpc(
    outcome: Outcome,
    control_url: str,
    server_pid: int | None,
    server_dir: Path,
    settle_s: float,
    quiet: float,
    limits: Limits,
) -> None:
    from pinecone_rag import PineconeClient  # noqa: PLC0415  (keeps the import out of --help)

    dataset = outcome.dataset
    client = PineconeClient(API_KEY, host=control_url)
    before = rss_bytes(server_pid) if server_pid else None
    client.create_index(INDEX_NAME, dimension=dataset.dimension, metric="cosine")
    try:
        index = client.index(INDEX_NAME)
        ids = [str(i) for i in range(dataset.count)]
        began = time.perf_counter()
        result = index.upsert(
            dataset.data, NAMESPACE, ids=ids, metadata=dataset.metadata, show_progress=False
        )
        written, retried = result.upserted_count, 0
        # Failed batches come back to the caller (after the client's own retries); write them again, as
        # a loader would, and count the rounds: a server that keeps refusing fails the run.
        while result.failed and retried < 5:
            retried += 1
            errors = sorted({type(batch.error).__name__ for batch in result.failed})
            print(
                f"# gRPC upsert: {len(result.failed_ids):,} records failed ({errors}); retrying",
                file=sys.stderr,
            )
            time.sleep(2.0)
            rows = [int(i) for i in result.failed_ids]
            result = index.upsert(
                dataset.data[rows],
                NAMESPACE,
                ids=[str(i) for i in rows],
                metadata=[dataset.metadata[i] for i in rows],
                show_progress=False,
            )
            written += result.upserted_count
        ingest_s = time.perf_counter() - began
        if result.failed or written != dataset.count:
            errors = sorted({repr(batch.error)[:200] for batch in result.failed})
            raise RuntimeError(f"upsert over gRPC failed: {written:,} written; errors {errors[:3]}")
        retry_note = f"; {retried} rounds of re-sending failed batches" if retried else ""
        waited = settle(server_dir, settle_s, quiet)
        memory = rss_delta(before, rss_bytes(server_pid) if server_pid else None)
        outcome.builds.append(
            Build(
                OURS_GRPC,
                dataset.count / ingest_s,
                None,
                memory,
                f"client `upsert` (default batching and concurrency){retry_note}; "
                f"then {waited:.1f} s settle wait",
            )
        )

        def query(vector: np.ndarray) -> list[str]:
            return [match.id for match in index.query(vector, top_k=TOP_K, namespace=NAMESPACE).matches]

        for vector in dataset.queries[:WARM_UP]:
            query(vector)
        probes = (
            "all (no clusters)"
            if outcome.clusters_reported == 0
            else str(probe_count(outcome.clusters_reported, None))
        )
        series = Series(OURS_GRPC, DEFAULT_SETTING, probes)
        outcome.sweep.append(
            measure(series, lambda v: [int(i) for i in query(v)], dataset.queries, dataset.truth, limits)
        )

        def upsert_one(record: str, vector: np.ndarray) -> None:
            written = index.upsert(vector[None, :], NAMESPACE, ids=[record], show_progress=False)
            if written.failed:
                raise RuntimeError(f"upserting {record} over gRPC failed")

        outcome.freshness.append(fresh_trials(OURS_GRPC, dataset.fresh, upsert_one, query))
    finally:
        client.delete_index(INDEX_NAME)
        client.close()


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: small sets, few queries")
    parser.add_argument(
        "--datasets", default="synthetic-128,synthetic-768,real", help="comma-separated subset"
    )
    parser.add_argument(
        "--size-128", type=int, default=None, help="records of synthetic-128 (default 1,000,000)"
    )
    parser.add_argument(
        "--size-768", type=int, default=None, help="records of synthetic-768 (default 200,000)"
    )
    parser.add_argument("--queries", type=int, default=None, help="most queries per series (default 500)")
    parser.add_argument(
        "--brute-queries", type=int, default=None, help="most brute-force queries (default 200)"
    )
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds after which a series stops (default 15)"
    )
    parser.add_argument(
        "--min-queries", type=int, default=None, help="queries a series answers at least (default 10)"
    )
    parser.add_argument("--fresh", type=int, default=None, help="freshness trials per path (default 30)")
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads of this process (default 1, as the server)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where the engines write (default: a temp dir)"
    )
    parser.add_argument("--write", type=Path, default=None, help="write the markdown section (and plot) here")
    parser.add_argument(
        "--plot", type=Path, default=None, help=f"plot path (default: {PLOT_NAME} next to --write)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "size_128": 10_000 if quick else 1_000_000,
        "size_768": 5_000 if quick else 200_000,
        "queries": 50 if quick else 500,
        "brute_queries": 50 if quick else 200,
        "budget": 0.15 if quick else 15.0,
        "min_queries": 5 if quick else 10,
        "fresh": 3 if quick else 30,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.datasets = [name.strip() for name in args.datasets.split(",") if name.strip()]
    unknown = set(args.datasets) - {"synthetic-128", "synthetic-768", "real"}
    if unknown or not args.datasets:
        parser.error(f"unknown data sets: {sorted(unknown)}")
    if (
        min(args.size_128, args.size_768) < 100 * TOP_K
        or args.queries < args.min_queries
        or args.min_queries < 1
    ):
        parser.error("need sizes >= 1000 and --queries >= --min-queries >= 1")
    if args.plot is None and args.write is not None:
        args.plot = args.write.parent / PLOT_NAME
    return args


def load_dataset(name: str, args: argparse.Namespace) -> Dataset | None:
    queries = max(args.queries, args.brute_queries)
    if name == "synthetic-128":
        return synthetic(name, args.size_128, 128, queries, args.fresh)
    if name == "synthetic-768":
        return synthetic(name, args.size_768, 768, queries, args.fresh)
    if not REAL_DATA.is_dir():
        print(f"# {REAL_DATA} is missing: skipping the real embeddings", file=sys.stderr)
        return None
    return real(queries, args.fresh)


def server_pid() -> int | None:
    for pid in child_pids():
        try:
            if b"pinecone_rag.cli" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    began = time.perf_counter()
    sweep = Limits(args.queries, args.budget, args.min_queries)
    brute = Limits(args.brute_queries, args.budget, args.min_queries)
    outcomes: list[Outcome] = []
    # The same BLAS thread count as `pinecone-rag serve` (its --blas-threads, default 1), so the
    # in-process engine and brute force run like the server: on 2 shared cores a multi-threaded BLAS
    # call waits for a descheduled sibling thread (a 1 ms matrix-vector product took 15 ms, measured).
    threadpool_limits(limits=args.blas_threads, user_api="blas")
    with (
        tempfile.TemporaryDirectory(prefix="bench-engine-", dir=args.data_dir) as tmp,
        running_engine("process", Path(tmp, "server")) as control_url,
    ):
        pid = server_pid()
        for name in args.datasets:
            dataset = load_dataset(name, args)
            if dataset is None:
                continue
            prepare_truth(dataset)
            print(f"# {name}: {dataset.description}", file=sys.stderr, flush=True)
            outcome = run_in_process(dataset, Path(tmp), sweep)
            if outcome.clusters_reported == 0:
                print(
                    f"# !!! NOTE: the engine reports NO clusters for {name}: it is still brute force; "
                    f"FAISS nlist = choose_k(n) = {outcome.nlist}",
                    file=sys.stderr,
                    flush=True,
                )
            run_faiss(outcome, sweep)
            run_brute(outcome, brute)
            build_s = next(b.build_s for b in outcome.builds if b.contender == OURS) or 0.0
            quiet = 0.5 if args.quick else 2.0
            run_grpc(outcome, control_url, pid, Path(tmp, "server"), 1.5 * build_s, quiet, sweep)
            print(f"# {name} done at {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
            outcomes.append(outcome)
    if not outcomes:
        print("no data set ran", file=sys.stderr)
        return 1
    if args.plot is not None:
        plot_outcomes(outcomes, args.plot)
        print(f"# wrote the plot to {args.plot}", file=sys.stderr)
    section = render(outcomes, time.perf_counter() - began, load_before, args.plot, args.blas_threads)
    emit_section(section, args.write, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
  derives from the same ``scan_factor`` range (a finer grid over it; FAISS has no ``max_candidates``
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
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from _common import (
    API_KEY,
    command_line,
    fmt_rate,
    load_average,
    machine_facts,
    package_version,
    running_engine,
    write_section,
)
from _engine_data import REAL_DATA, TOP_K, Dataset, FilterCase, prepare_truth, real, synthetic
from pinecone_rag.errors import ResourceExhaustedError
from pinecone_rag.server.engine import IndexEngine
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.filters import parse_filter
from pinecone_rag.server.kmeans import choose_k
from pinecone_rag.server.records import IndexSpec, UpsertBatch

if TYPE_CHECKING:
    from collections.abc import Callable

SECTION = "engine"
TABLE_HEADER = "## Engine: our index vs FAISS IVF-Flat vs numpy brute force, same data and queries"
PLOT_NAME = "engine_recall_latency.png"
NAMESPACE = "bench"
INDEX_NAME = "engine-bench"
TARGET_RECALL = 0.95
TARGET_FAISS_RATIO = 2.0
TARGET_BRUTE_SPEEDUP = 10.0
BRUTE_TARGET_MIN_RECORDS = 1_000_000
UPSERT_BATCH = 1000
WARM_UP = 5
FRESH_TIMEOUT_S = 10.0
# scan_factor values of the sweep: the API's range; the server default is measured as its own row.
OUR_FACTORS = (0.5, 1.5, 2.0, 3.0, 4.0)
# FAISS gets a finer grid over the same range: its fastest setting at recall 0.95, the reference of the
# 2x target, is then not overestimated by a coarse grid.
FAISS_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
MAX_CANDIDATES_LIMIT = 100_000  # the API's ceiling
OURS = "ours in-process"
OURS_GRPC = "ours gRPC"
FAISS = "FAISS IVF-Flat"
BRUTE = "numpy brute force"
DEFAULT_SETTING = "server default"
SWEEP_HEADER = (
    "| contender | setting | clusters probed | queries | recall@10 | p50 ms | p99 ms | queries/s "
    "| p50 / FAISS@0.95 p50 | brute p50 / p50 |"
)
FILTER_HEADER = (
    "| filter | matching records | contender | first query ms | queries | recall@10 | p50 ms | p99 ms "
    "| unfiltered p50 ms | filtered / unfiltered |"
)
FRESH_HEADER = (
    "| freshness path | trials | returned by the first query | never returned "
    "| ack -> returned p50 ms | max ms | most queries needed |"
)


# ------------------------------------------------------------------------------------------- measuring
@dataclass
class Series:
    """One contender at one setting: per-query latencies (seconds) and recall hits."""

    contender: str
    setting: str
    probes: str
    latencies: list[float] = field(default_factory=list)
    hits: int = 0
    first: float | None = None
    """Seconds of a first, untimed-in-the-series query (filters: evaluating the filter, copying vectors)."""

    def ms(self, q: float) -> float:
        return 1000.0 * float(np.percentile(np.asarray(self.latencies), q))

    @property
    def qps(self) -> float:
        return len(self.latencies) / sum(self.latencies)

    @property
    def recall(self) -> float:
        return self.hits / (TOP_K * len(self.latencies))


@dataclass
class Limits:
    queries: int
    budget: float
    min_queries: int


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
    """How many clusters the engine probes for an unfiltered query (``planner.plan_query``'s rule with
    the engine's default ``EngineConfig``)."""
    defaults = EngineConfig()
    base = max(defaults.min_probe, math.ceil(defaults.probe_fraction * clusters))
    probe = base if scan_factor is None else max(1, math.ceil(base * scan_factor))
    return min(probe, clusters)


def candidate_caps(count: int) -> list[int]:
    """``max_candidates`` values of the sweep: about 5% and 10% of the records, within the API's limits."""
    caps = {
        min(MAX_CANDIDATES_LIMIT, max(TOP_K, count // 20)),
        min(MAX_CANDIDATES_LIMIT, max(TOP_K, count // 10)),
    }
    return sorted(caps)


@dataclass
class Build:
    """How one contender took in a data set."""

    contender: str
    ingest_rate: float | None
    build_s: float | None
    memory: int | None
    note: str


@dataclass
class Freshness:
    contender: str
    first_query: int = 0
    trials: int = 0
    delays: list[float] = field(default_factory=list)
    queries_needed: list[int] = field(default_factory=list)
    missed: int = 0


@dataclass
class Outcome:
    """Everything measured on one data set."""

    dataset: Dataset
    clusters_reported: int
    nlist: int
    sweep: list[Series] = field(default_factory=list)
    filtered: list[tuple[FilterCase, Series]] = field(default_factory=list)
    builds: list[Build] = field(default_factory=list)
    freshness: list[Freshness] = field(default_factory=list)
    filter_memory: int | None = None

    def series(self, contender: str) -> list[Series]:
        return [s for s in self.sweep if s.contender == contender]


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
        gc.collect()
        memory = rss_delta(before, rss_bytes())
        clusters = ours.engine.cluster_count(NAMESPACE)
        nlist = clusters if clusters > 0 else choose_k(dataset.count)
        outcome = Outcome(dataset, clusters, nlist)
        throttled = f"; {ours.throttled_s:.1f} s throttled by the freshness cap" if ours.throttled_s else ""
        if not ours.indexed:
            throttled += "; **`wait_until_indexed` returned False**"
        outcome.builds.append(
            Build(
                OURS,
                dataset.count / ingest_s,
                build_s,
                memory,
                f"upsert batches of {UPSERT_BATCH}; build = last ack to `wait_until_indexed`{throttled}",
            )
        )
        probes = "all (no clusters)" if clusters == 0 else None
        for vector in dataset.queries[:WARM_UP]:
            ours.query(vector)
        settings: list[tuple[str, float | None, int | None]] = [(DEFAULT_SETTING, None, None)]
        settings += [(f"scan_factor={factor:g}", factor, None) for factor in OUR_FACTORS]
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
        before_filters = rss_bytes()
        for case in dataset.filters:
            flt = parse_filter(case.raw)
            series = Series(OURS, f"filter {case.label}", probes or "planner")
            # The first query with a filter evaluates it over every record (later ones reuse that), and
            # the first selective one copies the vectors into memory: timed apart, reported beside p50.
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
    probes = sorted({probe_count(outcome.nlist, factor) for factor in FAISS_FACTORS})
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


# ---------------------------------------------------------------------------------------------- report
@dataclass
class Target:
    dataset: str
    target: str
    measured: str
    verdict: str


def best_at(series: list[Series], recall: float) -> Series | None:
    """The fastest (p50) series reaching ``recall``."""
    reaching = [s for s in series if s.recall >= recall]
    return min(reaching, key=lambda s: s.ms(50)) if reaching else None


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def targets(outcome: Outcome) -> list[Target]:
    name = outcome.dataset.name
    ours, faiss_best = (
        best_at(outcome.series(OURS), TARGET_RECALL),
        best_at(outcome.series(FAISS), TARGET_RECALL),
    )
    brute = outcome.series(BRUTE)[0]
    rows: list[Target] = []
    if ours is None:
        highest = max(s.recall for s in outcome.series(OURS))
        rows.append(Target(name, f"recall@10 >= {TARGET_RECALL} in-process", f"best {highest:.3f}", "FAIL"))
    else:
        rows.append(
            Target(
                name,
                f"recall@10 >= {TARGET_RECALL} in-process",
                f"{ours.recall:.3f} at {ours.setting}",
                "pass",
            )
        )
    faiss_target = f"p50 <= {TARGET_FAISS_RATIO:g}x FAISS IVF-Flat p50, both at recall@10 >= {TARGET_RECALL}"
    if ours is None or faiss_best is None:
        missing = "ours" if ours is None else "FAISS"
        rows.append(
            Target(
                name,
                faiss_target,
                f"{missing} never reached {TARGET_RECALL}",
                "FAIL" if ours is None else "n/a",
            )
        )
    else:
        ratio = ours.ms(50) / faiss_best.ms(50)
        measured = f"{ours.ms(50):.2f} ms vs {faiss_best.ms(50):.2f} ms ({faiss_best.setting}): {ratio:.1f}x"
        rows.append(Target(name, faiss_target, measured, verdict(ratio <= TARGET_FAISS_RATIO)))
    brute_target = f">= {TARGET_BRUTE_SPEEDUP:g}x faster than brute force (p50), at >= 1M records"
    if ours is None:
        rows.append(Target(name, brute_target, "no in-process setting reached the recall target", "FAIL"))
    else:
        speedup = brute.ms(50) / ours.ms(50)
        measured = f"{brute.ms(50):.2f} ms / {ours.ms(50):.2f} ms = {speedup:.1f}x"
        applies = outcome.dataset.count >= BRUTE_TARGET_MIN_RECORDS
        rows.append(
            Target(
                name, brute_target, measured, verdict(speedup >= TARGET_BRUTE_SPEEDUP) if applies else "info"
            )
        )
    unfiltered = next(s for s in outcome.series(OURS) if s.setting == DEFAULT_SETTING)
    for case, series in outcome.filtered:
        if series.contender != OURS:
            continue
        measured = (
            f"{series.ms(50):.2f} ms vs {unfiltered.ms(50):.2f} ms unfiltered (recall {series.recall:.3f})"
        )
        rows.append(
            Target(
                name, f"filtered faster: {case.label}", measured, verdict(series.ms(50) < unfiltered.ms(50))
            )
        )
    for fresh in outcome.freshness:
        measured = f"{fresh.first_query} of {fresh.trials} on the first query"
        if fresh.missed:
            measured += f", {fresh.missed} never within {FRESH_TIMEOUT_S:g} s"
        rows.append(
            Target(
                name,
                f"fresh on the next query ({fresh.contender})",
                measured,
                verdict(fresh.first_query == fresh.trials),
            )
        )
    return rows


def fmt_mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f}"


def sweep_rows(outcome: Outcome) -> list[str]:
    faiss_best = best_at(outcome.series(FAISS), TARGET_RECALL)
    brute = outcome.series(BRUTE)[0]
    lines = []
    for s in outcome.sweep:
        versus_faiss = f"{s.ms(50) / faiss_best.ms(50):.2f}" if faiss_best is not None else "n/a"
        cells = [
            s.contender,
            s.setting,
            s.probes,
            str(len(s.latencies)),
            f"{s.recall:.3f}",
            f"{s.ms(50):.2f}",
            f"{s.ms(99):.2f}",
            fmt_rate(s.qps),
            versus_faiss,
            f"{brute.ms(50) / s.ms(50):.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def build_rows(outcome: Outcome) -> list[str]:
    lines = []
    for b in outcome.builds:
        build = "n/a" if b.build_s is None else f"{b.build_s:.1f}"
        lines.append(
            f"| {b.contender} | {fmt_rate(b.ingest_rate)} | {build} | {fmt_mb(b.memory)} | {b.note} |"
        )
    return lines


def filter_rows(outcome: Outcome) -> list[str]:
    reference = {
        OURS: next(s for s in outcome.series(OURS) if s.setting == DEFAULT_SETTING),
        BRUTE: outcome.series(BRUTE)[0],
    }
    lines = []
    for case, s in outcome.filtered:
        base = reference[s.contender]
        share = f"{len(case.rows):,} ({len(case.rows) / outcome.dataset.count:.1%})"
        cells = [
            f"`{json.dumps(case.raw)}`: {case.label}",
            share,
            s.contender,
            "" if s.first is None else f"{1000 * s.first:.1f}",
            str(len(s.latencies)),
            f"{s.recall:.3f}",
            f"{s.ms(50):.2f}",
            f"{s.ms(99):.2f}",
            f"{base.ms(50):.2f}",
            f"{s.ms(50) / base.ms(50):.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def freshness_rows(outcome: Outcome) -> list[str]:
    lines = []
    for f in outcome.freshness:
        p50 = f"{1000 * float(np.median(f.delays)):.2f}" if f.delays else "n/a"
        worst = f"{1000 * max(f.delays):.2f}" if f.delays else "n/a"
        most = str(max(f.queries_needed)) if f.queries_needed else "n/a"
        lines.append(
            f"| {f.contender} | {f.trials} | {f.first_query} | {f.missed} | {p50} | {worst} | {most} |"
        )
    return lines


def no_cluster_note(outcomes: list[Outcome]) -> list[str]:
    flat = [o.dataset.name for o in outcomes if o.clusters_reported == 0]
    if not flat:
        return []
    return [
        f"> **NOTE: the engine reported no clusters for {', '.join(flat)}.** It answered from its freshness",
        "> layer by brute force: `scan_factor` and `max_candidates` had no effect, and FAISS's `nlist` came",
        "> from `kmeans.choose_k(n)`, the rule the index builder uses to pick its cluster count.",
        "",
    ]


def render(
    outcomes: list[Outcome], elapsed: float, load_before: str, plot: Path | None, blas_threads: int
) -> str:
    lines = [
        TABLE_HEADER,
        "",
        f"Command: `{command_line()}` (from the repository root).",
        f"Wall time {elapsed:.1f} s. One query in flight; top_k={TOP_K}, cosine, no values or metadata",
        "returned.",
        "",
        "Machine:",
        "",
        *machine_facts(load_before),
        f"- {cpu_model()}; faiss-cpu {package_version('faiss-cpu')}",
        f"- BLAS threads: {blas_threads} in this process, 1 in the server (`pinecone-rag serve` default);",
        "  FAISS queries on one OpenMP thread, its build on every core",
        "",
        *no_cluster_note(outcomes),
    ]
    if plot is not None:
        lines += [f"![recall@10 vs p50 latency]({plot.name})", ""]
    lines += [
        "### Targets",
        "",
        "| data set | target | measured | verdict |",
        "|---|---|---|---|",
        *(f"| {t.dataset} | {t.target} | {t.measured} | {t.verdict} |" for o in outcomes for t in targets(o)),
        "",
        "- The FAISS comparison takes each side's fastest setting with recall@10 >= 0.95; brute force is",
        "  compared with that same in-process setting. `info`: the 10x target applies at >= 1M records only.",
        "- Filtered vs unfiltered: the same queries at the server default, in-process. A filter matching at",
        "  most `exact_filter_records` (50,000) records is answered exactly from the rows it selects; the",
        "  first query with a filter evaluates it over every record (remembered per filter until the next",
        "  publish) and the first selective one copies the vectors into one array: see `first query ms`.",
        "",
    ]
    for outcome in outcomes:
        dataset = outcome.dataset
        filter_mb = fmt_mb(outcome.filter_memory)
        source = (
            "reported by the engine"
            if outcome.clusters_reported
            else "`choose_k(n)`: the engine reported none"
        )
        lines += [
            f"### {dataset.name}: {dataset.description}",
            "",
            f"Clusters: {outcome.clusters_reported} reported by the engine; FAISS `nlist` = {outcome.nlist}",
            f"({source}).",
            f"{len(dataset.queries):,} queries available per series.",
            "",
            SWEEP_HEADER,
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *sweep_rows(outcome),
            "",
            "| contender | ingest records/s | build s | memory MB | how |",
            "|---|---:|---:|---:|---|",
            *build_rows(outcome),
            "",
            FILTER_HEADER,
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
            *filter_rows(outcome),
            "",
            f"Resident set growth over the filtered queries (ours in-process): {filter_mb} MB.",
            "",
            FRESH_HEADER,
            "|---|---:|---:|---:|---:|---:|---:|",
            *freshness_rows(outcome),
            "",
        ]
    lines += [
        "- Clusters probed: the planner's rule (`max(min_probe, ceil(probe_fraction x clusters))` times",
        "  `scan_factor`), for FAISS its `nprobe`; `<=` where `max_candidates` may cut it.",
        "- Memory: growth of the resident set (this process, or the server's for gRPC) while the contender",
        "  took the data in; allocator reuse makes it approximate.",
        "- Series run one after another (not interleaved), on a machine other jobs share: compare ratios.",
        "- Ours gRPC runs the server default only: our client does not send `scanFactor`/`maxCandidates`.",
    ]
    return "\n".join(lines) + "\n"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU model unknown"


def plot_outcomes(outcomes: list[Outcome], path: Path) -> None:
    import matplotlib as mpl  # noqa: PLC0415  (only --write/--plot draw)

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(1, len(outcomes), figsize=(5.5 * len(outcomes), 4.5), squeeze=False)
    styles = {
        OURS: ("o-", "tab:blue"),
        FAISS: ("s-", "tab:orange"),
        OURS_GRPC: ("D", "tab:green"),
        BRUTE: ("x", "tab:red"),
    }
    for ax, outcome in zip(axes[0], outcomes, strict=True):
        for contender, (marker, colour) in styles.items():
            points = sorted((s.recall, s.ms(50)) for s in outcome.series(contender))
            if points:
                recall, p50 = zip(*points, strict=True)
                ax.plot(recall, p50, marker, color=colour, label=contender, markersize=6)
        ax.axvline(TARGET_RECALL, color="grey", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("p50 latency, ms (log)")
        ax.set_title(f"{outcome.dataset.name} ({outcome.dataset.count:,} x {outcome.dataset.dimension})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
    print(section)
    if args.write is not None:
        write_section(args.write, SECTION, section)
        print(f"# wrote the section to {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

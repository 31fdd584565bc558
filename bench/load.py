"""Load test: N concurrent writers and N readers against one index, then exact checks and leak counts.

One ``pinecone-rag serve`` subprocess (port 0, a temporary data dir), one dense index (``--dimension`` 64,
cosine). For N in ``--levels`` (8 and 32), for ``--seconds`` (30; ``--quick`` 5) each:

* N writer threads call our client's gRPC ``index.upsert`` with small batches (``--batch`` 20 records,
  one request each) of seeded random unit vectors, ids unique per writer (``w3-n8-000017``), metadata
  ``{"w": writer}``, all into namespace ``load``;
* N reader threads call ``index.query`` with random unit vectors, ``top_k`` 10, every other one with the
  filter ``{"w": <random writer>}`` (its matches must all belong to that writer).

Every call is timed (p50 / p99 per operation) and any exception, failed batch or wrong filtered match is
an error. Back-pressure (RESOURCE_EXHAUSTED with ``grpc-retry-pushback-ms``) is absorbed by our client's
retries and is not an error; what it costs shows up in the latencies.

Afterwards: ``describe_index_stats`` must count exactly the acknowledged records; a sample of acknowledged
ids is fetched and compared exactly (float32 values, metadata); for another sample, a query with the
record's own vector (``top_k`` 1, filter ``{"w": writer}``, ``scan_factor`` 4) must return that id with a
score of about 1. The server's peak RSS (``VmHWM``), open file descriptors and threads are read from
``/proc`` before the load (after a short warm-up at the highest N, so lazily grown pools are counted)
and after each level, once the load's client is closed and the server has settled (up to 10 s). More
than a small slack of growth is a leak. The script exits non-zero on any error, mismatch or leak.

Run (from the repository root)::

    .venv/bin/python bench/load.py                         # 30 s per level, N = 8 and 32
    .venv/bin/python bench/load.py --quick                 # CI smoke: 5 s per level
    .venv/bin/python bench/load.py --write bench/RESULTS.md

The markdown printed to stdout is also written (``--write``) between ``<!-- load:start -->`` and
``<!-- load:end -->`` in the given file, leaving the rest of the file alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from _common import (
    API_KEY,
    SEED,
    command_line,
    emit_section,
    engine_description,
    load_average,
    machine_facts,
    unit_rows,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

SECTION = "load"
TABLE_HEADER = "## Load: N concurrent writers and N readers on one index"
INDEX_NAME = "load"
NAMESPACE = "load"
WARMUP_NAMESPACE = "warmup"
FD_SLACK = 8
THREAD_SLACK = 4
SETTLE_SECONDS = 10.0
MAX_ERRORS_SHOWN = 5


# ---------------------------------------------------------------------------------------------- server
@contextlib.contextmanager
def serve(data_dir: Path) -> Iterator[tuple[str, int]]:
    """``pinecone-rag serve`` as a subprocess, as ``bench/_common.running_engine`` starts it: (url, pid)."""
    command = [sys.executable, "-m", "pinecone_rag.cli", "serve", "--data-dir", str(data_dir)]
    command += ["--port", "0", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r" on (http://\S+)", line)
        if match is None:
            raise RuntimeError(f"`pinecone-rag serve` did not report its URL: {line!r}")
        yield match.group(1), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@dataclass(frozen=True)
class Resources:
    """What ``/proc`` says about the server process."""

    fds: int
    """Open descriptors other than mapped cluster files: what a leak would grow."""
    threads: int
    rss_mb: float
    peak_rss_mb: float
    mapped: int = 0
    """Descriptors of cluster files the engine's cache keeps mapped (bounded by its budget, by design)."""


def resources(pid: int) -> Resources:
    status: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()

    def mb(key: str) -> float:
        return int(status[key].split()[0]) / 1024  # kB

    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            targets.append(str(fd.readlink()))
    mapped = sum(1 for target in targets if f"{os.sep}blobs{os.sep}" in target)
    return Resources(
        fds=len(targets) - mapped,
        mapped=mapped,
        threads=int(status["Threads"]),
        rss_mb=mb("VmRSS"),
        peak_rss_mb=mb("VmHWM"),
    )


def settled(pid: int, baseline: Resources) -> tuple[Resources, float]:
    """Resources once threads and fds are back within slack of ``baseline`` (or after SETTLE_SECONDS)."""
    began = time.perf_counter()
    while True:
        now = resources(pid)
        within = now.threads <= baseline.threads + THREAD_SLACK and now.fds <= baseline.fds + FD_SLACK
        waited = time.perf_counter() - began
        if within or waited >= SETTLE_SECONDS:
            return now, waited
        time.sleep(0.25)


# ------------------------------------------------------------------------------------------------ load
class PushbackCounter:
    """Counts RESOURCE_EXHAUSTED answers our gRPC transport sees (and retries); observation only."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def install(self) -> None:
        import grpc  # noqa: PLC0415

        from pinecone_rag.client import transport  # noqa: PLC0415

        translate = transport.translate_rpc_error

        def counting(error: Any) -> Any:
            if hasattr(error, "code") and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                with self._lock:
                    self.count += 1
            return translate(error)

        transport.translate_rpc_error = counting  # type: ignore[assignment]

    def take(self) -> int:
        with self._lock:
            count, self.count = self.count, 0
        return count


PUSHBACKS = PushbackCounter()


@dataclass
class Written:
    """One writer's acknowledged records."""

    writer: int
    ids: list[str] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)


@dataclass
class Level:
    """One N: what ran, how long each call took, what went wrong."""

    n: int
    namespace: str = NAMESPACE
    seconds: float = 0.0
    write_latencies: list[float] = field(default_factory=list)
    read_latencies: list[float] = field(default_factory=list)
    filtered_reads: int = 0
    records: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    written: list[Written] = field(default_factory=list)
    pushbacks: int = 0
    after: Resources | None = None
    settle_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, message: str) -> None:
        with self.lock:
            self.error_count += 1
            if len(self.errors) < MAX_ERRORS_SHOWN:
                self.errors.append(message)


def record_ids(writer: int, n: int, start: int, count: int) -> list[str]:
    return [f"w{writer}-n{n}-{i:06d}" for i in range(start, start + count)]


def writer_loop(index: Any, level: Level, writer: int, batch: int, dim: int, deadline: float) -> None:
    rng = np.random.default_rng([SEED, level.n, writer])
    written = level.written[writer]
    latencies: list[float] = []
    seq = 0
    while time.perf_counter() < deadline:
        rows = unit_rows(rng, batch, dim)
        ids = record_ids(writer, level.n, seq, batch)
        seq += batch
        began = time.perf_counter()
        try:
            result = index.upsert(
                rows,
                level.namespace,
                ids=ids,
                metadata=[{"w": writer} for _ in ids],
                max_concurrency=1,
                show_progress=False,
            )
        except Exception as exc:  # any exception is an error of the run
            level.error(f"writer {writer}: {exc!r}")
            continue
        latencies.append(time.perf_counter() - began)
        if result.failed or result.upserted_count != batch:
            detail = repr(result.failed[0].error) if result.failed else f"count {result.upserted_count}"
            level.error(f"writer {writer}: batch not acknowledged: {detail}")
            continue
        written.ids += ids
        written.rows.append(rows)
    with level.lock:
        level.write_latencies += latencies


def reader_loop(index: Any, level: Level, reader: int, dim: int, deadline: float) -> None:
    rng = np.random.default_rng([SEED, level.n, 1000 + reader])
    pick = random.Random(SEED * 1000 + level.n * 100 + reader)
    latencies: list[float] = []
    filtered = 0
    i = 0
    while time.perf_counter() < deadline:
        vector = unit_rows(rng, 1, dim)[0]
        writer = pick.randrange(level.n)
        query_filter = {"w": writer} if i % 2 else None
        i += 1
        began = time.perf_counter()
        try:
            response = index.query(vector, top_k=10, namespace=level.namespace, filter=query_filter)
        except Exception as exc:
            level.error(f"reader {reader}: {exc!r}")
            continue
        latencies.append(time.perf_counter() - began)
        if len(response.matches) > 10:
            level.error(f"reader {reader}: {len(response.matches)} matches for top_k 10")
        if query_filter is not None:
            filtered += 1
            strays = [m.id for m in response.matches if not m.id.startswith(f"w{writer}-")]
            if strays:
                level.error(f"reader {reader}: filter {query_filter} matched {strays[:3]}")
    with level.lock:
        level.read_latencies += latencies
        level.filtered_reads += filtered


def run_level(client: Any, level: Level, args: argparse.Namespace) -> None:
    """N writers and N readers on one fresh client of the index, for ``seconds``; the client is closed."""
    index = client.index(INDEX_NAME)
    level.written = [Written(w) for w in range(level.n)]
    try:
        deadline = time.perf_counter() + args.seconds
        threads = [
            threading.Thread(
                target=writer_loop, args=(index, level, w, args.batch, args.dimension, deadline), daemon=True
            )
            for w in range(level.n)
        ] + [
            threading.Thread(
                target=reader_loop, args=(index, level, r, args.dimension, deadline), daemon=True
            )
            for r in range(level.n)
        ]
        PUSHBACKS.take()
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.seconds + 300)
            if thread.is_alive():
                level.error(f"{thread.name} still running {args.seconds + 300:.0f} s after the deadline")
        level.seconds = time.perf_counter() - began
        level.pushbacks = PUSHBACKS.take()
        level.records = sum(len(w.ids) for w in level.written)
    finally:
        index.close()


# ----------------------------------------------------------------------------------------------- check
@dataclass
class Checks:
    """The exact checks after the load."""

    expected: int = 0
    counted: int = 0
    count_wait: float = 0.0
    fetched: int = 0
    fetch_mismatches: int = 0
    self_queries: int = 0
    self_mismatches: int = 0
    problems: list[str] = field(default_factory=list)


def check(index: Any, levels: list[Level], warmup_count: int, args: argparse.Namespace) -> Checks:
    checks = Checks(expected=sum(level.records for level in levels))
    began = time.perf_counter()
    while True:
        stats = index.describe_index_stats()
        counts = {name: int(summary.vector_count) for name, summary in stats.namespaces.items()}
        checks.counted = counts.get(NAMESPACE, 0)
        if counts == {NAMESPACE: checks.expected, WARMUP_NAMESPACE: warmup_count}:
            break
        if time.perf_counter() - began > SETTLE_SECONDS:
            checks.problems.append(
                f"describe_index_stats counts {counts}, acknowledged "
                f"{ {NAMESPACE: checks.expected, WARMUP_NAMESPACE: warmup_count} }"
            )
            break
        time.sleep(0.25)
    checks.count_wait = time.perf_counter() - began

    acknowledged: list[tuple[str, np.ndarray, int]] = []
    for level in levels:
        for written in level.written:
            rows = np.concatenate(written.rows) if written.rows else np.empty((0, args.dimension), np.float32)
            acknowledged += [(rid, rows[i], written.writer) for i, rid in enumerate(written.ids)]
    sampler = random.Random(SEED)
    sample = sampler.sample(acknowledged, min(args.fetch_sample, len(acknowledged)))
    for start in range(0, len(sample), 100):
        chunk = sample[start : start + 100]
        fetched = index.fetch([rid for rid, _, _ in chunk], NAMESPACE).vectors
        for rid, row, writer in chunk:
            checks.fetched += 1
            got = fetched.get(rid)
            if got is None or not np.array_equal(np.asarray(got.values, np.float32), row):
                checks.fetch_mismatches += 1
                checks.problems.append(f"fetch {rid}: values differ or missing")
            elif got.metadata != {"w": writer}:
                checks.fetch_mismatches += 1
                checks.problems.append(f"fetch {rid}: metadata {got.metadata}")

    for rid, row, writer in sampler.sample(acknowledged, min(args.query_sample, len(acknowledged))):
        checks.self_queries += 1
        response = index.query(row, top_k=1, namespace=NAMESPACE, filter={"w": writer}, scan_factor=4)
        first = response.matches[0] if response.matches else None
        if first is None or first.id != rid or abs(first.score - 1.0) > 1e-4:
            checks.self_mismatches += 1
            found = "nothing" if first is None else f"{first.id} ({first.score:.6f})"
            checks.problems.append(f"query with the vector of {rid}: got {found}")
    return checks


# ---------------------------------------------------------------------------------------------- report
def ms(values: list[float], q: float) -> str:
    return "n/a" if not values else f"{1000.0 * float(np.percentile(np.asarray(values), q)):.1f}"


def resource_row(when: str, r: Resources, settle: str) -> str:
    return (
        f"| {when} | {r.fds} | {r.mapped} | {r.threads} | {r.rss_mb:.0f} | {r.peak_rss_mb:.0f} | {settle} |"
    )


def render(
    args: argparse.Namespace,
    levels: list[Level],
    checks: Checks,
    baseline: Resources,
    elapsed: float,
    load_before: str,
) -> str:
    rows = []
    for level in levels:
        assert level.after is not None
        writes, reads = len(level.write_latencies), len(level.read_latencies)
        cells = [
            str(level.n),
            f"{level.seconds:.1f}",
            f"{writes:,}",
            f"{writes / level.seconds:,.0f}",
            f"{level.records / level.seconds:,.0f}",
            ms(level.write_latencies, 50),
            ms(level.write_latencies, 99),
            f"{reads:,} ({level.filtered_reads:,} filtered)",
            f"{reads / level.seconds:,.0f}",
            ms(level.read_latencies, 50),
            ms(level.read_latencies, 99),
            f"{level.pushbacks:,}",
            str(level.error_count),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    resource_rows = [resource_row("before the load (after warm-up)", baseline, "")]
    for level in levels:
        assert level.after is not None
        resource_rows.append(
            resource_row(f"after N={level.n}, settled", level.after, f"{level.settle_seconds:.1f} s")
        )
    verdict = "**pass**" if ok(levels, checks, baseline) else "**FAIL**"
    problems = [f"- {p}" for level in levels for p in level.errors] + [f"- {p}" for p in checks.problems[:10]]
    header = (
        "| N | seconds | upserts | upserts/s | records/s | upsert p50 ms | upsert p99 ms | queries "
        "| queries/s | query p50 ms | query p99 ms | pushbacks absorbed | errors |"
    )
    count_row = (
        f"| describe_index_stats count vs acknowledged records | {checks.counted:,} / {checks.expected:,}"
        f" (settled in {checks.count_wait:.1f} s) |"
    )
    fetch_row = (
        "| fetch of acknowledged ids: values (float32) and metadata equal | "
        f"{checks.fetched - checks.fetch_mismatches:,} / {checks.fetched:,} |"
    )
    query_row = (
        '| query with the record\'s own vector (top_k 1, filter `{"w": writer}`, scan_factor 4) returns it '
        f"with score 1 | {checks.self_queries - checks.self_mismatches:,} / {checks.self_queries:,} |"
    )
    slack = (
        "  load's client is closed and the counts are polled for up to 10 s; growth beyond "
        f"{FD_SLACK} fds or {THREAD_SLACK} threads is a leak. Mapped cluster files are counted apart: the "
        "engine's cache keeps them open on purpose, bounded by its byte budget and half the open files "
        "limit."
    )
    lines = [
        TABLE_HEADER,
        "",
        f"Command: `{command_line()}` (from the repository root).",
        f"Wall time {elapsed:.1f} s; engine {engine_description('process')}. Result: {verdict}.",
        "",
        "Machine:",
        "",
        *machine_facts(load_before),
        "",
        f"### Throughput and latency, {args.seconds:g} s per N, dimension {args.dimension}, cosine",
        "",
        header,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"- N writers (our `PineconeClient`, gRPC, `index.upsert` of {args.batch} records per request, ids",
        '  unique per writer, metadata `{"w": writer}`) and N readers (`index.query`, random unit vectors,',
        '  top_k 10, every other one filtered on `{"w": writer}`) share one client per N.',
        "- Any exception, failed batch or filtered match of another writer counts as an error. Back-pressure",
        "  (RESOURCE_EXHAUSTED with `grpc-retry-pushback-ms`) is retried by our client and is part of the",
        '  latencies, not an error; "pushbacks absorbed" counts those answers.',
        "",
        "### Afterwards, exactly",
        "",
        "| check | result |",
        "|---|---|",
        count_row,
        fetch_row,
        query_row,
        "",
        "### Server process (`/proc/<pid>`)",
        "",
        "| when | open fds | mapped cluster files | threads | RSS MB | peak RSS MB (VmHWM) | settled after |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *resource_rows,
        "",
        f"- The baseline is taken after a {args.warmup_seconds:g} s warm-up at N={max(args.levels)} (its own",
        "  client, closed), so thread pools the server grows lazily are already counted. After each N the",
        slack,
    ]
    if problems:
        lines += ["", "Problems:", "", *problems]
    return "\n".join(lines) + "\n"


def ok(levels: list[Level], checks: Checks, baseline: Resources) -> bool:
    if any(level.error_count for level in levels) or checks.problems:
        return False
    for level in levels:
        after = level.after
        assert after is not None
        if after.fds > baseline.fds + FD_SLACK or after.threads > baseline.threads + THREAD_SLACK:
            return False
    return bool(levels) and all(level.write_latencies and level.read_latencies for level in levels)


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 5 s per level")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per level (default 30)")
    parser.add_argument("--levels", type=int, nargs="+", default=[8, 32], help="values of N")
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--batch", type=int, default=20, help="records per upsert request")
    parser.add_argument("--fetch-sample", type=int, default=None, help="acknowledged ids fetched")
    parser.add_argument("--query-sample", type=int, default=None, help="records queried by their vector")
    parser.add_argument("--write", type=Path, default=None, help="write the markdown section to this file")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 5.0 if args.quick else 30.0
    if args.fetch_sample is None:
        args.fetch_sample = 500 if args.quick else 2000
    if args.query_sample is None:
        args.query_sample = 100 if args.quick else 500
    args.warmup_seconds = 1.0 if args.quick else 3.0
    if args.seconds <= 0 or min(args.levels) < 1 or args.batch < 1:
        parser.error("need --seconds > 0, every level >= 1 and --batch >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from pinecone_rag import PineconeClient  # noqa: PLC0415

    args = parse_args(argv)
    PUSHBACKS.install()
    load_before = load_average()
    began = time.perf_counter()
    levels: list[Level] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-") as tmp,
        serve(Path(tmp)) as (control_url, pid),
    ):
        control = PineconeClient(API_KEY, host=control_url)
        try:
            control.create_index(INDEX_NAME, dimension=args.dimension, metric="cosine")
            checker = control.index(INDEX_NAME)
            checker.describe_index_stats()
            # Warm-up at the highest N, into its own namespace: lazily grown pools exist before the baseline.
            warmup = Level(max(args.levels), WARMUP_NAMESPACE)
            warm_client = PineconeClient(API_KEY, host=control_url)
            try:
                warm_args = argparse.Namespace(**{**vars(args), "seconds": args.warmup_seconds})
                run_level(warm_client, warmup, warm_args)
            finally:
                warm_client.close()
            if warmup.error_count:
                print(f"# warm-up errors: {warmup.errors}", file=sys.stderr)
            time.sleep(1.0)
            baseline = resources(pid)
            print(f"# baseline {baseline}", file=sys.stderr, flush=True)
            for n in args.levels:
                level = Level(n)
                client = PineconeClient(API_KEY, host=control_url)
                try:
                    run_level(client, level, args)
                finally:
                    client.close()
                level.after, level.settle_seconds = settled(pid, baseline)
                print(
                    f"# N={n}: {level.records:,} records, {len(level.read_latencies):,} queries, "
                    f"{level.error_count} errors; after {level.after}",
                    file=sys.stderr,
                    flush=True,
                )
                levels.append(level)
            checks = check(checker, levels, warmup.records, args)
            if warmup.error_count:
                checks.problems += [f"warm-up: {e}" for e in warmup.errors]
            control.delete_index(INDEX_NAME)
        finally:
            control.close()
    section = render(args, levels, checks, baseline, time.perf_counter() - began, load_before)
    emit_section(section, args.write, SECTION)
    return 0 if ok(levels, checks, baseline) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What ``bench/client_upsert.py`` and ``bench/client_query.py`` share: engine, data, clients, report.

Both benchmarks compare four ways of talking to the same local engine:

* ``ours gRPC``: ``PineconeClient(api_key, host=control_url).index(name)``, which dials the direct gRPC
  port the engine advertises (``x-pinecone-rag-grpc-port``);
* ``ours REST``: the same with ``transport="rest"`` (the index's shared data-plane port);
* ``SDK gRPC``: the official SDK 8.x, ``PineconeGRPC(...).Index(host=..., grpc_config=
  GRPCClientConfig(secure=False))``, given the same direct gRPC port as ours, so both gRPC clients reach
  the same grpcio server;
* ``SDK REST``: ``Pinecone(...).Index(host="http://127.0.0.1:PORT", pool_threads=C)``.

This module is imported by those scripts (it sits next to them on ``sys.path``); it is not a benchmark.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

API_KEY = "bench-key"
API_VERSION = "2025-10"
SEED = 20250101
OURS_GRPC = "ours gRPC"
OURS_REST = "ours REST"
SDK_GRPC = "SDK gRPC"
SDK_REST = "SDK REST"
PATHS = (OURS_GRPC, SDK_GRPC, OURS_REST, SDK_REST)
RESULTS_PREAMBLE = """# Benchmark results

Measured output of the benchmarks in `bench/`, one section per benchmark, each written by that benchmark's
`--write` option between its own markers (rerunning a benchmark replaces only its section). Each section
states the command that produced it and the machine it ran on. The machine is shared and noisy: compare the
ratios, which come from paths measured side by side in the same run, rather than absolute numbers.
"""
_TAGS = (["a", "b"], ["b", "c"], ["a", "c"], ["c"])


def quiet_sdk_warnings() -> None:
    """The official SDK warns about its own deprecated internals on import; that is not our output."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pinecone(_plugin_interface)?\b.*")


# ---------------------------------------------------------------------------------------------- engine
@dataclass(frozen=True)
class Engine:
    """A running engine: its control-plane URL and a reading of the CPU time it has used."""

    url: str
    cpu_seconds: Callable[[], float]


def process_counters(pid: int) -> tuple[int, float, float]:
    """Minor page faults, user and system CPU seconds of process ``pid``, from ``/proc`` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[7]), int(fields[11]) / ticks, int(fields[12]) / ticks  # minflt, utime, stime


def process_cpu_seconds(pid: int) -> Callable[[], float]:
    """A reading of the user + system CPU seconds of process ``pid``."""

    def read() -> float:
        _, user, system = process_counters(pid)
        return user + system

    return read


@contextlib.contextmanager
def engine_process(mode: str, data_dir: Path) -> Iterator[Engine]:
    """An engine run as ``pinecone-rag serve`` (``process``) or in a thread of this process."""
    if mode == "thread":
        from pinecone_rag.server import LocalServer  # noqa: PLC0415  (only this mode needs it)

        server = LocalServer(data_dir, port=0)
        server.start()
        try:
            # This process's CPU time: while the benchmark waits for the engine, that is the engine's.
            yield Engine(server.url, time.process_time)
        finally:
            server.stop()
        return
    command = [sys.executable, "-m", "pinecone_rag.cli", "serve", "--data-dir", str(data_dir)]
    command += ["--port", "0", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r" on (http://\S+)", line)
        if match is None:
            raise RuntimeError(f"`pinecone-rag serve` did not report its URL: {line!r}")
        cpu = process_cpu_seconds(process.pid) if Path(f"/proc/{process.pid}/stat").exists() else None
        yield Engine(match.group(1), cpu or _unknown_cpu)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _unknown_cpu() -> float:
    return math.nan


@contextlib.contextmanager
def running_engine(mode: str, data_dir: Path) -> Iterator[str]:
    """The control-plane URL of an engine run as ``pinecone-rag serve`` (``process``) or in a thread."""
    with engine_process(mode, data_dir) as engine:
        yield engine.url


def wait_until_idle(
    engine: Engine, *, calm: float = 1.0, window: float = 0.25, busy: float = 0.05, timeout: float = 300.0
) -> float:
    """Wait until the engine has used under ``busy`` of a core in every ``window`` for ``calm`` seconds.

    Background work one path set off (the index build after its writes) then finishes before the next
    path is timed, instead of slowing whichever path comes next. ``calm`` must outlast the engine's delay
    before such a build starts (``EngineConfig.build_idle_s``, 0.5 s after the last write, plus the
    builder's 0.1 s poll), or an idle engine about to build would pass. Returns the seconds waited; at
    once where the engine's CPU time cannot be read (no ``/proc``); raises if still busy after ``timeout``.
    """
    began = time.perf_counter()
    before = engine.cpu_seconds()
    if math.isnan(before):
        return 0.0
    quiet_windows = 0
    while quiet_windows * window < calm:
        time.sleep(window)
        after = engine.cpu_seconds()
        quiet_windows = quiet_windows + 1 if after - before < busy * window else 0
        if time.perf_counter() - began > timeout:
            raise RuntimeError(f"the engine was still busy after {timeout:.0f} s")
        before = after
    return time.perf_counter() - began


def engine_description(mode: str) -> str:
    if mode == "thread":
        return "in the benchmark's process (`LocalServer` on a thread: client and engine share one GIL)"
    return "in a subprocess (`pinecone-rag serve`: client and engine each have their own GIL)"


def grpc_port_of(control_url: str, name: str) -> int:
    """The direct gRPC port that describe_index advertises."""
    headers = {"Api-Key": API_KEY, "X-Pinecone-Api-Version": API_VERSION}
    response = httpx.get(f"{control_url}/indexes/{name}", headers=headers, timeout=30)
    response.raise_for_status()
    header = response.headers.get("x-pinecone-rag-grpc-port")
    if not header:
        raise RuntimeError("describe_index did not advertise x-pinecone-rag-grpc-port")
    return int(header)


def data_host_of(control_url: str, name: str) -> str:
    """The index's shared data-plane address, ``127.0.0.1:PORT`` (no scheme)."""
    headers = {"Api-Key": API_KEY, "X-Pinecone-Api-Version": API_VERSION}
    response = httpx.get(f"{control_url}/indexes/{name}", headers=headers, timeout=30)
    response.raise_for_status()
    host = str(response.json()["host"])
    return host.removeprefix("http://").removeprefix("https://")


# ------------------------------------------------------------------------------------------------ data
def unit_rows(rng: np.random.Generator, count: int, dimension: int) -> np.ndarray:
    """``count`` random float32 rows of unit length."""
    rows = rng.standard_normal((count, dimension), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def record_id(i: int) -> str:
    """A RAG-style id: document and chunk."""
    return f"doc-{i // 20}.md#{i % 20}"


def record_metadata(i: int) -> dict[str, Any]:
    """Small per-chunk metadata: a string, a number and a list of strings (about 60 bytes as JSON)."""
    return {"source": f"doc-{i // 20}.md", "chunk": i % 20, "tags": list(_TAGS[i % len(_TAGS)])}


METADATA_EXAMPLE = '`{"source": "doc-17.md", "chunk": 3, "tags": ["a", "b"]}`'


def records(count: int) -> tuple[list[str], list[dict[str, Any]]]:
    """The ids and metadata of the first ``count`` records."""
    return [record_id(i) for i in range(count)], [record_metadata(i) for i in range(count)]


def dataset(
    count: int, dimension: int, seed: int = SEED
) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
    """The seeded matrix, ids and metadata every path writes."""
    return (unit_rows(np.random.default_rng(seed), count, dimension), *records(count))


def sdk_records(matrix: np.ndarray, ids: list[str], metadata: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The official SDK's record dicts, values as Python lists (fresh dicts: its gRPC path mutates them)."""
    return [
        {"id": record, "values": row, "metadata": {**fields, "tags": list(fields["tags"])}}
        for record, row, fields in zip(ids, matrix.tolist(), metadata, strict=True)
    ]


# --------------------------------------------------------------------------------------------- clients
def sdk_grpc_index(control_url: str, grpc_target: str) -> Any:
    """The official gRPC client's index, on ``host:port`` without TLS."""
    from pinecone.grpc import GRPCClientConfig, PineconeGRPC  # noqa: PLC0415  (after quiet_sdk_warnings)

    return PineconeGRPC(api_key=API_KEY, host=control_url).Index(
        host=grpc_target, grpc_config=GRPCClientConfig(secure=False)
    )


def sdk_upserts_in_flight(
    index: Any, batches: list[list[dict[str, Any]]], namespace: str, concurrency: int, *, grpc: bool = True
) -> Iterator[tuple[Any, int]]:
    """The SDK's parallel upsert as its documentation shows it: ``async_req=True`` per batch.

    At most ``concurrency`` calls are pending; a new batch is sent when the oldest is settled
    (``.result()`` for gRPC futures, ``.get()`` for REST). Yields each response with its batch's size,
    oldest first.
    """
    pending: deque[tuple[Any, int]] = deque()

    def settle() -> tuple[Any, int]:
        handle, size = pending.popleft()
        return (handle.result(timeout=300) if grpc else handle.get(timeout=300)), size

    for batch in batches:
        if len(pending) == concurrency:
            yield settle()
        pending.append((index.upsert(vectors=batch, namespace=namespace, async_req=True), len(batch)))
    while pending:
        yield settle()


def sdk_rest_index(control_url: str, data_host: str, pool_threads: int) -> Any:
    """The official REST client's index, with ``pool_threads`` threads for ``async_req=True`` calls."""
    from pinecone import Pinecone  # noqa: PLC0415

    return Pinecone(api_key=API_KEY, host=control_url).Index(
        host=f"http://{data_host}", pool_threads=pool_threads
    )


def namespace_counts(stats: Any) -> dict[str, int]:
    """``{namespace: vector count}`` from either client's describe_index_stats."""
    return {name: int(summary.vector_count) for name, summary in stats.namespaces.items()}


# ---------------------------------------------------------------------------------------------- report
def fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def fmt_ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator == 0:
        return "n/a"
    return f"{numerator / denominator:.2f}"


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine_facts(load_before: str) -> list[str]:
    from google.protobuf.internal import api_implementation  # noqa: PLC0415

    versions = ", ".join(
        f"{name} {package_version(name)}"
        for name in ("pinecone", "grpcio", "protobuf", "numpy", "orjson", "httpx", "urllib3", "pinecone-rag")
    )
    return [
        f"- cores (`os.cpu_count()`): {os.cpu_count()}; {platform.system()} {platform.machine()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- {versions}; protobuf backend: {api_implementation.Type()}",
        f"- load average (1 / 5 / 15 min): {load_before} before the run, {load_average()} after it",
    ]


def command_line() -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(Path.cwd())
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def write_section(path: Path, name: str, section: str) -> None:
    """Create or replace the ``<!-- name:start -->`` ... ``<!-- name:end -->`` section, keeping the rest."""
    start_marker, end_marker = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start_marker}\n{section}{end_marker}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else RESULTS_PREAMBLE
    start, end = text.find(start_marker), text.find(end_marker)
    if start != -1 and end > start:
        rest = text[end + len(end_marker) :].lstrip("\n")
        text = text[:start] + block + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def emit_section(section: str, path: Path | None, name: str) -> None:
    """Print a benchmark's markdown section and, with ``--write PATH``, replace its section in PATH."""
    print(section)
    if path is not None:
        write_section(path, name, section)
        print(f"# wrote the {name} section of {path}", file=sys.stderr)

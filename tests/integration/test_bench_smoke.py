"""Smoke tests of the benchmarks in bench/: a --quick run finishes, prints its table, writes its section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADER = "## Official SDK 8.x vs the local engine: REST, gRPC on the shared port, direct gRPC"

pytest.importorskip("pinecone.grpc", reason="the benchmark drives the official SDK with its gRPC extra")


def run_quick(tmp_path: Path, script: str, section: str, *options: str, timeout: int) -> tuple[Any, str]:
    """``bench/<script> --quick --write`` into a RESULTS.md holding another section and its own, stale.

    Returns the finished run (it must have succeeded) and the file's text afterwards.
    """
    results = tmp_path / "RESULTS.md"
    results.write_text(
        f"# Results\n\n<!-- other:start -->\nkeep me\n<!-- other:end -->\n\n"
        f"<!-- {section}:start -->\nstale\n<!-- {section}:end -->\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick", *options, "--write", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return run, results.read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sdk_vs_engine_quick(tmp_path: Path) -> None:
    run, written = run_quick(tmp_path, "sdk_vs_engine.py", "sdk_vs_engine", timeout=110)
    assert HEADER in run.stdout
    assert "| batch | metadata | REST |" in run.stdout
    assert "| query p50 ms |" in run.stdout
    assert "keep me" in written
    assert "stale" not in written
    assert written.count("<!-- sdk_vs_engine:start -->") == 1
    assert HEADER in written


# Each client benchmark: its script, its section name, its table header, and a line of its tables.
CLIENT_BENCHMARKS = [
    pytest.param(
        "client_upsert.py",
        "client_upsert",
        "## Upsert: our client vs the official SDK 8.x, same engine, data and concurrency",
        "| ours gRPC / SDK gRPC |",
        id="client_upsert",
    ),
    pytest.param(
        "client_ceiling.py",
        "client_ceiling",
        "## Upsert without a server's limits: our client vs the official SDK's gRPC client, to a sink",
        "| client | records/s | client CPU us / record |",
        id="client_ceiling",
    ),
    pytest.param(
        "client_query.py",
        "client_query",
        "## Query: our client vs the official SDK 8.x, same engine, data and concurrency",
        "| SDK gRPC | sequential |",
        id="client_query",
    ),
]


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize(("script", "section", "header", "row"), CLIENT_BENCHMARKS)
def test_client_benchmark_quick(tmp_path: Path, script: str, section: str, header: str, row: str) -> None:
    run, written = run_quick(tmp_path, script, section, timeout=140)
    assert header in run.stdout
    assert row in run.stdout
    assert "keep me" in written
    assert "stale" not in written
    assert written.count(f"<!-- {section}:start -->") == 1
    assert header in written


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_engine_benchmark_quick(tmp_path: Path) -> None:
    pytest.importorskip("faiss", reason="the engine benchmark compares against FAISS IVF-Flat")
    pytest.importorskip("matplotlib", reason="the engine benchmark draws its recall/latency plot")
    run, written = run_quick(tmp_path, "engine.py", "engine", "--datasets", "synthetic-128,real", timeout=140)
    header = "## Engine: our index vs FAISS IVF-Flat vs numpy brute force, same data and queries"
    assert header in run.stdout
    # Brute force is checked against the ground truth inside the run; its row must say so.
    assert "| numpy brute force | exact | all |" in run.stdout
    for contender in ("ours in-process", "FAISS IVF-Flat", "ours gRPC"):
        assert f"| {contender} |" in run.stdout
    targets = [line for line in run.stdout.splitlines() if line.startswith("| synthetic-128 |")]
    assert len(targets) >= 5
    assert all(line.rstrip(" |").rsplit("| ", 1)[1] in {"pass", "FAIL", "n/a", "info"} for line in targets)
    plot = tmp_path / "engine_recall_latency.png"
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "keep me" in written
    assert "stale" not in written
    assert written.count("<!-- engine:start -->") == 1
    assert "](engine_recall_latency.png)" in written


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_adapters_benchmark_quick(tmp_path: Path) -> None:
    run, written = run_quick(tmp_path, "adapters.py", "adapters", timeout=110)
    header = "## Adapters: ours vs the official LangChain / LlamaIndex stores vs our raw client"
    assert header in run.stdout
    rows = {
        line.split(" | ")[0].strip("| *"): line for line in run.stdout.splitlines() if line.startswith("| ")
    }
    # Our side always runs: both adapters and both raw baselines (LangChain's and LlamaIndex's tables share
    # row names, so each name appears twice).
    expected = ["ours", "raw client", "raw client + conversion", "llama-index-vector-stores-pinecone"]
    for name in expected:
        assert name in rows, name
    assert sum(line.startswith(("| **ours** |", "| raw client |")) for line in run.stdout.splitlines()) == 4
    peer_venv = ROOT / ".venv-compat" / "langchain" / "bin" / "python"
    if peer_venv.exists():
        assert "| langchain-pinecone |" in run.stdout
    else:
        assert "langchain-pinecone was not run" in run.stdout
        print("langchain-pinecone skipped: no .venv-compat/langchain (scripts/compat/run.py builds it)")
    # Every throughput and latency cell of our adapters is a positive number.
    for line in run.stdout.splitlines():
        if line.startswith("| **ours** |"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            docs_per_s, p50, p99 = (float(cells[i].replace(",", "")) for i in (6, 8, 9))
            assert docs_per_s > 0
            assert 0 < p50 <= p99
    overheads = [line for line in run.stdout.splitlines() if line.startswith("| adapter overhead over")]
    assert len(overheads) == 6
    assert all(cell.strip().endswith("%") for line in overheads for cell in line.strip("|").split("|")[1:3])
    assert "keep me" in written
    assert "stale" not in written
    assert written.count("<!-- adapters:start -->") == 1
    assert header in written
    assert "bench/adapters.py --quick" in written


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_allocator_benchmark_quick(tmp_path: Path) -> None:
    """Both settings measured, both tables filled, the section written between its markers."""
    run, written = run_quick(tmp_path, "allocator.py", "allocator", timeout=140)
    assert "## Allocator settings of `pinecone-rag serve`" in run.stdout
    rows = [line for line in run.stdout.splitlines() if line.startswith(("| tuned", "| glibc"))]
    assert len(rows) == 4  # two settings in each of two tables
    assert "stale" not in written
    assert written.count("<!-- allocator:start -->") == 1

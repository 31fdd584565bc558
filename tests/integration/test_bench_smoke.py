"""Smoke tests of the benchmarks in bench/: a --quick run finishes, prints its table, writes its section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "sdk_vs_engine.py"
HEADER = "## Official SDK 8.x vs the local engine: REST, gRPC on the shared port, direct gRPC"

pytest.importorskip("pinecone.grpc", reason="the benchmark drives the official SDK with its gRPC extra")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sdk_vs_engine_quick(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Results\n\n<!-- other:start -->\nkeep me\n<!-- other:end -->\n\n"
        "<!-- sdk_vs_engine:start -->\nstale\n<!-- sdk_vs_engine:end -->\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--write", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert HEADER in run.stdout
    assert "| batch | metadata | REST |" in run.stdout
    assert "| query p50 ms |" in run.stdout
    written = results.read_text(encoding="utf-8")
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
    results = tmp_path / "RESULTS.md"
    results.write_text(
        f"# Results\n\n<!-- other:start -->\nkeep me\n<!-- other:end -->\n\n"
        f"<!-- {section}:start -->\nstale\n<!-- {section}:end -->\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick", "--write", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert header in run.stdout
    assert row in run.stdout
    written = results.read_text(encoding="utf-8")
    assert "keep me" in written
    assert "stale" not in written
    assert written.count(f"<!-- {section}:start -->") == 1
    assert header in written

"""Smoke test of bench/sdk_vs_engine.py: the --quick run finishes, prints its table and writes its section."""

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

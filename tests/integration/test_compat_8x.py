"""The 8.x row of the compatibility matrix: the shared scenario, run with the SDK installed in this venv.

``make compat`` runs every SDK line in its own venv (``scripts/compat/run.py``); this test keeps the line
the project depends on (pinecone 8.x with grpc) in ``make test``, driving the same scenario file the same
way, as a subprocess against a real engine, on both transports.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pinecone_rag.server import LocalServer

SCENARIO = Path(__file__).resolve().parents[2] / "scripts" / "compat" / "scenario.py"
EXPECTED_STACK = {"rest": "HTTP/1.1", "grpc": "grpcio"}


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_sdk_8x_runs_the_whole_scenario(server: LocalServer, transport: str) -> None:
    assert importlib.metadata.version("pinecone").startswith("8.")
    done = subprocess.run(
        [sys.executable, str(SCENARIO), "--url", server.url, "--transport", transport],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    facts = {r["step"]: r for r in records if r["step"] in ("sdk", "stack")}
    steps = {r["step"]: (r["ok"], r["error"]) for r in records if r["step"] not in ("sdk", "stack")}
    assert facts["sdk"]["version"].startswith("8."), done.stderr
    assert facts["sdk"]["api_version"] == "2025-10"
    assert facts["stack"]["stack"] == EXPECTED_STACK[transport]
    # 8.x has every feature of the scenario, so nothing may be n/a, and every step must have run.
    failures = {name: error for name, (ok, error) in steps.items() if ok is not True}
    assert failures == {}, done.stderr[-2000:]
    assert list(steps) == [
        "create_index",
        "describe_index",
        "list_indexes",
        "upsert",
        "query",
        "query_filter",
        "fetch",
        "update",
        "update_by_filter",
        "list",
        "stats",
        "namespaces",
        "delete",
        "delete_index",
    ]
    assert done.returncode == 0

"""The load test of issue 8 (``bench/load.py --quick``): N writers and N readers, exact checks, no leaks.

The script itself fails (non-zero exit) on any error, count or record mismatch, or growth of the server's
file descriptors or threads beyond a small slack; this test runs its quick profile and checks that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "load.py"
HEADER = "## Load: N concurrent writers and N readers on one index"


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_load_quick() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert HEADER in run.stdout
    assert "Result: **pass**." in run.stdout
    for n in (8, 32):
        assert any(line.startswith(f"| {n} | ") for line in run.stdout.splitlines()), n

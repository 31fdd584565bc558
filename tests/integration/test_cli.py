"""`pinecone-rag serve` as users run it: a real subprocess, stopped by a signal."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from pinecone_rag.cli import main

SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}

if TYPE_CHECKING:
    from pathlib import Path


def _start(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pinecone_rag.cli", "serve", "--data-dir", str(data_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        match = re.search(r"serving .* on (http://\S+)", line)
        if match is not None:
            return process, match.group(1)
    _finish(process, signal.SIGKILL)
    pytest.fail(f"the server exited before announcing its URL: {''.join(seen)}")


def _finish(process: subprocess.Popen[str], signum: int) -> int:
    """Signal the server, wait for it, close its pipe; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
    return process.returncode


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_then_stops_cleanly_on_signal(tmp_path: Path, signum: int) -> None:
    process, url = _start(tmp_path)
    try:
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        created = httpx.post(
            f"{url}/indexes",
            headers={"Api-Key": "k"},
            json={
                "name": "cli",
                "dimension": 2,
                "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
            },
            timeout=10,
        )
        assert created.status_code == 201, created.text
        assert _finish(process, signum) == 0
    finally:
        _finish(process, signal.SIGKILL)
    # The data directory is reusable at once: the index is still there after a restart.
    process, url = _start(tmp_path)
    try:
        listed = httpx.get(f"{url}/indexes", headers={"Api-Key": "k"}, timeout=10).json()
        assert [index["name"] for index in listed["indexes"]] == ["cli"]
    finally:
        assert _finish(process, signal.SIGTERM) == 0


def test_keys_commands_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "--data-dir", str(tmp_path), "create", "--project", "team-a", "--name", "ci"]) == 0
    created = capsys.readouterr().out
    key_id = re.search(r"created key (\w+)", created)
    assert key_id is not None
    secret = created.strip().splitlines()[-1]
    assert secret.startswith("pcrag_")
    assert main(["keys", "--data-dir", str(tmp_path), "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id.group(1) in listing
    assert "team-a" in listing
    assert secret not in listing
    assert main(["keys", "--data-dir", str(tmp_path), "revoke", key_id.group(1)]) == 0
    assert main(["keys", "--data-dir", str(tmp_path), "revoke", key_id.group(1)]) == 1
    capsys.readouterr()
    assert main(["keys", "--data-dir", str(tmp_path), "list"]) == 0
    assert "revoked" in capsys.readouterr().out


def test_demo_rejects_unknown_topics_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The demo itself (real model, LangChain, LlamaIndex) runs end to end in test_demo.py.
    assert main(["demo", "--data-dir", str(tmp_path), "--topics", "with,no-such-topic"]) == 1
    err = capsys.readouterr().err
    assert (
        err.strip()
        == "pinecone-rag: error: unknown topic 'no-such-topic' (see pydoc_data.topics for the list)"
    )
    assert main(["demo", "--data-dir", str(tmp_path), "--limit", "0"]) == 1
    assert "--limit must be at least 1" in capsys.readouterr().err

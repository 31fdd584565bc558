"""``make demo``'s program end to end: the real model, the embedded engine, LangChain and LlamaIndex.

The demo runs as users run it (``python -m pinecone_rag.cli demo``), on a subset of the language
reference that contains every question's answer, twice on the same data directory: the second run must
find every chunk stored and embed nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from pinecone_rag.demo import QUESTIONS, load_topics
from pinecone_rag.server.embedding_models import dense_extra_installed

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not dense_extra_installed(), reason="needs the models extra (sentence-transformers)"),
]

LIMIT = 20  # the questions' topics come first, then the others by name: answers among distractors
OPTIONS = ("--limit", str(LIMIT), "--no-progress")


def _demo(data_dir: Path) -> tuple[str, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pinecone_rag.cli", "demo", "--data-dir", str(data_dir), *OPTIONS],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, elapsed


def _found(out: str, framework: str) -> int:
    match = re.search(rf"{framework}[^:\n]*: (\d+)/(\d+) questions found their topic", out)
    assert match is not None, out
    assert int(match.group(2)) == len(QUESTIONS)
    return int(match.group(1))


def _ingest_counts(out: str) -> tuple[int, int, int]:
    match = re.search(r"ingest: (\d+) already stored, (\d+) embedded, (\d+) from cache, (\d+) upserted", out)
    assert match is not None, out
    stored, embedded, _cached, upserted = (int(group) for group in match.groups())
    return stored, embedded, upserted


def test_the_subset_holds_every_answer_among_distractors() -> None:
    topics = load_topics(limit=LIMIT)
    assert len(topics) == LIMIT
    for question in QUESTIONS:
        assert question.topics[0] in topics
    assert len(set(topics) - {t for q in QUESTIONS for t in q.topics}) >= 14


def test_demo_answers_the_questions_and_a_second_run_skips_everything(tmp_path: Path) -> None:
    out, first_seconds = _demo(tmp_path)
    stored, embedded, upserted = _ingest_counts(out)
    assert stored == 0
    assert embedded == upserted > 50
    # Each question's expected topic is printed after its passages; at least 4 of 5 per framework.
    assert _found(out, "LangChain hybrid retriever") >= 4
    assert _found(out, "LlamaIndex query engine") >= 4
    assert "demo passed" in out
    for question in QUESTIONS:
        assert question.text in out

    out, second_seconds = _demo(tmp_path)
    assert _ingest_counts(out) == (upserted, 0, 0)
    assert "demo passed" in out
    # Nothing to embed: the second run is the model load and ten queries.
    assert second_seconds < first_seconds + 30

"""``pinecone-rag ingest / query / indexes / stats`` on the embedded engine, as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from pinecone_rag.cli import main

if TYPE_CHECKING:
    from pathlib import Path

BM25 = "pinecone-rag-bm25"


def _corpus(root: Path) -> Path:
    docs = root / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / ".drafts").mkdir()
    (docs / "cats.md").write_text(
        "# Cats\n\nCats are small carnivorous mammals. A cat purrs when it is content.\n\n"
        "Domestic cats sleep for most of the day and hunt mice at night.\n",
        encoding="utf-8",
    )
    (docs / "rockets.txt").write_text(
        "Rockets burn propellant to produce thrust. A rocket engine expels exhaust at high speed.\n\n"
        "Multistage rockets drop empty tanks to reach orbit.\n",
        encoding="utf-8",
    )
    (docs / "guides" / "bread.md").write_text(
        "Bread dough rises because yeast ferments sugar into carbon dioxide.\n\n"
        + "Knead the dough, let it rest, then bake it in a hot oven. " * 30,
        encoding="utf-8",
    )
    (docs / ".drafts" / "secret.md").write_text("hidden drafts are skipped", encoding="utf-8")
    (docs / "logo.png").write_bytes(b"\x89PNG not text")
    return docs


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _written(out: str) -> tuple[int, int, int]:
    match = re.search(r"(\d+) record\(s\) written, (\d+) already stored, (\d+) embedded", out)
    assert match is not None, out
    written, stored, embedded = (int(group) for group in match.groups())
    return written, stored, embedded


def test_ingest_twice_then_query_indexes_and_stats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # the table fits the terminal; make it wide enough for snippets
    docs = _corpus(tmp_path)
    data = str(tmp_path / "data")
    common = ("--data-dir", data)

    code, out, err = _run(
        capsys, "ingest", str(docs), "--index", "notes", "--model", BM25, "--chunk-size", "200", *common
    )
    assert code == 0, err
    assert "read 3 file(s)" in out  # the hidden draft and the PNG are skipped
    written, stored, embedded = _written(out)
    assert written == embedded > 3  # bread.md is several chunks
    assert stored == 0
    assert "notes (created)" in out

    # The second run finds every content-hash id already stored: nothing embedded, nothing written.
    code, out, err = _run(
        capsys, "ingest", str(docs), "--index", "notes", "--model", BM25, "--chunk-size", "200", *common
    )
    assert code == 0, err
    assert _written(out) == (0, written, 0)
    assert "(created)" not in out

    # A changed file writes only its changed chunk.
    (docs / "rockets.txt").write_text(
        "Rockets burn propellant to produce thrust. A rocket engine expels exhaust at high speed.\n\n"
        "Reusable boosters land themselves after launch.\n",
        encoding="utf-8",
    )
    code, out, _ = _run(
        capsys, "ingest", str(docs), "--index", "notes", "--model", BM25, "--chunk-size", "200", *common
    )
    assert code == 0
    new_written, new_stored, _ = _written(out)
    assert new_written == 1
    assert new_stored == written - 1

    code, out, err = _run(capsys, "query", "why does a cat purr", "--index", "notes", "-k", "3", *common)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["rank", "score", "source", "snippet"]
    first = lines[2]
    assert first.split()[0] == "1"
    assert "cats.md #0" in first
    assert "purrs" in out

    rockets = (docs / "rockets.txt").as_posix()
    query_filter = json.dumps({"source": rockets})
    code, out, err = _run(capsys, "query", "thrust", "--index", "notes", "--filter", query_filter, *common)
    assert code == 0, err
    hits = out.splitlines()[2:]
    assert hits
    assert all("rockets.txt" in line for line in hits)

    code, out, err = _run(capsys, "indexes", *common)
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("notes"))
    assert row.split()[1:3] == [str(written + 1), "sparse"]
    assert BM25 in row

    code, out, err = _run(capsys, "stats", "--index", "notes", *common)
    assert code == 0, err
    assert re.search(rf"notes\s+\(all\)\s+{written + 1}\b", out), out
    assert re.search(rf"\(default\)\s+{written + 1}\b", out), out


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pinecone_rag.cli", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _one_clear_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pinecone-rag: error: ")
    for word in words:
        assert word in lines[0]


@pytest.mark.slow
def test_bad_inputs_give_one_clear_line_and_no_traceback(tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    data = str(tmp_path / "data")
    missing = _cli("ingest", str(tmp_path / "nope"), "--index", "notes", "--data-dir", data, cwd=tmp_path)
    _one_clear_line(missing, "no such file or directory", "nope")

    created = _cli("ingest", str(docs), "--index", "notes", "--model", BM25, "--data-dir", data, cwd=tmp_path)
    assert created.returncode == 0, created.stderr

    bad_filter = _cli(
        "query", "cats", "--index", "notes", "--filter", "{source:", "--data-dir", data, cwd=tmp_path
    )
    _one_clear_line(bad_filter, "--filter is not valid JSON")

    unknown = _cli("query", "cats", "--index", "nothing-here", "--data-dir", data, cwd=tmp_path)
    _one_clear_line(unknown, "no index named 'nothing-here'", "notes")

    unknown_stats = _cli("stats", "--index", "nothing-here", "--data-dir", data, cwd=tmp_path)
    _one_clear_line(unknown_stats, "no index named 'nothing-here'")


def test_errors_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _corpus(tmp_path)
    data = str(tmp_path / "data")
    code, _, err = _run(capsys, "query", "x", "--index", "i", "--filter", "[1, 2]", "--data-dir", data)
    assert code == 1
    assert "--filter must be a JSON object" in err

    code, _, err = _run(capsys, "ingest", str(docs / "logo.png"), "--index", "i", "--data-dir", data)
    assert code == 1
    assert "unsupported file type .png" in err

    # Without the models extra, the dense default model fails before the engine starts.
    monkeypatch.setattr("pinecone_rag.server.embedding_models.dense_extra_installed", lambda: False)
    code, _, err = _run(capsys, "ingest", str(docs), "--index", "i", "--data-dir", data)
    assert code == 1
    assert "pinecone-rag[models]" in err
    assert len(err.strip().splitlines()) == 1

    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    code, _, err = _run(capsys, "query", "x", "--index", "i", "--cloud", "--data-dir", data)
    assert code == 1
    assert "--cloud needs an API key" in err


@pytest.mark.slow
def test_dense_ingest_uses_the_embedding_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = _corpus(tmp_path)
    data = str(tmp_path / "data")
    code, out, err = _run(capsys, "ingest", str(docs / "cats.md"), "--index", "dense-a", "--data-dir", data)
    assert code == 0, err
    written, _, embedded = _written(out)
    assert written == embedded == 1
    assert (tmp_path / "data" / "embedding-cache" / "all-minilm-l6-v2.npy").exists()

    # Another index, same text: the embedding comes from the cache, not the model.
    code, out, err = _run(capsys, "ingest", str(docs / "cats.md"), "--index", "dense-b", "--data-dir", data)
    assert code == 0, err
    assert _written(out) == (1, 0, 0)
    assert re.search(r"dense-b \(created\).*\b1\s+1\s*$", out, re.MULTILINE), out

    code, out, err = _run(capsys, "query", "feline pets", "--index", "dense-b", "--data-dir", data)
    assert code == 0, err
    assert "cats.md" in out


def test_host_targets_a_running_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pinecone_rag.server import LocalServer

    monkeypatch.chdir(tmp_path)  # where the default ./pinecone-data would go
    docs = _corpus(tmp_path)
    with LocalServer(tmp_path / "server", port=0) as server:
        remote = ("--host", server.url, "--api-key", "cli-test")
        code, out, err = _run(capsys, "ingest", str(docs), "--index", "remote", "--model", BM25, *remote)
        assert code == 0, err
        written, _, _ = _written(out)
        assert written > 0
        code, out, err = _run(capsys, "query", "rocket thrust", "--index", "remote", "-k", "1", *remote)
        assert code == 0, err
        assert "rockets.txt" in out.splitlines()[2]
        code, out, err = _run(capsys, "indexes", *remote)
        assert code == 0, err
        assert server.url.split("//")[1].split(":")[0] in out  # hosts are shown for a server
    # Nothing was written locally: no cache, no data directory.
    assert not (tmp_path / "pinecone-data").exists()

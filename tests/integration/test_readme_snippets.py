"""Every quickstart ``python`` block of the README runs as written against the embedded engine.

The cloud block builds ``PineconeClient()`` from the environment; here the environment names a local
server, which is exactly how the block would reach Pinecone with a real key.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pinecone_rag.server import LocalServer
from pinecone_rag.server.embedding_models import dense_extra_installed

README = Path(__file__).resolve().parents[2] / "README.md"
# What each section's block prints (a part of it): the snippet did what its section says.
EXPECTED = {
    "Quickstart: the core client": "A lambda is an anonymous function.",
    "Quickstart: LangChain": "Cats purr",
    "Quickstart: LlamaIndex": "Cats purr",
    "Quickstart: agent memory": "Whiskers",
    "Switching to Pinecone's cloud": "http://127.0.0.1:",
}


def _python_blocks(text: str) -> dict[str, str]:
    blocks: dict[str, str] = {}
    heading = ""
    pattern = r"^## (?P<heading>[^\n]+)$|^```python\n(?P<code>.*?)^```$"
    for match in re.finditer(pattern, text, re.MULTILINE | re.DOTALL):
        if match.group("heading"):
            heading = match.group("heading").strip()
        elif heading in EXPECTED:  # the quickstarts; other sections show API shapes, not programs
            assert heading not in blocks, f"two python blocks under {heading!r}"
            blocks[heading] = match.group("code")
    return blocks


BLOCKS = _python_blocks(README.read_text(encoding="utf-8"))


def test_every_python_block_is_checked() -> None:
    assert set(BLOCKS) == set(EXPECTED)


def test_quickstarts_are_about_ten_lines() -> None:
    for heading, code in BLOCKS.items():
        lines = [line for line in code.splitlines() if line.strip()]
        assert len(lines) <= 12, f"{heading}: {len(lines)} lines"


@pytest.mark.slow
@pytest.mark.skipif(not dense_extra_installed(), reason="the snippets embed with all-minilm-l6-v2")
@pytest.mark.parametrize("heading", list(EXPECTED))
def test_snippet_runs(
    heading: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # "./pinecone-data" is this test's own
    code = compile(BLOCKS[heading], f"README.md: {heading}", "exec")
    if "PineconeClient()" in BLOCKS[heading]:
        with LocalServer(tmp_path / "server", port=0) as server:
            monkeypatch.setenv("PINECONE_API_KEY", "readme-check")
            monkeypatch.setenv("PINECONE_CONTROLLER_HOST", server.url)
            exec(code, {"__name__": "__readme__"})
    else:
        exec(code, {"__name__": "__readme__"})
    assert EXPECTED[heading] in capsys.readouterr().out

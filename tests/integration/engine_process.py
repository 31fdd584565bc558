"""``pinecone-rag serve`` as a subprocess that a test can ``kill -9`` and start again on the same data dir.

Shared by the durability and restart tests; not a test module itself.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

URL_LINE = re.compile(r"serving .* on (http://\S+)")
# The builder's failures are logged, not raised: a build that keeps failing after a restart (say, over
# files a killed build left behind) is invisible to clients, so the tests read the log for it.
BUILD_FAILURE = "building namespace"


def data_port(host: str) -> int:
    """The port of an index host as describe_index returns it (``http://127.0.0.1:PORT`` or bare)."""
    return int(host.rsplit(":", 1)[1])


class ServerProcess:
    """``pinecone-rag serve --port 0`` in a subprocess, killed or stopped by the test.

    Args:
        data_dir: The data directory (reused across restarts).
        log: Where the server's stderr goes (appended to, so every run of one test lands in one file).
        engine: A JSON object of engine settings for ``PINECONE_RAG_ENGINE``, or None for the defaults.
        start_timeout: Seconds to wait for the server to print its URL.
    """

    def __init__(
        self, data_dir: Path, log: Path, *, engine: str | None = None, start_timeout: float = 60
    ) -> None:
        env = {
            k: v for k, v in os.environ.items() if k not in ("PINECONE_RAG_API_KEYS", "PINECONE_RAG_ENGINE")
        }
        if engine is not None:
            env["PINECONE_RAG_ENGINE"] = engine
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "pinecone_rag.cli", "serve"),
                *("--data-dir", str(data_dir), "--port", "0", "--log-level", "warning"),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self.url = self._read_url(deadline=time.monotonic() + start_timeout)

    def _read_url(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        buffered = b""
        try:
            while time.monotonic() < deadline:
                if not selector.select(timeout=0.2):
                    if self.proc.poll() is not None:
                        break
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buffered += chunk
                match = URL_LINE.search(buffered.decode(errors="replace"))
                if match:
                    return match.group(1)
        finally:
            selector.close()
        self.kill()
        raise AssertionError(f"the server did not print its URL; stdout so far: {buffered!r}")

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs, as in a power cut of the process."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()

    def stop(self) -> None:
        """A clean stop (SIGTERM), escalating to SIGKILL after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._close()

    def _close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def build_failures(self) -> list[str]:
        """The builder's failure lines in the log so far (any run of this data dir)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if BUILD_FAILURE in line and "failed" in line]

"""An exclusive lock on a data directory, so two engines never write the same files.

The lock is an ``flock`` on ``<data-dir>/LOCK``: the kernel drops it when the process dies, so a crash
never leaves a stale lock behind. Platforms without ``fcntl`` get no lock (documented in the README).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pinecone_rag.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "LOCK"


class DataDirLock:
    """Holds ``<data-dir>/LOCK`` exclusively until :meth:`release`."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ConfigurationError naming the process that holds it."""
        if fcntl is None or self._fd is not None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ConfigurationError(
                f"The data directory {self._path.parent} is in use by {holder}; "
                "stop that engine or choose another --data-dir."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is not None and fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

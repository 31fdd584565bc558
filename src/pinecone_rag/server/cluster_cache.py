"""A least-recently-used cache of open cluster files, bounded by the bytes they map.

Mapping a file costs a system call and a CRC pass over it; keeping every file of a large
index mapped would pin address space and page cache the OS could use better. Evicting a file only drops
the cache's reference: a query that still holds arrays of it keeps reading them (the mapping lives until
the last array goes away), so eviction never races with a scan.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from pinecone_rag.server.cluster_file import ClusterFile
from pinecone_rag.server.open_files import mapped_files_budget

if TYPE_CHECKING:
    from pinecone_rag.server.blobstore import BlobStore


class ClusterCache:
    """Open :class:`ClusterFile` objects by key, least recently used first out.

    A file's section checksums are verified every time it is mapped, after an eviction too: the file is
    immutable, but the disk under it may not be, and a damaged file must fail its read with DATA_LOSS
    rather than serve wrong vectors. (A file damaged while it stays mapped is not re-checked.)

    Args:
        store: Where the files live.
        budget_bytes: Evict least recently used files while the open ones map more than this.
        max_files: ...or while more than this many are open (each mapping holds a file descriptor);
            default: half the process's open files limit (:func:`mapped_files_budget`).
    """

    def __init__(self, store: BlobStore, budget_bytes: int, max_files: int | None = None) -> None:
        self._store = store
        self._budget = budget_bytes
        self._max_files = mapped_files_budget() if max_files is None else max(1, max_files)
        self._lock = threading.Lock()
        self._open: OrderedDict[str, ClusterFile] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> ClusterFile:
        """The open file under ``key``, mapping it if needed.

        Raises:
            DataLossError: The file is missing or damaged.
        """
        with self._lock:
            cached = self._open.get(key)
            if cached is not None:
                self._open.move_to_end(key)
                return cached
        opened = ClusterFile.open(self._store, key, verify=True)
        with self._lock:
            cached = self._open.get(key)
            if cached is not None:  # another thread opened it meanwhile
                return cached
            self._open[key] = opened
            self._bytes += opened.nbytes
            while (self._bytes > self._budget or len(self._open) > self._max_files) and len(self._open) > 1:
                _, evicted = self._open.popitem(last=False)
                self._bytes -= evicted.nbytes
        return opened

    def forget(self, keys: set[str]) -> None:
        """Drop files that are no longer referenced (deleted by garbage collection)."""
        with self._lock:
            for key in keys:
                evicted = self._open.pop(key, None)
                if evicted is not None:
                    self._bytes -= evicted.nbytes

    @property
    def mapped_bytes(self) -> int:
        """Bytes of the files currently held open."""
        return self._bytes

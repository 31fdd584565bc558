"""The C allocator's settings for a serving process, and handing memory freed by builds back.

**Serving** (:func:`tune_for_server`). Each upsert passes blocks of one to two megabytes through the
allocator (gRPC's receive buffers, the request's bytes, the decoded matrix) on whichever of the server's
threads handles it. glibc gives threads their own arenas and, by default, hands an arena's free top back
to the kernel once it exceeds a few megabytes, so the next request's buffers are fresh pages that the
kernel must fault in and zero again. Measured (``bench/allocator.py``, section "allocator" of
bench/RESULTS.md) on a grpcio server that does nothing with 1.6 MB requests from 8 threads: 270-500 page
faults and 1.5-3 ms of kernel time per request with glibc's defaults, 35-75 faults and 0.6-0.8 ms with
these settings; the engine's kernel time per ingested record fell by 10-60% over three runs (its records/s
moved less than the machine's noise). ``pinecone-rag serve`` therefore raises the trim threshold (and
fixes the mmap threshold at glibc's ceiling, since setting either turns glibc's adaptive thresholds off):
each arena may keep up to ``SERVER_TRIM_THRESHOLD`` of free memory for reuse. An embedded engine leaves
its host's allocator alone.

**After builds** (:func:`release_free_memory`). A build copies a namespace's vectors several times over
(gathering, k-means rounds, file writes) and frees the copies when it publishes. glibc's allocator keeps
much of that freed memory: after freeing a large block it raises its threshold for serving blocks from
``mmap`` (up to 32 MiB), so later arrays of a few megabytes come from heaps it rarely shrinks. Measured at
1M x 128 after ingest and builds: 1.3 GB of the process's resident memory was such free heap, returned by
one ``malloc_trim(0)``. The engine calls it once writes have stopped for ``EngineConfig.release_idle_s``,
not after each build: while writes come in, they reuse that memory instead of faulting in fresh pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)


# mallopt parameters (malloc.h) and the values a serving process uses.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
SERVER_TRIM_THRESHOLD = 128 << 20
"""Free memory an arena keeps at its top before trimming it (glibc's default starts at 128 KiB)."""
SERVER_MMAP_THRESHOLD = 32 << 20
"""Blocks at least this big are mapped on their own (glibc's ceiling for its adaptive threshold)."""


@cache
def _libc() -> ctypes.CDLL | None:
    """The C library, on Linux; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def tune_for_server() -> bool:
    """Keep freed request-sized blocks in the allocator's arenas for reuse; whether it could (glibc only).

    For processes that only serve (``pinecone-rag serve``): see the module docstring for why and what it
    costs.
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)  # musl and others have none
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mapped: int = mallopt(_M_MMAP_THRESHOLD, SERVER_MMAP_THRESHOLD)
    trimmed: int = mallopt(_M_TRIM_THRESHOLD, SERVER_TRIM_THRESHOLD)
    return mapped == 1 and trimmed == 1


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """The C library's ``malloc_trim`` (glibc), or None on other platforms and C libraries."""
    function = getattr(_libc(), "malloc_trim", None)  # musl and others have no malloc_trim
    if function is None:
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    trim: Callable[[int], int] = function
    return trim


def release_free_memory() -> bool:
    """Return free heap memory to the operating system where the C library allows; whether it could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


__all__ = ["SERVER_MMAP_THRESHOLD", "SERVER_TRIM_THRESHOLD", "release_free_memory", "tune_for_server"]

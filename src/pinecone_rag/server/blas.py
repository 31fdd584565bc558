"""One BLAS thread per query: the engine's concurrency comes from running queries in parallel.

A multi-threaded BLAS in every query thread oversubscribes the cores. On this project's 2-core machine a
cluster scan (4,000 x 128 matrix-vector product) took 14 ms with OpenBLAS's default threads under load
and 0.5 ms with one thread; with 8 queries in flight, throughput was 3x lower (measured). The limit is
process-wide (BLAS libraries keep one setting), so an embedded engine applies it to its host process too.
"""

from __future__ import annotations

import threading

_applied: set[int] = set()
_lock = threading.Lock()


def limit_blas_threads(threads: int) -> None:
    """Limit every loaded BLAS library to ``threads`` threads (0 leaves them alone); once per value."""
    if threads <= 0:
        return
    with _lock:
        if threads in _applied:
            return
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 - only servers need it

        threadpool_limits(limits=threads, user_api="blas")
        _applied.clear()
        _applied.add(threads)

"""The process's limit on open files: raised at start-up, and the share cluster mappings may use.

Every memory-mapped cluster file holds a file descriptor (CPython's ``mmap`` keeps a duplicate of it),
so a large namespace of small clusters needs thousands. Databases commonly raise the soft limit to the
hard limit at start; the cluster cache then keeps at most half of it, leaving the rest to sockets, logs
and the write-ahead logs of every namespace.
"""

from __future__ import annotations

import logging
import sys

if sys.platform != "win32":  # Windows has no RLIMIT_NOFILE
    import resource

logger = logging.getLogger(__name__)

CEILING = 1 << 20
"""The highest soft limit this module asks for, whatever the hard limit allows."""
FALLBACK = 1024
"""What to assume where the limit cannot be read."""


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files towards the hard limit (at most :data:`CEILING`).

    Returns:
        The soft limit in force afterwards.
    """
    if sys.platform == "win32":
        return FALLBACK
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CEILING if hard == resource.RLIM_INFINITY else min(hard, CEILING)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft if soft != resource.RLIM_INFINITY else CEILING
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:
        logger.warning("could not raise the open files limit from %d to %d: %s", soft, wanted, exc)
        return soft
    return wanted


def mapped_files_budget() -> int:
    """How many cluster files the cache may keep mapped: half the current soft limit, at least 64."""
    if sys.platform == "win32":
        return FALLBACK // 2
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = CEILING
    return max(64, soft // 2)


__all__ = ["CEILING", "FALLBACK", "mapped_files_budget", "raise_open_files_limit"]

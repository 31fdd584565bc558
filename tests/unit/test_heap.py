"""Handing freed heap memory back to the operating system after builds."""

from __future__ import annotations

import platform

import pytest

from pinecone_rag.server.heap import release_free_memory, tune_for_server


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_trims() -> None:
    """On glibc the trim is found and runs (what it frees depends on the heap: measured in heap.py)."""
    assert release_free_memory()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_server_settings() -> None:
    """``pinecone-rag serve`` can set both thresholds (mallopt accepts the values)."""
    assert tune_for_server()


def test_release_is_harmless_anywhere() -> None:
    """Calling it twice, or where it cannot trim, changes nothing else."""
    first = release_free_memory()
    assert release_free_memory() is first

"""What ``add_texts`` hands the client: a lazily embedded record stream, and its failure report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pinecone_rag import RecordError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pinecone_rag import UpsertResult


def raise_failed(result: UpsertResult) -> None:
    """Raise :class:`RecordError` naming the records the client could not write, if any."""
    if not result.ok:
        first = result.failed[0].error
        raise RecordError(
            f"{len(result.failed_ids)} records were not written (first error: {first}); "
            f"ids: {result.failed_ids[:10]}{' ...' if len(result.failed_ids) > 10 else ''}"
        ) from first


class LazyRecords:
    """A sized, lazily embedded record stream, so the client can batch it and show a progress bar."""

    def __init__(self, count: int, chunks: Callable[[], Iterator[list[dict[str, Any]]]]) -> None:
        self._count = count
        self._chunks = chunks

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for chunk in self._chunks():
            yield from chunk

"""What ``add_texts`` hands the client: a lazily embedded record stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


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

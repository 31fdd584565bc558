"""Run upsert batches concurrently with bounded memory, collecting failures instead of raising them.

No I/O happens here: the caller injects ``send``, which writes one batch and returns the count written.
At most ``max_concurrency`` batches exist at once, because the next batch is pulled from the (lazy)
iterator only when a send finishes. A failed send becomes a :class:`~pinecone_rag.models.FailedBatch`
and the run goes on; an error raised by the iterator itself (a malformed record: the caller's bug, not
the service's) stops the run and is raised once the sends in flight have finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import sys
from collections.abc import AsyncIterable
from concurrent.futures import FIRST_COMPLETED, CancelledError, Executor, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from pinecone_rag.errors import ConfigurationError
from pinecone_rag.models import FailedBatch, UpsertResult

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator

    from pinecone_rag.client._records import RecordBatch

logger = logging.getLogger(__name__)

# The auto progress bar stays off for inputs that fit in a single request.
_ONE_BATCH = 1000


class _Tally:
    """Counts written records and failed batches as sends finish."""

    def __init__(self, on_progress: Callable[[int], None] | None) -> None:
        self.upserted = 0
        self.failed: list[FailedBatch] = []
        self._on_progress = on_progress

    def add(self, batch: RecordBatch, outcome: Future[int] | asyncio.Future[int]) -> None:
        # A send cancelled by someone else failed; a BaseException it raised (KeyboardInterrupt) propagates.
        error = CancelledError("the send was cancelled") if outcome.cancelled() else outcome.exception()
        if error is None:
            self.upserted += outcome.result()
        elif isinstance(error, Exception):
            self.failed.append(FailedBatch(list(batch.ids), error))
        else:
            raise error
        if self._on_progress is not None:
            self._on_progress(len(batch))

    def result(self) -> UpsertResult:
        result = UpsertResult(self.upserted, self.failed)
        if self.failed:
            # A caller that does not look at the result still hears of it (nothing is dropped silently).
            logger.warning("upsert: %s", result.describe_failures())
        return result


def _check_concurrency(max_concurrency: int) -> None:
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ConfigurationError(f"max_concurrency must be a positive integer, got {max_concurrency!r}.")


def run_batches(
    batches: Iterable[RecordBatch],
    send: Callable[[RecordBatch], int],
    *,
    max_concurrency: int = 8,
    executor: Executor | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> UpsertResult:
    """Send batches on a thread pool, at most ``max_concurrency`` at a time.

    The next batch is pulled from ``batches`` (on the calling thread) only when a send finishes, so a
    lazy iterator stays lazy and memory stays bounded.

    Args:
        batches: The batches, typically from :func:`~pinecone_rag.client._records.iter_batches`.
        send: Writes one batch and returns how many records were written; raises on failure.
        max_concurrency: Batches in flight at once.
        executor: The pool to run ``send`` on (default: a pool of ``max_concurrency`` threads, shut
            down on return).
        on_progress: Called on the calling thread with the size of each batch that finished, whether
            it was written or failed.

    Returns:
        The total of ``send``'s counts and one FailedBatch (ids and exception) per failed send.

    Raises:
        RecordError: Or anything else the iterator raises, after the sends in flight have finished
            (their records may be written).
        KeyboardInterrupt: Raised at once; queued sends are cancelled and running ones are not awaited.
    """
    _check_concurrency(max_concurrency)
    pool = executor if executor is not None else ThreadPoolExecutor(max_concurrency, "pinecone-rag-upsert")
    tally = _Tally(on_progress)
    in_flight: dict[Future[int], RecordBatch] = {}
    iterator = iter(batches)
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < max_concurrency:
                try:
                    batch = next(iterator, None)
                except Exception:
                    _finish(in_flight, tally)
                    raise
                if batch is None:
                    exhausted = True
                else:
                    in_flight[pool.submit(send, batch)] = batch
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                tally.add(in_flight.pop(future), future)
    except BaseException:
        for future in in_flight:
            future.cancel()
        if executor is None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if executor is None:
        pool.shutdown(wait=True)
    return tally.result()


def _finish(in_flight: dict[Future[int], RecordBatch], tally: _Tally) -> None:
    """Wait for every send in flight and count it."""
    wait(in_flight)
    for future, batch in list(in_flight.items()):
        del in_flight[future]
        tally.add(batch, future)


async def arun_batches(
    batches: Iterable[RecordBatch] | AsyncIterable[RecordBatch],
    send: Callable[[RecordBatch], Awaitable[int]],
    *,
    max_concurrency: int = 8,
    on_progress: Callable[[int], None] | None = None,
) -> UpsertResult:
    """Send batches as asyncio tasks, at most ``max_concurrency`` at a time: :func:`run_batches` for asyncio.

    A plain iterator is advanced on the event loop, so batch preparation runs between sends.

    Args:
        batches: The batches, from a plain or an async iterable.
        send: Writes one batch and returns how many records were written; raises on failure.
        max_concurrency: Batches in flight at once.
        on_progress: Called with the size of each batch that finished, written or failed.

    Returns:
        The total of ``send``'s counts and one FailedBatch per failed send.

    Raises:
        RecordError: Or anything else the iterator raises, after the sends in flight have finished.
        asyncio.CancelledError: When the caller is cancelled; the sends in flight are cancelled first.
    """
    _check_concurrency(max_concurrency)
    source = _aiter(batches)
    tally = _Tally(on_progress)
    in_flight: dict[asyncio.Future[int], RecordBatch] = {}
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < max_concurrency:
                try:
                    batch = await anext(source, None)
                except Exception:
                    await _afinish(in_flight, tally)
                    raise
                if batch is None:
                    exhausted = True
                else:
                    in_flight[asyncio.ensure_future(send(batch))] = batch
            if not in_flight:
                break
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                tally.add(in_flight.pop(task), task)
    except BaseException:
        for task in in_flight:
            task.cancel()
        # Await the cancelled sends so none outlives the call; their outcomes are irrelevant now.
        await asyncio.gather(*in_flight, return_exceptions=True)
        raise
    return tally.result()


async def _afinish(in_flight: dict[asyncio.Future[int], RecordBatch], tally: _Tally) -> None:
    if in_flight:
        await asyncio.wait(in_flight)
    for task, batch in list(in_flight.items()):
        del in_flight[task]
        tally.add(batch, task)


def _aiter(batches: Iterable[RecordBatch] | AsyncIterable[RecordBatch]) -> AsyncIterator[RecordBatch]:
    if isinstance(batches, AsyncIterable):
        return aiter(batches)
    return _from_sync(iter(batches))


async def _from_sync(iterator: Iterator[RecordBatch]) -> AsyncIterator[RecordBatch]:
    for batch in iterator:
        yield batch


def _in_jupyter() -> bool:
    return "ipykernel" in sys.modules


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _noop(_count: int) -> None:
    """Progress sink used when no bar is shown."""


@contextlib.contextmanager
def progress_bar(total: int | None, enabled: bool | None, desc: str) -> Iterator[Callable[[int], None]]:
    """A tqdm progress bar counting records, or a no-op when disabled or tqdm is not installed.

    Args:
        total: The number of records, or None when unknown.
        enabled: True or False to force; None for automatic: on when stderr is a terminal or the code
            runs in a Jupyter kernel, and the input is unknown in size or bigger than one batch.
        desc: The bar's label.

    Yields:
        A function taking the number of records just completed.
    """
    if enabled is None:
        enabled = (total is None or total > _ONE_BATCH) and (_stderr_is_terminal() or _in_jupyter())
    if not enabled:
        yield _noop
        return
    try:
        # tqdm is optional; tqdm.auto picks the notebook widget inside Jupyter.
        tqdm = importlib.import_module("tqdm.auto").tqdm
    except ImportError:
        yield _noop
        return
    bar = tqdm(total=total, desc=desc, unit="rec", unit_scale=True)

    def advance(count: int) -> None:
        bar.update(count)

    try:
        yield advance
    finally:
        bar.close()


__all__ = ["arun_batches", "progress_bar", "run_batches"]

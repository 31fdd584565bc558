"""Unit tests of concurrent batch sending (pinecone_rag.client._batching)."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pytest

from pinecone_rag.client import _batching
from pinecone_rag.client._batching import arun_batches, progress_bar, run_batches
from pinecone_rag.client._records import RecordBatch, iter_batches
from pinecone_rag.errors import ConfigurationError, RecordError, UnavailableError, UpsertError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


def make_batches(count: int, size: int = 3) -> list[RecordBatch]:
    return [
        RecordBatch(
            ids=[f"b{b}-r{r}" for r in range(size)],
            dense=np.zeros((size, 2), dtype=np.float32),
            sparse=None,
            metadata=None,
            start=b * size,
        )
        for b in range(count)
    ]


class Source:
    """Batches handed out lazily, tracking how far ahead of the finished sends the consumer pulled."""

    def __init__(self, batches: list[RecordBatch]) -> None:
        self.batches = batches
        self.pulled = 0
        self.finished = 0
        self.max_ahead = 0
        self.lock = threading.Lock()

    def __iter__(self) -> Iterator[RecordBatch]:
        for batch in self.batches:
            with self.lock:
                self.pulled += 1
                self.max_ahead = max(self.max_ahead, self.pulled - self.finished)
            yield batch

    def done(self) -> None:
        with self.lock:
            self.finished += 1


def failing_send(bad: set[int]) -> Any:
    """A send that raises for the batches whose index (start // 3) is in ``bad``."""

    def send(batch: RecordBatch) -> int:
        if batch.start // 3 in bad:
            raise UnavailableError(f"batch {batch.start // 3} failed")
        return len(batch)

    return send


# ------------------------------------------------------------------------------------------ run_batches
def test_all_written_and_progress_reported() -> None:
    progress: list[int] = []
    result = run_batches(make_batches(10), len, max_concurrency=4, on_progress=progress.append)
    assert result.upserted_count == 30
    assert result.ok
    assert result.failed == []
    assert progress == [3] * 10


def test_count_comes_from_send() -> None:
    assert run_batches(make_batches(4), lambda batch: 1).upserted_count == 4


def test_empty_input() -> None:
    result = run_batches([], len)
    assert result.upserted_count == 0
    assert result.ok


def test_failures_are_collected_with_exact_ids() -> None:
    progress: list[int] = []
    result = run_batches(
        make_batches(8), failing_send({1, 6}), max_concurrency=3, on_progress=progress.append
    )
    assert result.upserted_count == 18
    assert not result.ok
    failed = sorted(result.failed, key=lambda failure: failure.ids[0])
    assert [failure.ids for failure in failed] == [
        ["b1-r0", "b1-r1", "b1-r2"],
        ["b6-r0", "b6-r1", "b6-r2"],
    ]
    assert [str(failure.error) for failure in failed] == [
        "(503 UNAVAILABLE) batch 1 failed",
        "(503 UNAVAILABLE) batch 6 failed",
    ]
    assert isinstance(failed[0].error, UnavailableError)
    assert sorted(result.failed_ids) == sorted(["b1-r0", "b1-r1", "b1-r2", "b6-r0", "b6-r1", "b6-r2"])
    assert sum(progress) == 24  # failed batches count as finished too


def test_failures_are_logged_and_raised_on_request(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pinecone_rag.client._batching"):
        result = run_batches(make_batches(8), failing_send({1, 6}), max_concurrency=1)
    expected = (
        "upsert: 6 of 24 records were not written (2 failed batches; first error: (503 UNAVAILABLE) batch 1 "
        "failed); ids: 'b1-r0', 'b1-r1', 'b1-r2', 'b6-r0', 'b6-r1', ..."
    )
    assert [record.getMessage() for record in caplog.records] == [expected]
    with pytest.raises(UpsertError, match=r"^6 of 24 records were not written") as caught:
        result.raise_for_failures()
    assert caught.value.failed_ids == ["b1-r0", "b1-r1", "b1-r2", "b6-r0", "b6-r1", "b6-r2"]
    assert caught.value.upserted_count == 18
    assert caught.value.__cause__ is result.failed[0].error


def test_a_clean_run_logs_nothing_and_passes_through(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pinecone_rag.client._batching"):
        result = run_batches(make_batches(4), len, max_concurrency=2)
    assert result.raise_for_failures() is result
    assert caplog.records == []


def test_sends_run_concurrently_up_to_the_limit() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def send(batch: RecordBatch) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1
        return len(batch)

    assert run_batches(make_batches(20), send, max_concurrency=4).upserted_count == 60
    assert peak == 4


def test_pulls_at_most_max_concurrency_ahead() -> None:
    source = Source(make_batches(30))

    def send(batch: RecordBatch) -> int:
        time.sleep(0.001)
        source.done()
        return len(batch)

    result = run_batches(source, send, max_concurrency=2)
    assert result.upserted_count == 90
    assert source.max_ahead <= 2


def test_lazy_record_iterator_is_consumed_lazily() -> None:
    consumed = 0
    sent_when_consumed: list[tuple[int, int]] = []
    sent = 0
    lock = threading.Lock()

    def records() -> Iterator[object]:
        nonlocal consumed
        for i in range(1000):
            consumed += 1
            yield (f"id-{i}", [float(i), 1.0])

    def send(batch: RecordBatch) -> int:
        nonlocal sent
        with lock:
            sent += len(batch)
            sent_when_consumed.append((consumed, sent))
        return len(batch)

    result = run_batches(iter_batches(records(), batch_size=10), send, max_concurrency=2)
    assert result.upserted_count == 1000
    # A send never sees the generator more than the two batches in flight ahead of what was written.
    assert all(read <= written + 2 * 10 for read, written in sent_when_consumed)


def test_record_error_propagates_after_in_flight_sends() -> None:
    finished: list[int] = []
    bad = RecordError("Record #7 ('x'): values must be a flat sequence of numbers, got str.")

    def batches() -> Iterator[RecordBatch]:
        yield from make_batches(2)
        raise bad

    def send(batch: RecordBatch) -> int:
        time.sleep(0.05)
        finished.append(batch.start)
        return len(batch)

    with pytest.raises(RecordError) as caught:
        run_batches(batches(), send, max_concurrency=4)
    assert caught.value is bad
    assert sorted(finished) == [0, 3]  # both in-flight sends completed before the error surfaced


def test_record_error_from_iter_batches_stops_the_run() -> None:
    sent: list[str] = []
    records: list[object] = [(f"id-{i}", [1.0]) for i in range(25)]
    records[22] = ("bad", "oops")

    def send(batch: RecordBatch) -> int:
        sent.extend(batch.ids)
        return len(batch)

    with pytest.raises(RecordError, match=r"^Record #22 \('bad'\): values must be a flat sequence"):
        run_batches(iter_batches(records, batch_size=10), send, max_concurrency=1)
    assert sent == [f"id-{i}" for i in range(20)]


def test_send_raising_record_error_is_a_failed_batch() -> None:
    def send(batch: RecordBatch) -> int:
        raise RecordError("rejected")

    result = run_batches(make_batches(2), send)
    assert len(result.failed) == 2


def test_keyboard_interrupt_does_not_wait_for_running_sends() -> None:
    release = threading.Event()

    def send(batch: RecordBatch) -> int:
        if batch.start == 0:
            release.wait(5)
            return len(batch)
        time.sleep(0.02)
        raise KeyboardInterrupt

    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_batches(make_batches(5), send, max_concurrency=2)
        assert time.monotonic() - began < 2
    finally:
        release.set()


def test_injected_executor_is_used_and_left_open() -> None:
    with ThreadPoolExecutor(2, thread_name_prefix="injected") as pool:
        names: set[str] = set()

        def send(batch: RecordBatch) -> int:
            names.add(threading.current_thread().name)
            return len(batch)

        assert run_batches(make_batches(6), send, max_concurrency=8, executor=pool).upserted_count == 18
        assert all(name.startswith("injected") for name in names)
        assert pool.submit(lambda: 5).result() == 5  # still usable


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_bad_concurrency(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_concurrency must be a positive integer"):
        run_batches(make_batches(1), len, max_concurrency=value)
    with pytest.raises(ConfigurationError, match="max_concurrency must be a positive integer"):
        asyncio.run(arun_batches(make_batches(1), asend_len, max_concurrency=value))


# ----------------------------------------------------------------------------------------- arun_batches
async def asend_len(batch: RecordBatch) -> int:
    await asyncio.sleep(0)
    return len(batch)


def async_failing_send(bad: set[int]) -> Any:
    sync = failing_send(bad)

    async def send(batch: RecordBatch) -> int:
        await asyncio.sleep(0.001 * (batch.start % 5))
        result: int = sync(batch)
        return result

    return send


async def agen(batches: list[RecordBatch]) -> AsyncIterator[RecordBatch]:
    for batch in batches:
        await asyncio.sleep(0)
        yield batch


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_async_twin_gives_the_same_result(concurrency: int) -> None:
    bad = {0, 4, 9}
    sync_progress: list[int] = []
    async_progress: list[int] = []
    sync_result = run_batches(
        make_batches(12), failing_send(bad), max_concurrency=concurrency, on_progress=sync_progress.append
    )
    for source in (make_batches(12), agen(make_batches(12))):
        async_progress.clear()
        async_result = asyncio.run(
            arun_batches(
                source,
                async_failing_send(bad),
                max_concurrency=concurrency,
                on_progress=async_progress.append,
            )
        )
        assert async_result.upserted_count == sync_result.upserted_count == 27
        assert sorted(async_result.failed_ids) == sorted(sync_result.failed_ids)
        assert sorted(str(f.error) for f in async_result.failed) == sorted(
            str(f.error) for f in sync_result.failed
        )
        assert sum(async_progress) == sum(sync_progress) == 36


def test_async_pulls_at_most_max_concurrency_ahead() -> None:
    source = Source(make_batches(30))
    in_flight = 0
    peak = 0

    async def send(batch: RecordBatch) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        source.done()
        return len(batch)

    assert asyncio.run(arun_batches(source, send, max_concurrency=2)).upserted_count == 90
    assert source.max_ahead <= 2
    assert peak == 2


def test_async_record_error_propagates_after_in_flight_sends() -> None:
    finished: list[int] = []

    async def batches() -> AsyncIterator[RecordBatch]:
        for batch in make_batches(2):
            yield batch
        await asyncio.sleep(0)
        raise RecordError("Record #6: id must be a non-empty string, got int.")

    async def send(batch: RecordBatch) -> int:
        await asyncio.sleep(0.02)
        finished.append(batch.start)
        return len(batch)

    with pytest.raises(RecordError, match=r"^Record #6: id must be"):
        asyncio.run(arun_batches(batches(), send))
    assert sorted(finished) == [0, 3]


def test_async_record_error_from_a_plain_iterator() -> None:
    records: list[object] = [("a", [1.0]), ("b", [1.0, 2.0])]
    with pytest.raises(RecordError, match=r"^Record #1 \('b'\): has 2 dense values"):
        asyncio.run(arun_batches(iter_batches(records, batch_size=1), asend_len))


def test_async_cancellation_cancels_in_flight_sends() -> None:
    started = 0
    cancelled = 0

    async def send(batch: RecordBatch) -> int:
        nonlocal started, cancelled
        started += 1
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return len(batch)

    async def main() -> None:
        task = asyncio.create_task(arun_batches(make_batches(10), send, max_concurrency=3))
        while started < 3:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    began = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - began < 2
    assert started == 3
    assert cancelled == 3


def test_async_send_cancelled_by_someone_else_is_a_failure() -> None:
    async def send(batch: RecordBatch) -> int:
        if batch.start == 3:
            current = asyncio.current_task()
            assert current is not None
            current.cancel()
            await asyncio.sleep(1)
        return len(batch)

    result = asyncio.run(arun_batches(make_batches(3), send))
    assert result.upserted_count == 6
    assert result.failed_ids == ["b1-r0", "b1-r1", "b1-r2"]
    assert str(result.failed[0].error) == "the send was cancelled"


# ------------------------------------------------------------------------------------------ progress_bar
class FakeTqdm:
    instances: ClassVar[list[FakeTqdm]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.updates: list[int] = []
        self.closed = False
        FakeTqdm.instances.append(self)

    def update(self, count: int) -> None:
        self.updates.append(count)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch: pytest.MonkeyPatch) -> type[FakeTqdm]:
    FakeTqdm.instances = []
    package = types.ModuleType("tqdm")
    auto = types.ModuleType("tqdm.auto")
    auto.__dict__["tqdm"] = FakeTqdm
    monkeypatch.setitem(sys.modules, "tqdm", package)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    return FakeTqdm


def test_progress_bar_counts_records(fake_tqdm: type[FakeTqdm]) -> None:
    with progress_bar(30, True, "upsert") as advance:
        run_batches(make_batches(10), len, on_progress=advance)
    [bar] = fake_tqdm.instances
    assert bar.kwargs["total"] == 30
    assert bar.kwargs["desc"] == "upsert"
    assert sum(bar.updates) == 30
    assert bar.closed


def test_progress_bar_closes_on_error(fake_tqdm: type[FakeTqdm]) -> None:
    def fail() -> None:
        with progress_bar(None, True, "upsert") as advance:
            advance(5)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert fake_tqdm.instances[0].closed


def test_disabled_progress_bar_is_a_no_op(fake_tqdm: type[FakeTqdm]) -> None:
    with progress_bar(10_000, False, "upsert") as advance:
        advance(5)
    assert fake_tqdm.instances == []


def test_progress_bar_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # makes the import fail
    with progress_bar(10_000, True, "upsert") as advance:
        advance(5)


def test_auto_progress_bar(fake_tqdm: type[FakeTqdm], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(_batching, "_stderr_is_terminal", lambda: False)
    with progress_bar(None, None, "upsert"):
        pass
    assert fake_tqdm.instances == []  # not a terminal, not a notebook

    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    with progress_bar(500, None, "upsert"):
        pass
    assert fake_tqdm.instances == []  # one batch: not worth a bar
    with progress_bar(None, None, "upsert"):
        pass
    with progress_bar(5000, None, "upsert"):
        pass
    assert len(fake_tqdm.instances) == 2

    monkeypatch.delitem(sys.modules, "ipykernel")
    monkeypatch.setattr(_batching, "_stderr_is_terminal", lambda: True)
    with progress_bar(5000, None, "upsert"):
        pass
    assert len(fake_tqdm.instances) == 3


def test_stderr_detection_survives_odd_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", None)
    assert not _batching._stderr_is_terminal()
    monkeypatch.setattr(sys, "stderr", object())
    assert not _batching._stderr_is_terminal()

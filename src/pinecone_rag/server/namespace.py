"""A durable namespace: its write-ahead log, group commit, layered state, and index builds.

Write path: encode the operation, append it to the WAL under the commit lock (this fixes its LSN and its
order), then wait until a group commit has fsynced it *and applied it* to the freshness layer. One writer
at a time is the commit leader: it takes every record appended so far, fsyncs once, applies them in LSN
order and wakes their writers. Concurrent writers therefore share one fsync, a write is visible only once
it is durable, and the acknowledgement comes after both.

Build path (:meth:`Namespace.build`, run by the engine's builder thread): freeze the freshness layer,
write the clusters it changes and publish a manifest covering its LSN, swap the new index in, then delete
what no manifest references and the WAL segments below the published LSN. On open, the namespace loads
the current manifest and replays the WAL records above its LSN.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from pinecone_rag.errors import (
    ApiError,
    DataLossError,
    InternalError,
    ResourceExhaustedError,
    UnavailableError,
)
from pinecone_rag.server import wal
from pinecone_rag.server.builder import Builder, BuildReport
from pinecone_rag.server.manifest import garbage_collect
from pinecone_rag.server.namespace_state import NamespaceState
from pinecone_rag.server.ops import Op, decode_op, encode_op
from pinecone_rag.server.published import PublishedIndex

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pinecone_rag.server.blobstore import BlobStore
    from pinecone_rag.server.cluster_cache import ClusterCache
    from pinecone_rag.server.engine_config import EngineConfig
    from pinecone_rag.server.records import IndexSpec

logger = logging.getLogger(__name__)

NAMESPACE_FILE = "NAMESPACE.json"
WAL_DIR = "wal"


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers so writes are not starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared."""
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock exclusively."""
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass(slots=True)
class _Pending:
    lsn: int
    op: Op
    result: int = 0
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a durable write returns: its LSN and how many records it wrote or matched."""

    lsn: int
    count: int


@dataclass(slots=True)
class NamespaceInfo:
    """What is stored about a namespace besides its records (``NAMESPACE.json``)."""

    name: str
    explicit: bool = False
    schema: dict[str, Any] | None = field(default=None)


class Namespace:
    """One namespace of one index: durable writes, exact reads, background index builds.

    Args:
        directory: The namespace's directory (``NAMESPACE.json`` and the WAL).
        info: Its name and schema.
        spec: The index's dimension, metric and type.
        store: The index's blob store; the namespace's objects live under the directory's name.
        cache: The index's open-file cache.
        config: Engine tuning.
    """

    def __init__(
        self,
        directory: Path,
        info: NamespaceInfo,
        spec: IndexSpec,
        *,
        store: BlobStore,
        cache: ClusterCache,
        config: EngineConfig,
    ) -> None:
        self.directory = directory
        self.info = info
        self.config = config
        self.prefix = directory.name
        self._store = store
        self._cache = cache
        self._builder = Builder(spec, config)
        self.lock = ReadWriteLock()
        self._cond = threading.Condition(threading.Lock())
        self._build_lock = threading.Lock()
        self._pending: deque[_Pending] = deque()
        self._committing = False
        self._failed: BaseException | None = None
        self._closed = False
        self.last_write = 0.0
        self.build_requested = False
        published = PublishedIndex.load(store, self.prefix, spec, cache)
        if published.manifest is not None:
            # A build that crashed before its publish left files no manifest references.
            garbage_collect(store, self.prefix, published.manifest, include_newer=True)
        self.state = NamespaceState(spec, published, config)
        records = wal.recover(directory / WAL_DIR)
        for record in records:
            if record.lsn <= published.indexed_lsn:
                continue  # already in the published cluster files
            try:
                self.state.apply(decode_op(record.payload), record.lsn)
            except DataLossError:
                raise  # a record that passed its CRC but does not decode is corruption, never skipped
            except ApiError:
                # A logged operation that no longer applies (it was acknowledged as applied, so this
                # can only follow a code change); skipping it keeps the rest of the namespace readable.
                logger.exception("skipping WAL record %d of %s", record.lsn, directory)
        self._applied_lsn = max(records[-1].lsn if records else 0, published.indexed_lsn)
        self.state.applied_lsn = self._applied_lsn
        self._next_lsn = self._applied_lsn + 1
        self._wal = wal.WalWriter(directory / WAL_DIR, self._next_lsn)

    @classmethod
    def create(
        cls,
        directory: Path,
        info: NamespaceInfo,
        spec: IndexSpec,
        *,
        store: BlobStore,
        cache: ClusterCache,
        config: EngineConfig,
    ) -> Namespace:
        """Create the namespace directory durably, then open it."""
        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / NAMESPACE_FILE).exists():
            # Objects of an earlier namespace of the same name whose deletion was interrupted.
            delete_objects(store, directory.name)
        write_info(directory, info)
        return cls(directory, info, spec, store=store, cache=cache, config=config)

    @property
    def indexed_lsn(self) -> int:
        """Every write up to this LSN is in the published cluster files."""
        return self.state.published.indexed_lsn

    @property
    def applied_lsn(self) -> int:
        """The newest LSN whose effects are visible to reads."""
        return self._applied_lsn

    def write(self, op: Op) -> WriteResult:
        """Log ``op`` durably, apply it, and return once both are done (group commit)."""
        payload = encode_op(op)
        self._check_capacity()
        with self._cond:
            if self._closed:
                raise UnavailableError("The namespace is being deleted or the server is shutting down.")
            if self._failed is not None:
                raise UnavailableError(
                    f"Writes to this namespace are stopped after a storage error: {self._failed}"
                )
            lsn = self._next_lsn
            try:
                self._wal.append(lsn, payload)
            except OSError as exc:
                raise InternalError(
                    f"The write-ahead log could not be written: {exc.strerror or exc}."
                ) from exc
            self._next_lsn += 1
            self.last_write = time.monotonic()
            pending = _Pending(lsn, op)
            self._pending.append(pending)
            while self._applied_lsn < lsn and pending.error is None:
                if self._committing:
                    self._cond.wait()
                    continue
                self._lead_commit()
        if pending.error is not None:
            raise pending.error
        return WriteResult(lsn, pending.result)

    def _lead_commit(self) -> None:
        """Run with ``self._cond`` held: fsync and apply everything appended so far."""
        batch = list(self._pending)
        self._pending.clear()
        if self._failed is not None:
            stopped = UnavailableError(
                f"Writes to this namespace are stopped after a storage error: {self._failed}"
            )
            for pending in batch:
                pending.error = stopped
            return
        self._committing = True
        self._cond.release()
        try:
            try:
                self._wal.sync()
            except OSError as exc:
                # The records may or may not be on disk; recovery decides. Stop accepting writes so
                # nothing is acknowledged on top of an unknown state.
                error = InternalError(f"The write-ahead log could not be synced: {exc.strerror or exc}.")
                for pending in batch:
                    pending.error = error
                self._failed = exc
                return
            with self.lock.write():
                for pending in batch:
                    try:
                        pending.result = self.state.apply(pending.op, pending.lsn)
                    except Exception as exc:  # a bug, not bad input: input was validated before logging
                        logger.exception("applying LSN %d failed", pending.lsn)
                        pending.error = InternalError(f"Applying the write failed: {exc}")
        finally:
            self._cond.acquire()
            self._committing = False
            if batch and self._failed is None:
                self._applied_lsn = batch[-1].lsn
            self._cond.notify_all()

    def _check_capacity(self) -> None:
        """Refuse writes while the freshness layers are full, until the builder catches up."""
        state, config = self.state, self.config
        if (
            state.freshness_records < config.freshness_max_records
            and state.freshness_bytes < config.freshness_max_bytes
        ):
            return
        self.build_requested = True
        raise ResourceExhaustedError(
            f"The namespace's freshness layer is full ({state.freshness_records} records not yet indexed); "
            "retry after a short wait while the index builder catches up.",
            retry_after=1.0,
        )

    @contextmanager
    def reading(self) -> Iterator[NamespaceState]:
        """Hold the state for a consistent read."""
        with self.lock.read():
            yield self.state

    # ----------------------------------------------------------------------------------------- builds
    def wants_build(self, now: float) -> bool:
        """Whether the builder should fold the freshness layer into cluster files now."""
        state, config = self.state, self.config
        if state.frozen is not None or state.active.empty or self._closed:
            return False
        if self.build_requested:
            return True
        pending = len(state.active.state) + len(state.active.deleted)
        threshold = max(config.build_min_records, int(config.build_growth * state.published.count))
        return pending >= threshold or now - self.last_write >= config.build_idle_s

    def build(self) -> BuildReport | None:
        """Run one build (see the module docstring); None when there was nothing to build.

        A failed build leaves the namespace as it was (the frozen layer folds back into the active one)
        and re-raises.
        """
        with self._build_lock:
            if self._closed:
                return None
            with self.lock.write():
                if self.state.active.empty:
                    self.build_requested = False
                    return None
                work = self.state.freeze()
            self.build_requested = False
            try:
                published, report = self._builder.build(self.state.published, work)
            except BaseException:
                with self.lock.write():
                    self.state.abandon_build()
                raise
            with self.lock.write():
                self.state.install(published)
            assert published.manifest is not None
            deleted = garbage_collect(self._store, self.prefix, published.manifest)
            self._cache.forget(set(deleted))
            wal.truncate_through(self.directory / WAL_DIR, published.indexed_lsn)
            return report

    def close(self) -> None:
        """Stop accepting writes, wait for the commit and the build in flight, close the WAL."""
        with self._cond:
            self._closed = True
            while self._committing:
                self._cond.wait()
            self._wal.close()
        with self._build_lock:
            pass


def delete_objects(store: BlobStore, prefix: str) -> None:
    """Delete every object of a namespace from the blob store."""
    for key in store.list(prefix + "/"):
        store.delete(key)


def write_info(directory: Path, info: NamespaceInfo) -> None:
    """Write ``NAMESPACE.json`` atomically (new file, fsync, rename, fsync the directory)."""
    body = orjson.dumps({"name": info.name, "explicit": info.explicit, "schema": info.schema})
    tmp = directory / (NAMESPACE_FILE + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(directory / NAMESPACE_FILE)
    wal.fsync_directory(directory)


def read_info(directory: Path) -> NamespaceInfo | None:
    """Read ``NAMESPACE.json``, or None when the directory holds no namespace."""
    path = directory / NAMESPACE_FILE
    if not path.exists():
        return None
    raw = orjson.loads(path.read_bytes())
    return NamespaceInfo(name=raw["name"], explicit=bool(raw.get("explicit")), schema=raw.get("schema"))

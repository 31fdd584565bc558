"""A durable namespace: its write-ahead log, group commit, layered state, and index builds.

Write path: encode the operation, append it to the WAL under the commit lock (this fixes its LSN and its
order), then wait until a group commit has fsynced it *and applied it* to the freshness layer. One writer
at a time is the commit leader: it takes every record appended so far, fsyncs once, applies them in LSN
order and wakes their writers. Once its fsync returns, the next leader may fsync the records appended
since while it applies (batches apply in the order they were synced). Concurrent writers therefore share
one fsync, a write is visible only once it is durable, and the acknowledgement comes after both. When an
append or an fsync fails (a full disk), the log is cut back to the end of the last successful fsync and
every write appended after it fails with UNAVAILABLE: none was acknowledged or applied, none can reappear
after a restart, and the next write starts from a clean log. Only if that cut fails too does the
namespace stop taking writes until restart.

Build path (:meth:`Namespace.build`, run by the engine's builder thread): freeze the freshness layer,
write the clusters it changes and publish a manifest covering its LSN, swap the new index in, then delete
what no manifest references and the WAL segments below the published LSN. On open, the namespace loads
the current manifest and replays the WAL records above its LSN.
"""

from __future__ import annotations

import errno
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
from pinecone_rag.server.manifest import garbage_collect, load_current
from pinecone_rag.server.namespace_state import NamespaceState
from pinecone_rag.server.ops import Op, decode_op, encode_op_parts
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

    Attributes:
        recovery_report: The damaged stretches of the WAL that opening skipped (their records were not
            applied), each also logged as an ERROR.

    Raises:
        DataLossError: Its manifest, ``CURRENT`` pointer or a cluster file is damaged, a WAL segment has
            an unknown format, intact WAL records are out of LSN order, or one does not decode.
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
        # A commit syncs the log, then applies. Only one syncs at a time (``_committing``), but the next
        # one may sync while the last is applying: synced batches take a ticket and apply in its order.
        self._committing = False
        self._next_ticket = 0
        self._apply_turn = 0
        self._failed: BaseException | None = None
        self._rollback_cause: OSError | None = None
        self._closed = False
        self.last_write = 0.0
        self.build_requested = False
        published = PublishedIndex.load(store, self.prefix, spec, cache)
        # A build that crashed before its publish left files no manifest references (and the next
        # build would collide with their names).
        if published.manifest is not None:
            garbage_collect(store, self.prefix, published.manifest, include_newer=True)
        else:
            delete_objects(store, self.prefix)
        published.keep_in_memory(config.memory_copy_max_bytes)
        self.state = NamespaceState(spec, published, config)
        recovery = wal.recover_log(directory / WAL_DIR)
        self.recovery_report: list[wal.WalDamage] = recovery.damage
        for damage in recovery.damage:
            lost = damage.lost_lsns
            covered = lost is not None and (not lost or lost[-1] <= published.indexed_lsn)
            logger.error(
                "namespace %r: %s%s",
                info.name,
                damage.describe(),
                " (already in the published index: nothing is missing)" if covered else "",
            )
        records = recovery.records
        for record in records:
            if record.lsn <= published.indexed_lsn:
                continue  # already in the published cluster files
            try:
                self.state.apply(decode_op(record.payload), record.lsn)
            except DataLossError as exc:
                # A record that passed its checksum but does not decode is corruption, never skipped.
                raise DataLossError(
                    f"WAL record {record.lsn} of {directory.name} passed its checksum but does not decode: "
                    f"{exc.message}"
                ) from exc
            except ApiError:
                # A logged operation that no longer applies (it was acknowledged as applied, so this
                # can only follow a code change); skipping it keeps the rest of the namespace readable.
                logger.exception("skipping WAL record %d of %s", record.lsn, directory)
        self._applied_lsn = max(recovery.next_lsn - 1, published.indexed_lsn)
        self.state.applied_lsn = self._applied_lsn
        self._next_lsn = self._applied_lsn + 1
        self._durable_lsn = self._applied_lsn  # the newest LSN synced (applied lags it while applying)
        self._wal = wal.WalWriter(directory / WAL_DIR, self._next_lsn)
        # Where the log ends durably: a failed write or sync cuts it back to here.
        self._durable = self._wal.position()

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
        """Log ``op`` durably, apply it, and return once both are done (group commit).

        Raises:
            UnavailableError: The log could not be written or synced (a full disk, typically): the write
                was neither acknowledged nor applied, and the log was cut back to its last synced
                record, so later writes go on once space is back.
        """
        payload = encode_op_parts(op)
        self._check_capacity()
        with self._cond:
            # A failed append may have left bytes behind that must be cut off before anything is added.
            while self._rollback_cause is not None and self._failed is None:
                if self._committing:
                    self._cond.wait()
                else:
                    self._roll_back()
            if self._closed:
                raise UnavailableError("The namespace is being deleted or the server is shutting down.")
            if self._failed is not None:
                raise self._stopped()
            lsn = self._next_lsn
            try:
                self._wal.append(lsn, payload)
            except OSError as exc:
                if self._wal.broken:
                    self._rollback_cause = exc
                    if not self._committing:
                        self._roll_back()
                raise storage_error(exc) from exc
            self._next_lsn += 1
            self.last_write = time.monotonic()
            pending = _Pending(lsn, op)
            self._pending.append(pending)
            while self._applied_lsn < lsn and pending.error is None:
                if self._committing or lsn <= self._durable_lsn:
                    # A commit is syncing, or this write is synced and being applied.
                    self._cond.wait()
                    continue
                self._lead_commit()
        if pending.error is not None:
            raise pending.error
        return WriteResult(lsn, pending.result)

    def _stopped(self) -> UnavailableError:
        return UnavailableError(
            f"Writes to this namespace are stopped after a storage error ({self._failed}) that left "
            "the end of its log unknown; restart the server once the disk is healthy."
        )

    def _lead_commit(self) -> None:
        """Run with ``self._cond`` held: fsync and apply everything appended so far."""
        if self._failed is not None:  # defensive: the failed rollback already failed every pending write
            for pending in self._pending:
                pending.error = self._stopped()
            self._pending.clear()
            return
        batch = list(self._pending)
        self._pending.clear()
        end = self._wal.position()
        self._committing = True
        self._cond.release()
        synced = False
        failure: OSError | None = None
        try:
            try:
                self._wal.sync()
            except OSError as exc:
                # The records may or may not be on disk. They are cut off below, so none of them comes
                # back at a restart, and their writers hear that nothing was written.
                logger.exception("syncing the WAL of namespace %r failed", self.info.name)
                failure = exc
                return
            with self._cond:
                # A rotation's fsync that failed meanwhile may have taken the error this sync should
                # have reported (Linux reports a writeback error once per file): the batch is in doubt.
                if self._rollback_cause is not None:
                    return
                # The batch is durable: the next commit may sync while this one applies.
                synced = True
                self._durable = end
                self._durable_lsn = batch[-1].lsn
                self._committing = False
                ticket = self._next_ticket
                self._next_ticket += 1
                self._cond.notify_all()
            self._apply_in_turn(batch, ticket)
        finally:
            self._cond.acquire()
            if not synced:
                self._committing = False
                self._pending.extendleft(reversed(batch))
                if self._rollback_cause is None:
                    self._rollback_cause = failure or OSError(errno.EIO, "syncing the log was interrupted")
            if self._rollback_cause is not None and not self._committing:
                self._roll_back()  # (a commit syncing meanwhile rolls back when it ends)
            self._cond.notify_all()

    def _apply_in_turn(self, batch: list[_Pending], ticket: int) -> None:
        """Apply a synced batch once the batches synced before it are applied (``self._cond`` not held)."""
        with self._cond:
            while self._apply_turn != ticket:
                self._cond.wait()
        try:
            with self.lock.write():
                for pending in batch:
                    try:
                        pending.result = self.state.apply(pending.op, pending.lsn)
                    except Exception as exc:  # a bug, not bad input: input was validated before logging
                        logger.exception("applying LSN %d failed", pending.lsn)
                        pending.error = InternalError(f"Applying the write failed: {exc}")
        finally:
            with self._cond:
                self._applied_lsn = batch[-1].lsn
                self._apply_turn += 1
                self._cond.notify_all()

    def _roll_back(self) -> None:
        """Run with ``self._cond`` held and no commit in flight: cut the log back to its durable end.

        Every write appended after that point fails (none was acknowledged): with the storage error
        when the cut succeeded, so that nothing of them can reappear after a restart; otherwise the
        namespace stops accepting writes until a restart, when recovery decides what the log holds.
        """
        cause = self._rollback_cause
        assert cause is not None
        self._rollback_cause = None
        doomed = list(self._pending)
        self._pending.clear()
        try:
            self._wal.rollback(self._durable)
        except OSError as exc:
            logger.exception("cutting the WAL of namespace %r back failed; writes stop", self.info.name)
            self._failed = exc
            error: ApiError = self._stopped()
        else:
            self._next_lsn = self._durable_lsn + 1
            error = storage_error(cause)
        for pending in doomed:
            pending.error = error
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
        if now - self.last_write >= config.build_idle_s:
            return True
        active = state.active.state
        pending = len(active) + len(state.active.deleted)
        if pending < max(config.build_min_records, int(config.build_growth * state.published.count)):
            return False
        # Writes are streaming in: one build once they pause costs less than several meanwhile (see
        # EngineConfig.build_stream_bytes), as long as the freshness layer stays small enough to scan.
        return active.nbytes >= config.build_stream_bytes or pending >= config.freshness_max_records // 4

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
                self._discard_failed_build()
                raise
            with self.lock.write():
                self.state.install(published)
            assert published.manifest is not None
            deleted = garbage_collect(self._store, self.prefix, published.manifest)
            self._cache.forget(set(deleted))
            wal.truncate_through(self.directory / WAL_DIR, published.indexed_lsn)
            return report

    def _discard_failed_build(self) -> None:
        """Delete what a failed build wrote (a full disk, say), so that its retry can reuse the names.

        Runs under the build lock: no other build of this namespace is writing. Only when ``CURRENT``
        still names the manifest in memory: if the failure came after the pointer flipped, those files
        are referenced and stay (the next open sorts it out).
        """
        current = self.state.published.manifest
        try:
            on_disk = load_current(self._store, self.prefix)
            if on_disk is None and current is None:
                delete_objects(self._store, self.prefix)
            elif on_disk is not None and current is not None and on_disk.version == current.version:
                deleted = garbage_collect(self._store, self.prefix, current, include_newer=True)
                self._cache.forget(set(deleted))
        except Exception:
            logger.exception("cleaning up after a failed build of namespace %r failed", self.info.name)

    def close(self) -> None:
        """Stop accepting writes, wait for the commit and the build in flight, close the WAL."""
        with self._cond:
            self._closed = True
            while self._committing or self._apply_turn != self._next_ticket:
                self._cond.wait()
            self._wal.close()
        with self._build_lock:
            pass


def storage_error(exc: OSError) -> UnavailableError:
    """The error of a write the disk refused: UNAVAILABLE, saying that nothing of it was stored."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UnavailableError(
            f"The disk is full ({reason}): the write could not be logged, so nothing of it was written "
            "or applied. Free some space and retry."
        )
    return UnavailableError(
        f"The disk refused the write ({reason}): it could not be logged, so nothing of it was written "
        "or applied. Retry later."
    )


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
    """Read ``NAMESPACE.json``, or None when the directory holds no namespace.

    Raises:
        DataLossError: The file does not parse.
    """
    path = directory / NAMESPACE_FILE
    if not path.exists():
        return None
    try:
        raw = orjson.loads(path.read_bytes())
        name = raw["name"]
        schema = raw.get("schema")
        if not isinstance(name, str) or not (schema is None or isinstance(schema, dict)):
            raise TypeError("unexpected field types")
        return NamespaceInfo(name=name, explicit=bool(raw.get("explicit")), schema=schema)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DataLossError(f"{path} is damaged: {exc}.") from None

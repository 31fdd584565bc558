"""The data plane of one index: namespaces, writes and reads, independent of any transport.

Both the REST routes and the gRPC service decode a request, call one method here, and encode the result.
Inputs arrive validated as far as they can be without the index (types, limits); the checks that need
the index (dimension, metric, namespace existence) happen here.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import hashlib
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from pinecone_rag.errors import AlreadyExistsError, DataLossError, InvalidArgumentError, NotFoundError
from pinecone_rag.server import wal
from pinecone_rag.server.blobstore import LocalBlobStore
from pinecone_rag.server.cluster_cache import ClusterCache
from pinecone_rag.server.engine_config import EngineConfig
from pinecone_rag.server.filters import Filter, parse_filter
from pinecone_rag.server.heap import release_free_memory
from pinecone_rag.server.namespace import (
    Namespace,
    NamespaceInfo,
    WriteResult,
    delete_objects,
    read_info,
    storage_error,
)
from pinecone_rag.server.ops import (
    DeleteAllOp,
    DeleteFilterOp,
    DeleteIdsOp,
    UpdateFilterOp,
    UpdateOp,
    UpsertOp,
)
from pinecone_rag.server.records import (
    DEFAULT_NAMESPACE,
    DEFAULT_NAMESPACE_ALIAS,
    FloatArray,
    IndexSpec,
    Metadata,
    Record,
    ScoredRecord,
    SparseVector,
    UpsertBatch,
)
from pinecone_rag.server.validation import check_dense

if TYPE_CHECKING:
    from pathlib import Path

NAMESPACES_DIR = "namespaces"
BLOBS_DIR = "blobs"
RELEASE_AFTER_RECORDS = 50_000
"""Builds of namespaces this big free enough copies to hand back to the OS (``heap``); smaller ones
leave little, and trimming a large heap is not free."""
logger = logging.getLogger(__name__)


def encode_token(last: str) -> str:
    """An opaque pagination token that resumes after ``last``."""
    return base64.urlsafe_b64encode(orjson.dumps({"after": last})).decode().rstrip("=")


def decode_token(token: str | None) -> str | None:
    """The position a pagination token resumes after (None for the first page)."""
    if not token:
        return None
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = raw["after"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise InvalidArgumentError("The pagination token is not valid.") from exc
    if not isinstance(after, str):
        raise InvalidArgumentError("The pagination token is not valid.")
    return after


def _page(sorted_items: list[str], after: str | None, limit: int) -> tuple[list[str], str | None]:
    start = 0 if after is None else bisect.bisect_right(sorted_items, after)
    page = sorted_items[start : start + limit]
    more = start + limit < len(sorted_items)
    return page, (encode_token(page[-1]) if more and page else None)


@dataclass(frozen=True, slots=True)
class NamespaceSummary:
    """A namespace as the namespaces API describes it."""

    name: str
    record_count: int
    schema: dict[str, Any] | None

    @property
    def indexed_fields(self) -> list[str] | None:
        """Names of the fields the schema marks filterable (None without a schema)."""
        if not self.schema:
            return None
        fields = self.schema.get("fields") or {}
        return sorted(name for name, props in fields.items() if (props or {}).get("filterable"))


@dataclass(frozen=True, slots=True)
class Page:
    """A page of ids and the token for the next page."""

    ids: list[str]
    next_token: str | None


def namespace_directory_name(name: str) -> str:
    """A file-system-safe directory name for a namespace (its real name lives in NAMESPACE.json)."""
    return "ns-" + hashlib.sha256(name.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class QuarantinedNamespace:
    """A namespace whose stored data could not be opened.

    The rest of the index serves normally. Every data-plane call naming this namespace answers
    DATA_LOSS with :attr:`reason`; it is left out of describe_index_stats and the namespace listing (its
    record count is unknown); deleting the namespace, or the index, removes its files.

    Attributes:
        name: The namespace's name (None when even ``NAMESPACE.json`` is unreadable).
        directory: Its directory, left untouched for inspection.
        reason: What is damaged.
    """

    name: str | None
    directory: Path
    reason: str

    def error(self) -> DataLossError:
        """The error every call on the namespace gets."""
        label = self.directory.name if self.name is None else display_namespace(self.name)
        return DataLossError(
            f"Namespace {label} is quarantined because its stored data is damaged: {self.reason} "
            "Its records cannot be served; deleting the namespace discards them."
        )


class IndexEngine:
    """All namespaces of one index, and the background builder that indexes them.

    Args:
        directory: The index's data directory.
        spec: Its dimension, metric and type.
        config: Storage and search tuning (defaults suit most uses).
    """

    def __init__(self, directory: Path, spec: IndexSpec, config: EngineConfig | None = None) -> None:
        self.directory = directory
        self.spec = spec
        self.config = config or EngineConfig()
        self._lock = threading.Lock()
        # Namespaces whose files are being removed: creating one of the same name waits, or its new
        # files (same directory, same blob prefix) would be removed with the old ones after its ack.
        self._deleting: set[str] = set()
        self._deleted = threading.Condition(self._lock)
        self._namespaces: dict[str, Namespace] = {}
        self._release_pending = False  # a large build freed memory not yet handed back
        self._quarantined: dict[str, QuarantinedNamespace] = {}  # by directory name
        root = directory / NAMESPACES_DIR
        root.mkdir(parents=True, exist_ok=True)
        self.store = LocalBlobStore(directory / BLOBS_DIR)
        self.cache = ClusterCache(self.store, self.config.cache_bytes)
        for leftover in root.glob("*.deleting"):
            shutil.rmtree(leftover, ignore_errors=True)
        for child in sorted(root.iterdir()):
            if not child.is_dir():
                continue
            info = None
            try:
                info = read_info(child)
                if info is not None:
                    self._namespaces[info.name] = self._open(child, info)
            except DataLossError as exc:
                # One damaged namespace must not keep the others (or the server) from starting.
                self._quarantine(
                    QuarantinedNamespace(None if info is None else info.name, child, exc.message)
                )
        live = {namespace.prefix for namespace in self._namespaces.values()} | set(self._quarantined)
        for key in self.store.list():
            prefix = key.split("/", 1)[0]
            if prefix not in live:  # objects of a namespace whose deletion was interrupted
                delete_objects(self.store, prefix)
                live.add(prefix)
        self._wake = threading.Condition(threading.Lock())
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if self.config.builder:
            self._thread = threading.Thread(target=self._build_loop, name="index-builder", daemon=True)
            self._thread.start()

    def _quarantine(self, quarantined: QuarantinedNamespace) -> None:
        self._quarantined[quarantined.directory.name] = quarantined
        logger.error("index %s: %s", self.directory.name, quarantined.error().message)

    def _open(self, directory: Path, info: NamespaceInfo, *, create: bool = False) -> Namespace:
        opener = Namespace.create if create else Namespace
        return opener(directory, info, self.spec, store=self.store, cache=self.cache, config=self.config)

    # ---------------------------------------------------------------------------------------- builder
    def _build_loop(self) -> None:
        """Fold freshness layers into cluster files as they fill or go idle."""
        failures: dict[str, float] = {}
        while True:
            with self._wake:
                if self._stopping.is_set():
                    return
                self._wake.wait(timeout=min(0.1, self.config.build_idle_s))
            if self._stopping.is_set():
                return
            now = time.monotonic()
            with self._lock:
                namespaces = list(self._namespaces.values())
            for namespace in namespaces:
                if self._stopping.is_set():
                    return
                if failures.get(namespace.prefix, 0.0) > now or not namespace.wants_build(now):
                    continue
                try:
                    report = namespace.build()
                    failures.pop(namespace.prefix, None)
                    if report is not None and report.records >= RELEASE_AFTER_RECORDS:
                        self._release_pending = True
                except Exception:
                    # The freshness layer still holds everything; try again later rather than spin.
                    logger.exception("building namespace %r failed", namespace.info.name)
                    failures[namespace.prefix] = time.monotonic() + 5.0
            self._release_when_quiet(now, namespaces)

    def _release_when_quiet(self, now: float, namespaces: list[Namespace]) -> bool:
        """Hand memory freed by large builds back to the OS once writes have stopped; whether it did.

        Kept while writes come in: they would fault it in again (``EngineConfig.release_idle_s``).
        """
        if not self._release_pending or any(
            now - namespace.last_write < self.config.release_idle_s for namespace in namespaces
        ):
            return False
        self._release_pending = False
        release_free_memory()
        return True

    def _nudge(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # ------------------------------------------------------------------------------------ namespaces
    @property
    def quarantined(self) -> list[QuarantinedNamespace]:
        """The namespaces that could not be opened because their stored data is damaged."""
        with self._lock:
            return list(self._quarantined.values())

    def recovery_report(self) -> list[tuple[str, wal.WalDamage]]:
        """The damaged WAL stretches the open namespaces skipped at start-up, by namespace name."""
        with self._lock:
            namespaces = list(self._namespaces.values())
        return [(ns.info.name, damage) for ns in namespaces for damage in ns.recovery_report]

    def _check_quarantine(self, name: str) -> None:
        """Raise DATA_LOSS for a call on a quarantined namespace (call with ``self._lock`` held)."""
        if self._quarantined:
            quarantined = self._quarantined.get(namespace_directory_name(name))
            if quarantined is not None:
                raise quarantined.error()

    def _existing(self, name: str) -> Namespace | None:
        with self._lock:
            self._check_quarantine(name)
            return self._namespaces.get(name)

    def _await_deletion(self, name: str) -> None:
        """Wait until no deletion of ``name`` is removing files (call with ``self._lock`` held)."""
        prefix = namespace_directory_name(name)
        while prefix in self._deleting:
            self._deleted.wait()

    def _for_write(self, name: str) -> Namespace:
        with self._lock:
            self._await_deletion(name)
            self._check_quarantine(name)
            namespace = self._namespaces.get(name)
            if namespace is None:
                namespace = self._create(NamespaceInfo(name))
            return namespace

    def _create(self, info: NamespaceInfo) -> Namespace:
        """Create a namespace's files and open it (call with ``self._lock`` held).

        Raises:
            UnavailableError: The disk refused the files (full, typically); what was written is removed,
                so neither a retry nor a restart trips over a half-made namespace.
        """
        directory = self.directory / NAMESPACES_DIR / namespace_directory_name(info.name)
        try:
            namespace = self._open(directory, info, create=True)
        except OSError as exc:
            self._namespaces.pop(info.name, None)
            with contextlib.suppress(OSError):
                _remove_tree(directory)
            raise storage_error(exc) from exc
        self._namespaces[info.name] = namespace
        return namespace

    def _visible(self, namespace: Namespace) -> bool:
        return namespace.info.explicit or len(namespace.state) > 0

    def _summary(self, namespace: Namespace) -> NamespaceSummary:
        with namespace.reading() as state:
            count = len(state)
        return NamespaceSummary(namespace.info.name, count, namespace.info.schema)

    def list_namespaces(
        self, *, prefix: str | None, limit: int, token: str | None
    ) -> tuple[list[NamespaceSummary], str | None, int]:
        """A page of visible namespaces in bitwise order, the next-page token, and the total count."""
        with self._lock:
            namespaces = list(self._namespaces.values())
        # Order, prefixes and page tokens use the listed names (the default namespace as __default__).
        visible = {display_namespace(ns.info.name): ns for ns in namespaces if self._visible(ns)}
        names = sorted(name for name in visible if not prefix or name.startswith(prefix))
        page, next_token = _page(names, decode_token(token), limit)
        return [self._summary(visible[name]) for name in page], next_token, len(names)

    def describe_namespace(self, name: str) -> NamespaceSummary:
        """The namespace's record count and schema, or NotFoundError."""
        namespace = self._existing(name)
        if namespace is None or not self._visible(namespace):
            raise NotFoundError(f"Namespace {display_namespace(name)} not found.")
        return self._summary(namespace)

    def create_namespace(self, name: str, schema: dict[str, Any] | None) -> NamespaceSummary:
        """Create an empty namespace explicitly (AlreadyExistsError if it has records or was created)."""
        if name == DEFAULT_NAMESPACE:
            raise InvalidArgumentError("The default namespace cannot be created; it always exists.")
        with self._lock:
            self._await_deletion(name)
            self._check_quarantine(name)
            existing = self._namespaces.get(name)
            if existing is not None and self._visible(existing):
                raise AlreadyExistsError(f"Namespace {name} already exists.")
            if existing is not None:
                existing.close()
            namespace = self._create(NamespaceInfo(name, explicit=True, schema=schema))
        return self._summary(namespace)

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace and all its records (NotFoundError if it does not exist).

        A quarantined namespace is deleted too, with its damaged files: the way out of DATA_LOSS.
        """
        prefix = namespace_directory_name(name)
        with self._lock:
            self._await_deletion(name)
            quarantined = self._quarantined.pop(prefix, None)
            namespace = self._namespaces.get(name)
            if quarantined is None:
                if namespace is None or not self._visible(namespace):
                    raise NotFoundError(f"Namespace {display_namespace(name)} not found.")
                del self._namespaces[name]
            self._deleting.add(prefix)
        try:
            if namespace is not None:
                namespace.close()
            _remove_tree(self.directory / NAMESPACES_DIR / prefix)
            # A later namespace of the same name starts again at manifest version 1, reusing object
            # keys: the cache must not hand it these files.
            keys = self.store.list(prefix + "/")
            self.cache.forget(set(keys))
            for key in keys:
                self.store.delete(key)
        finally:
            with self._lock:
                self._deleting.discard(prefix)
                self._deleted.notify_all()

    # ----------------------------------------------------------------------------------------- writes
    def upsert(self, namespace: str, batch: UpsertBatch) -> WriteResult:
        """Insert or overwrite records."""
        return self._for_write(namespace).write(UpsertOp(batch))

    def delete_ids(self, namespace: str, ids: list[str]) -> WriteResult:
        """Delete records by id; ids that do not exist are ignored."""
        target = self._existing(namespace)
        if target is None:
            return WriteResult(0, 0)
        return target.write(DeleteIdsOp(ids))

    def delete_by_filter(self, namespace: str, raw_filter: dict[str, Any]) -> WriteResult:
        """Delete every record matching a (validated, non-empty) filter."""
        target = self._existing(namespace)
        if target is None:
            return WriteResult(0, 0)
        return target.write(DeleteFilterOp(raw_filter))

    def delete_all(self, namespace: str) -> WriteResult:
        """Delete every record of a namespace."""
        target = self._existing(namespace)
        if target is None:
            return WriteResult(0, 0)
        return target.write(DeleteAllOp())

    def update(
        self,
        namespace: str,
        record_id: str,
        *,
        values: FloatArray | None,
        sparse: SparseVector | None,
        set_metadata: Metadata | None,
    ) -> WriteResult:
        """Update one record by id; a missing id matches nothing and writes nothing."""
        if self.spec.metric != "dotproduct" and sparse is not None:
            raise InvalidArgumentError(
                "Sparse values are supported only by indexes with the dotproduct metric; "
                f"this index uses {self.spec.metric}."
            )
        if self.spec.is_sparse and values is not None and len(values):
            raise InvalidArgumentError("Sparse indexes do not accept dense values.")
        if self.spec.is_sparse and sparse is not None and len(sparse.indices) == 0:
            raise InvalidArgumentError(
                f"Update of {record_id!r}: records of sparse indexes need sparse values "
                "with at least one entry."
            )
        if values is not None and not self.spec.is_sparse:
            assert self.spec.dimension is not None
            values = check_dense(values, self.spec.dimension, f"Update of {record_id!r}")
        target = self._existing(namespace)
        if target is None:
            return WriteResult(0, 0)
        with target.reading() as state:
            exists = state.get(record_id) is not None
        if not exists:
            return WriteResult(target.applied_lsn, 0)
        return target.write(UpdateOp(record_id, values, sparse, set_metadata))

    def update_by_filter(
        self, namespace: str, raw_filter: dict[str, Any], set_metadata: Metadata, *, dry_run: bool
    ) -> WriteResult:
        """Merge metadata into every record matching the filter; with ``dry_run`` only count them."""
        flt = parse_filter(raw_filter)
        assert flt is not None
        target = self._existing(namespace)
        if target is None:
            return WriteResult(0, 0)
        if dry_run:
            with target.reading() as state:
                return WriteResult(target.applied_lsn, len(state.matching_ids(flt)))
        return target.write(UpdateFilterOp(raw_filter, set_metadata))

    # ------------------------------------------------------------------------------------------ reads
    def query(
        self,
        namespace: str,
        *,
        top_k: int,
        vector: FloatArray | None,
        sparse: SparseVector | None,
        record_id: str | None,
        flt: Filter | None,
        include_values: bool,
        include_metadata: bool,
        scan_factor: float | None = None,
        max_candidates: int | None = None,
    ) -> tuple[list[ScoredRecord], int]:
        """The top-k matches and the LSN the read reflects.

        ``scan_factor`` and ``max_candidates`` tune how many clusters the planner scans (see
        :func:`pinecone_rag.server.planner.plan_query`); None means the server's default.
        """
        if sparse is not None and not self.spec.is_sparse and self.spec.metric != "dotproduct":
            raise InvalidArgumentError(
                "Queries with sparse values are supported only by indexes with the dotproduct metric; "
                f"this index uses {self.spec.metric}."
            )
        if vector is not None:
            if self.spec.is_sparse:
                if len(vector):
                    raise InvalidArgumentError(
                        "Sparse indexes are queried with a sparse vector, not dense values."
                    )
                vector = None
            else:
                assert self.spec.dimension is not None
                vector = check_dense(vector, self.spec.dimension, "Query vector")
        target = self._existing(namespace)
        if target is None:
            return [], 0
        with target.reading() as state:
            if record_id is not None:
                stored = state.get(record_id)
                if stored is None:
                    return [], target.applied_lsn
                vector, sparse = stored.values, stored.sparse if self.spec.is_sparse else sparse
            if vector is None and sparse is None:
                raise InvalidArgumentError(
                    "A query needs a vector, a sparse vector (sparse and hybrid indexes), or an id."
                    if self.spec.is_sparse or self.spec.metric == "dotproduct"
                    else "A query needs a vector or an id."
                )
            if vector is None and not self.spec.is_sparse:
                raise InvalidArgumentError("Queries on dense indexes need a dense vector or an id.")
            matches = state.search(
                vector=vector,
                sparse=sparse,
                top_k=top_k,
                flt=flt,
                include_values=include_values,
                include_metadata=include_metadata,
                scan_factor=scan_factor,
                max_candidates=max_candidates,
            )
            return matches, target.applied_lsn

    def fetch(self, namespace: str, ids: list[str]) -> tuple[list[Record], int]:
        """The records with these ids that exist (missing ids are left out)."""
        target = self._existing(namespace)
        if target is None:
            return [], 0
        with target.reading() as state:
            found = [state.get(record_id) for record_id in dict.fromkeys(ids)]
            return [record for record in found if record is not None], target.applied_lsn

    def fetch_by_metadata(
        self, namespace: str, flt: Filter, *, limit: int, token: str | None
    ) -> tuple[list[Record], str | None, int]:
        """Records matching a filter, a page at a time in id order."""
        after = decode_token(token)
        target = self._existing(namespace)
        if target is None:
            return [], None, 0
        with target.reading() as state:
            ids, next_token = _page(state.matching_ids(flt), after, limit)
            records = [state.get(record_id) for record_id in ids]
            return [r for r in records if r is not None], next_token, target.applied_lsn

    def list_ids(self, namespace: str, *, prefix: str | None, limit: int, token: str | None) -> Page:
        """A page of ids in bitwise order, optionally only those starting with ``prefix``."""
        after = decode_token(token)
        target = self._existing(namespace)
        if target is None:
            return Page([], None)
        with target.reading() as state:
            ids = state.sorted_ids()
        if prefix:
            start = bisect.bisect_left(ids, prefix)
            end = start
            while end < len(ids) and ids[end].startswith(prefix):
                end += 1
            ids = ids[start:end]
        page, next_token = _page(ids, after, limit)
        return Page(page, next_token)

    def stats(self) -> dict[str, int]:
        """Record counts of the namespaces that have records (the default namespace as ``""``)."""
        with self._lock:
            namespaces = list(self._namespaces.values())
        counts = {}
        for namespace in namespaces:
            with namespace.reading() as state:
                count = len(state)
            if count:
                counts[namespace.info.name] = count
        return counts

    def wait_until_indexed(self, timeout: float | None = None) -> bool:
        """Block until the index builder has published every write acknowledged so far.

        Returns False if ``timeout`` seconds passed first (or the builder is off). Benchmarks and tests
        use it to measure the built index rather than the freshness layer.
        """
        if self._thread is None:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            targets = [(ns, ns.applied_lsn) for ns in self._namespaces.values()]
        for namespace, _ in targets:
            namespace.build_requested = True
        self._nudge()
        for namespace, lsn in targets:
            while namespace.indexed_lsn < lsn:
                state = namespace.state
                if state.active.empty and state.frozen is None:
                    break  # the writes since the last build changed nothing that needs files
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                if state.frozen is None:
                    # Asked again only between builds (one that failed, or our request not yet taken):
                    # asked during a build, the request would outlive it and start another build at
                    # the next write, however small.
                    namespace.build_requested = True
                    self._nudge()
                time.sleep(0.005)
        return True

    def cluster_count(self, namespace: str) -> int:
        """How many clusters the namespace's published index has (0 when nothing is published)."""
        target = self._existing(namespace)
        if target is None:
            return 0
        with target.reading() as state:
            return len(state.published.cluster_ids)

    # -------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop the builder and close every namespace (acknowledged writes are already durable)."""
        self._stopping.set()
        self._nudge()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            namespaces = list(self._namespaces.values())
            self._namespaces.clear()
        for namespace in namespaces:
            namespace.close()

    def destroy(self) -> None:
        """Close and delete all data of the index."""
        self.close()
        _remove_tree(self.directory)


def display_namespace(name: str) -> str:
    """How a namespace is named in messages and listings (the default one as ``__default__``)."""
    return DEFAULT_NAMESPACE_ALIAS if name == DEFAULT_NAMESPACE else name


def _remove_tree(directory: Path) -> None:
    # Rename first: the rename is atomic, so a crash mid-delete never leaves a half-deleted namespace
    # or index that would be opened again; leftovers are swept at the next start.
    if not directory.exists():
        return
    doomed = directory.with_name(directory.name + ".deleting")
    directory.replace(doomed)
    wal.fsync_directory(directory.parent)
    shutil.rmtree(doomed, ignore_errors=True)

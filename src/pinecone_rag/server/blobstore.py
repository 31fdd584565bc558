"""Blob storage for index data: immutable objects plus atomically replaced pointers (layout in FORMAT.md).

Everything the index builder produces (cluster files, centroid blobs, manifests) is an *immutable object*:
written once under a new key and never modified; a key can only be deleted. The only mutable kind is a
*pointer*, a small object replaced as a whole by :meth:`BlobStore.publish` (used for ``CURRENT``, which
names a namespace's published manifest). Readers therefore never see a half-written object: an object
either does not exist yet or is complete, and a pointer holds either its old or its new value.

Keys are ``/``-separated relative paths. Each segment is non-empty, does not start with ``.`` (that
rules out ``.``, ``..`` and the store's own ``.tmp`` directory), and holds no NUL, backslash or control
character, so a key can never escape the store's root.

:class:`LocalBlobStore` keeps objects as files under a root directory. An object store backend (S3 and
the like) can follow behind the same :class:`BlobStore` protocol: ``put`` maps to a conditional PUT
(``If-None-Match: *``), ``publish`` to an unconditional PUT of a small object, ``open_mmap`` to a local
cache file.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import re
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, TypeAlias, runtime_checkable

from pinecone_rag.server.wal import fsync_directory

if TYPE_CHECKING:
    from collections.abc import Iterable

BytesLike: TypeAlias = bytes | bytearray | memoryview
"""A contiguous buffer of bytes accepted by :meth:`BlobStore.put`."""

TEMP_DIR: Final = ".tmp"
"""The directory under a local store's root that holds files being written."""

MAX_KEY_BYTES: Final = 1024
_MAX_SEGMENT_BYTES: Final = 255  # the usual file-name limit of local filesystems
_BAD_SEGMENT_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\\]")
# link() is how put refuses to overwrite atomically; these mean the filesystem cannot do it.
_NO_LINK_ERRNOS: Final = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}
)


class BlobExistsError(FileExistsError):
    """``put`` was asked to write a key that already holds an object (objects are immutable)."""


class BlobNotFoundError(FileNotFoundError):
    """No object is stored under the key."""


class InvalidKeyError(ValueError):
    """A key or prefix is not a valid relative ``/``-separated path inside the store."""


def validate_key(key: str) -> str:
    """Check that ``key`` is a valid object key and return it unchanged.

    Raises:
        InvalidKeyError: The key is empty, absolute, has an empty, dot-prefixed or oversized segment, or
            holds a NUL, backslash or control character.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"blob key must be a non-empty string, got {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"blob key is longer than {MAX_KEY_BYTES} bytes: {key[:64]!r}...")
    for segment in key.split("/"):
        _check_segment(segment, key)
    return key


def _check_segment(segment: str, key: str) -> None:
    if not segment:
        raise InvalidKeyError(f"blob key {key!r} is absolute or has an empty segment")
    if segment[0] == ".":
        raise InvalidKeyError(f"blob key {key!r} has a segment starting with '.'")
    if _BAD_SEGMENT_CHARS.search(segment):
        raise InvalidKeyError(f"blob key {key!r} holds a NUL, backslash or control character")
    try:
        encoded = segment.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"blob key {key!r} is not valid Unicode") from exc
    if len(encoded) > _MAX_SEGMENT_BYTES:
        raise InvalidKeyError(f"blob key {key!r} has a segment longer than {_MAX_SEGMENT_BYTES} bytes")


def validate_prefix(prefix: str) -> str:
    """Check a listing prefix: empty, or a key whose last segment may be partial or empty.

    Raises:
        InvalidKeyError: A complete segment of the prefix is invalid (see :func:`validate_key`).
    """
    if not prefix:
        return prefix
    head, _, tail = prefix.rpartition("/")
    if head:
        validate_key(head)
    elif prefix.startswith("/"):
        raise InvalidKeyError(f"blob prefix {prefix!r} is absolute")
    if tail:
        _check_segment(tail, prefix)
    return prefix


@runtime_checkable
class BlobStore(Protocol):
    """Immutable objects under ``/``-separated keys, plus atomically replaced pointers.

    Implementations are thread-safe.
    """

    def put(self, key: str, data: BytesLike | Iterable[BytesLike]) -> None:
        """Store a new immutable object, durably and atomically, from one buffer or a sequence of them.

        When ``put`` returns, the object and its name are durable. A crash before that leaves no object
        under ``key`` (possibly a temporary file that the store sweeps).

        Raises:
            BlobExistsError: ``key`` already holds an object; nothing is changed.
            InvalidKeyError: ``key`` is not a valid key.
        """
        ...

    def get(self, key: str) -> bytes:
        """The whole object.

        Raises:
            BlobNotFoundError: No object is stored under ``key``.
        """
        ...

    def open_mmap(self, key: str) -> memoryview:
        """A read-only view of the object, memory-mapped where the backend allows it.

        The mapping lives as long as the returned memoryview or anything derived from it (slices, numpy
        arrays from ``np.frombuffer``); it is unmapped when the last of them is garbage-collected, or by
        ``view.release()`` when nothing was derived from it. Deleting the object while it is mapped is
        safe on POSIX: the data stays readable through the mapping until it is released.

        Raises:
            BlobNotFoundError: No object is stored under ``key``.
        """
        ...

    def exists(self, key: str) -> bool:
        """Whether an object (or pointer) is stored under ``key``."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Every key (objects and pointers) that starts with ``prefix``, sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; deleting a missing key does nothing."""
        ...

    def size(self, key: str) -> int:
        """The object's length in bytes.

        Raises:
            BlobNotFoundError: No object is stored under ``key``.
        """
        ...

    def publish(self, pointer_key: str, value: bytes) -> None:
        """Create or atomically replace a pointer: readers see the old value or the new one, never a mix.

        Durable when it returns.
        """
        ...

    def read_pointer(self, pointer_key: str) -> bytes | None:
        """The pointer's current value, or None when it was never published."""
        ...


class LocalBlobStore:
    """A :class:`BlobStore` over a local directory: one file per key.

    Writes go to a uniquely named file in ``<root>/.tmp/``, which is fsynced and then linked (objects)
    or renamed (pointers) to its key's path; the directory is fsynced after, and any directory created
    on the way is made durable too. ``link`` fails when the target exists, which is what makes ``put``
    refuse to overwrite atomically, even against a concurrent writer. On filesystems without hard links
    ``put`` falls back to a check and a rename under a process-wide lock (then only one process may write
    the root, which the data directory lock already ensures).

    Opening the store sweeps ``.tmp``: whatever is left there is from writes that never finished. So only
    one ``LocalBlobStore`` may write a root at a time; open it once per data directory.

    Deletes are not fsynced: an object that reappears after a crash is unreferenced, and garbage
    collection removes it again. Empty directories are left in place, so a concurrent ``put`` never
    loses the directory it is writing into.

    Args:
        root: The directory that holds the objects; created if missing.
        sweep_temp: Remove leftovers of interrupted writes from ``.tmp`` (default True).
    """

    _fallback_lock: Final = threading.Lock()

    def __init__(self, root: Path, *, sweep_temp: bool = True) -> None:
        self._root = Path(root)
        self._temp = self._root / TEMP_DIR
        self._temp.mkdir(parents=True, exist_ok=True)
        if sweep_temp:
            for leftover in self._temp.iterdir():
                leftover.unlink(missing_ok=True)

    @property
    def root(self) -> Path:
        """The directory that holds the objects."""
        return self._root

    def path_of(self, key: str) -> Path:
        """The file that holds ``key`` (for diagnostics; callers read through the store)."""
        return self._root.joinpath(*validate_key(key).split("/"))

    def _write_temp(self, chunks: Iterable[BytesLike]) -> Path:
        temp = self._temp / f"{uuid.uuid4().hex}.tmp"
        try:
            with temp.open("xb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp

    def _ensure_parent(self, path: Path) -> None:
        parent = path.parent
        if parent.is_dir():
            return
        missing: list[Path] = []
        probe = parent
        while not probe.is_dir():
            missing.append(probe)
            probe = probe.parent
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                directory.mkdir()
            # A new directory entry is durable only once its parent is fsynced.
            fsync_directory(directory.parent)

    def put(self, key: str, data: BytesLike | Iterable[BytesLike]) -> None:
        """See :meth:`BlobStore.put`."""
        path = self.path_of(key)
        if path.exists():
            raise BlobExistsError(f"blob {key!r} already exists")
        chunks: Iterable[BytesLike] = (data,) if isinstance(data, bytes | bytearray | memoryview) else data
        temp = self._write_temp(chunks)
        try:
            self._ensure_parent(path)
            self._link_into_place(temp, path, key)
        finally:
            temp.unlink(missing_ok=True)
        fsync_directory(path.parent)

    def _link_into_place(self, temp: Path, path: Path, key: str) -> None:
        try:
            os.link(temp, path)
        except FileExistsError:
            raise BlobExistsError(f"blob {key!r} already exists") from None
        except OSError as exc:
            if exc.errno not in _NO_LINK_ERRNOS:
                raise
            with self._fallback_lock:
                if path.exists():
                    raise BlobExistsError(f"blob {key!r} already exists") from None
                temp.rename(path)

    def get(self, key: str) -> bytes:
        """See :meth:`BlobStore.get`."""
        path = self.path_of(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFoundError(f"blob {key!r} does not exist") from None

    def open_mmap(self, key: str) -> memoryview:
        """See :meth:`BlobStore.open_mmap`; an empty object gives an empty (unmapped) view."""
        path = self.path_of(key)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFoundError(f"blob {key!r} does not exist") from None
        with handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return memoryview(b"")
            # The mapping keeps its own reference to the file; closing the handle does not unmap it.
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return memoryview(mapped)

    def exists(self, key: str) -> bool:
        """See :meth:`BlobStore.exists`."""
        return self.path_of(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        """See :meth:`BlobStore.list`."""
        validate_prefix(prefix)
        head, _, _ = prefix.rpartition("/")
        base = self._root.joinpath(*head.split("/")) if head else self._root
        if not base.is_dir():
            return []
        keys: list[str] = []
        for directory, subdirs, files in os.walk(base):
            # Dot-prefixed names are never keys: skip .tmp and anything else the store does not own.
            subdirs[:] = [name for name in subdirs if not name.startswith(".")]
            relative = Path(directory).relative_to(self._root).as_posix()
            stem = "" if relative == "." else relative + "/"
            keys.extend(
                stem + name for name in files if not name.startswith(".") and (stem + name).startswith(prefix)
            )
        keys.sort()
        return keys

    def delete(self, key: str) -> None:
        """See :meth:`BlobStore.delete`."""
        self.path_of(key).unlink(missing_ok=True)

    def size(self, key: str) -> int:
        """See :meth:`BlobStore.size`."""
        path = self.path_of(key)
        try:
            return path.stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFoundError(f"blob {key!r} does not exist") from None

    def publish(self, pointer_key: str, value: bytes) -> None:
        """See :meth:`BlobStore.publish`."""
        path = self.path_of(pointer_key)
        temp = self._write_temp((value,))
        try:
            self._ensure_parent(path)
            temp.replace(path)
        finally:
            temp.unlink(missing_ok=True)
        fsync_directory(path.parent)

    def read_pointer(self, pointer_key: str) -> bytes | None:
        """See :meth:`BlobStore.read_pointer`."""
        try:
            return self.path_of(pointer_key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

"""A namespace's published index: manifests, the ``CURRENT`` pointer, centroid blobs, garbage collection.

The index builder publishes a namespace's index as a :class:`Manifest`: the LSN it covers, the centroid
blob, and the cluster files with their counts. All of them are immutable objects in a
:class:`~pinecone_rag.server.blobstore.BlobStore` under the namespace's prefix (layout in FORMAT.md)::

    <prefix>/CURRENT                                         pointer: the current manifest's key and CRC
    <prefix>/manifest-<indexed lsn:020d>-<version:020d>.json
    <prefix>/centroids-<version:020d>.f32
    <prefix>/clusters/<cluster id:010d>-<version:020d>.clu   (version = the manifest that first uses it)

**Crash safety.** Publishing is a sequence of steps, each durable before the next starts: write every
new cluster file and the centroid blob (each written to a temporary file, fsynced, linked into place,
directory fsynced), then write the manifest the same way, then atomically replace ``CURRENT`` (rename,
directory fsync). Readers only reach objects through ``CURRENT``. A crash before the pointer flips
leaves ``CURRENT`` naming the old manifest, whose objects are all intact: a new object is never modified
after it is written and an old one is only deleted by :func:`garbage_collect` once no current manifest
references it. So a half-written file is never referenced: what the crash leaves behind is either a
temporary file (swept when the store opens) or a complete but unreferenced object (collected later).
``CURRENT`` records the CRC of the manifest file it names, and every manifest and centroid blob carries
its own CRC, so damage is reported as :class:`~pinecone_rag.errors.DataLossError`, never served.

One publisher per prefix at a time (the namespace's index builder); readers may run concurrently.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson

from pinecone_rag.errors import DataLossError
from pinecone_rag.server.blobstore import BlobNotFoundError, validate_key
from pinecone_rag.server.cluster_file import METRIC_CODES

if TYPE_CHECKING:
    import numpy.typing as npt

    from pinecone_rag.server.blobstore import BlobStore

MANIFEST_MAGIC: Final = "PRAGMAN"
MANIFEST_VERSION: Final = 1
POINTER_MAGIC: Final = "PRAGCUR"
POINTER_VERSION: Final = 1
CURRENT: Final = "CURRENT"
CENTROIDS_MAGIC: Final = b"PRAGCEN\x00"
CENTROIDS_VERSION: Final = 1
CENTROIDS_HEADER_SIZE: Final = 64
# magic, version, flags, rows, dimension, crc32 of the payload, payload length; then the header's crc32
_CENTROIDS_HEADER: Final = struct.Struct("<8sHHIIIQ")
_CRC: Final = struct.Struct("<I")

_MANIFEST_NAME: Final = re.compile(r"manifest-(\d{20})-(\d{20})\.json")
_CENTROIDS_NAME: Final = re.compile(r"centroids-(\d{20})\.f32")
_CLUSTER_NAME: Final = re.compile(r"clusters/(\d{10})-(\d{20})\.clu")


# ---------------------------------------------------------------------------------------------------------
# Keys


def _check_prefix(prefix: str) -> str:
    return validate_key(prefix)


def current_key(prefix: str) -> str:
    """The key of the namespace's ``CURRENT`` pointer."""
    return f"{_check_prefix(prefix)}/{CURRENT}"


def manifest_key(prefix: str, manifest: Manifest) -> str:
    """The key a manifest is published under (sorts by indexed LSN, then version)."""
    return f"{_check_prefix(prefix)}/manifest-{manifest.indexed_lsn:020d}-{manifest.version:020d}.json"


def centroids_key(prefix: str, version: int) -> str:
    """The key of the centroid blob first used by manifest ``version``."""
    return f"{_check_prefix(prefix)}/centroids-{version:020d}.f32"


def cluster_key(prefix: str, cluster_id: int, version: int) -> str:
    """The key of a cluster file first used by manifest ``version``.

    :func:`garbage_collect` only recognises objects named by these helpers; others are never deleted.
    """
    return f"{_check_prefix(prefix)}/clusters/{cluster_id:010d}-{version:020d}.clu"


def _object_version(relative: str) -> int | None:
    """The manifest version encoded in an object's name, or None for names this module does not own."""
    match = _MANIFEST_NAME.fullmatch(relative)
    if match:
        return int(match.group(2))
    match = _CENTROIDS_NAME.fullmatch(relative) or _CLUSTER_NAME.fullmatch(relative)
    if match:
        return int(match.group(match.lastindex or 1))
    return None


# ---------------------------------------------------------------------------------------------------------
# The manifest


@dataclass(frozen=True, slots=True)
class ClusterRef:
    """One cluster file of a manifest.

    Attributes:
        cluster_id: Stable id of the cluster within the namespace.
        key: The cluster file's key in the blob store.
        count: Records in the file.
        centroid_row: The cluster's row in the centroid blob, or None (a flat, unclustered namespace).
    """

    cluster_id: int
    key: str
    count: int
    centroid_row: int | None


@dataclass(frozen=True, slots=True)
class Manifest:
    """A namespace's published index, as of ``indexed_lsn``.

    Attributes:
        version: Increases by at least one with every publish.
        indexed_lsn: Every write with an LSN up to this one is in the cluster files.
        dimension: Dense dimension, or None for sparse indexes.
        metric: ``cosine``, ``euclidean`` or ``dotproduct``.
        record_count: Live records the manifest holds (normally the sum of the cluster counts).
        centroids_key: The centroid blob, or None when no cluster has a centroid.
        clusters: The cluster files.
    """

    version: int
    indexed_lsn: int
    dimension: int | None
    metric: str
    record_count: int
    centroids_key: str | None
    clusters: tuple[ClusterRef, ...]

    def __post_init__(self) -> None:
        if self.version < 1 or self.indexed_lsn < 0 or self.record_count < 0:
            raise ValueError("manifest version must be >= 1, indexed_lsn and record_count >= 0")
        if self.metric not in METRIC_CODES:
            raise ValueError(f"unknown metric {self.metric!r}")
        if self.dimension is not None and self.dimension < 0:
            raise ValueError("dimension must be >= 0")
        if not isinstance(self.clusters, tuple):
            raise TypeError("clusters must be a tuple")
        if len({ref.cluster_id for ref in self.clusters}) != len(self.clusters):
            raise ValueError("cluster ids must be unique")
        if len({ref.key for ref in self.clusters}) != len(self.clusters):
            raise ValueError("cluster keys must be unique")
        for ref in self.clusters:
            validate_key(ref.key)
            if ref.count < 0 or ref.cluster_id < 0:
                raise ValueError(f"cluster {ref.cluster_id} has a negative id or count")
            if ref.centroid_row is not None and (self.centroids_key is None or ref.centroid_row < 0):
                raise ValueError(f"cluster {ref.cluster_id} has a centroid row but there is no centroid blob")
        if self.centroids_key is not None:
            validate_key(self.centroids_key)

    def referenced_keys(self) -> set[str]:
        """The keys of every object this manifest needs (cluster files and the centroid blob)."""
        keys = {ref.key for ref in self.clusters}
        if self.centroids_key is not None:
            keys.add(self.centroids_key)
        return keys

    def to_json(self) -> dict[str, Any]:
        """The JSON body of a manifest file."""
        return {
            "version": self.version,
            "indexed_lsn": self.indexed_lsn,
            "dimension": self.dimension,
            "metric": self.metric,
            "record_count": self.record_count,
            "centroids_key": self.centroids_key,
            "clusters": [
                {"id": ref.cluster_id, "key": ref.key, "count": ref.count, "centroid_row": ref.centroid_row}
                for ref in self.clusters
            ],
        }

    @classmethod
    def from_json(cls, raw: Any) -> Manifest:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: ``raw`` is not a valid manifest body.
        """
        try:
            return cls(
                version=_int(raw["version"]),
                indexed_lsn=_int(raw["indexed_lsn"]),
                dimension=None if raw["dimension"] is None else _int(raw["dimension"]),
                metric=str(raw["metric"]),
                record_count=_int(raw["record_count"]),
                centroids_key=None if raw["centroids_key"] is None else str(raw["centroids_key"]),
                clusters=tuple(
                    ClusterRef(
                        cluster_id=_int(item["id"]),
                        key=str(item["key"]),
                        count=_int(item["count"]),
                        centroid_row=None if item["centroid_row"] is None else _int(item["centroid_row"]),
                    )
                    for item in raw["clusters"]
                ),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed manifest: {exc!r}") from exc


def _int(value: Any) -> int:
    # bool is an int subclass, and a float here would mean the file was not written by this module.
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def encode_manifest(manifest: Manifest) -> bytes:
    """A manifest file: a JSON header line (magic, version, body length, body CRC), then the JSON body."""
    body = orjson.dumps(manifest.to_json())
    header = orjson.dumps(
        {"magic": MANIFEST_MAGIC, "version": MANIFEST_VERSION, "length": len(body), "crc32": zlib.crc32(body)}
    )
    return header + b"\n" + body + b"\n"


def decode_manifest(data: bytes, *, key: str = "<manifest>") -> Manifest:
    """Parse and check a manifest file.

    Raises:
        DataLossError: The file is truncated, fails its CRC or is not a valid manifest.
    """
    newline = data.find(b"\n")
    try:
        header = orjson.loads(data[:newline]) if newline >= 0 else None
        if not isinstance(header, dict) or header.get("magic") != MANIFEST_MAGIC:
            raise DataLossError(f"Manifest {key!r} is damaged: bad header.")
        if header.get("version") != MANIFEST_VERSION:
            raise DataLossError(
                f"Manifest {key!r} has format version {header.get('version')}; "
                f"this build reads {MANIFEST_VERSION}."
            )
        length = header["length"]
        body = data[newline + 1 : newline + 1 + length]
        if len(body) != length or data[newline + 1 + length :] != b"\n":
            raise DataLossError(f"Manifest {key!r} is damaged: truncated or extended.")
        if zlib.crc32(body) != header["crc32"]:
            raise DataLossError(f"Manifest {key!r} is damaged: CRC mismatch.")
        return Manifest.from_json(orjson.loads(body))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataLossError(f"Manifest {key!r} is damaged: {exc}.") from None


def read_manifest(store: BlobStore, key: str, *, expected_crc: int | None = None) -> Manifest:
    """Read and check the manifest under ``key``.

    Args:
        store: The blob store.
        key: The manifest's key.
        expected_crc: CRC-32 of the whole file, as ``CURRENT`` records it; checked when given.

    Raises:
        DataLossError: The manifest is missing or damaged.
    """
    try:
        data = store.get(key)
    except BlobNotFoundError:
        raise DataLossError(f"Manifest {key!r} is missing.") from None
    if expected_crc is not None and zlib.crc32(data) != expected_crc:
        raise DataLossError(f"Manifest {key!r} does not match the CRC that CURRENT recorded for it.")
    return decode_manifest(data, key=key)


def _decode_pointer(raw: bytes, key: str) -> tuple[str, int]:
    try:
        pointer = orjson.loads(raw)
        if not isinstance(pointer, dict) or pointer.get("magic") != POINTER_MAGIC:
            raise ValueError("bad magic")
        if pointer.get("version") != POINTER_VERSION:
            raise ValueError(f"format version {pointer.get('version')}; this build reads {POINTER_VERSION}")
        return validate_key(pointer["manifest"]), _int(pointer["crc32"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataLossError(f"Pointer {key!r} is damaged: {exc}.") from None


def load_current(store: BlobStore, prefix: str) -> Manifest | None:
    """The namespace's current manifest, or None when none was ever published.

    Raises:
        DataLossError: ``CURRENT`` is damaged, or names a manifest that is missing or damaged.
    """
    pointer_key = current_key(prefix)
    raw = store.read_pointer(pointer_key)
    if raw is None:
        return None
    key, crc = _decode_pointer(raw, pointer_key)
    return read_manifest(store, key, expected_crc=crc)


def publish_manifest(store: BlobStore, prefix: str, manifest: Manifest, *, check_refs: bool = True) -> str:
    """Write ``manifest`` and make it the namespace's current one; the pointer flips last.

    Every object the manifest references must already be durable in the store (``put`` returned).

    Args:
        store: The blob store.
        prefix: The namespace's key prefix.
        manifest: The new manifest; its version must exceed the current one's, and its indexed LSN must
            not go backwards.
        check_refs: Check that every referenced object exists before publishing (one ``exists`` each).

    Returns:
        The new manifest's key.

    Raises:
        ValueError: The version or LSN does not advance, or a referenced object is missing.
        DataLossError: The current manifest is damaged.
    """
    current = load_current(store, prefix)
    if current is not None:
        if manifest.version <= current.version:
            raise ValueError(f"manifest version {manifest.version} does not exceed current {current.version}")
        if manifest.indexed_lsn < current.indexed_lsn:
            raise ValueError(
                f"manifest indexed_lsn {manifest.indexed_lsn} is below current {current.indexed_lsn}"
            )
    if check_refs:
        missing = sorted(key for key in manifest.referenced_keys() if not store.exists(key))
        if missing:
            raise ValueError(f"manifest references objects that do not exist: {missing[:5]}")
    key = manifest_key(prefix, manifest)
    data = encode_manifest(manifest)
    if store.exists(key):
        # Left by a publish that crashed before flipping CURRENT: its version is above the current one,
        # so nothing references it, and it may differ from what this publish holds.
        store.delete(key)
    store.put(key, data)
    pointer = {"magic": POINTER_MAGIC, "version": POINTER_VERSION, "manifest": key, "crc32": zlib.crc32(data)}
    store.publish(current_key(prefix), orjson.dumps(pointer) + b"\n")
    return key


def garbage_collect(
    store: BlobStore, prefix: str, keep: Manifest, *, include_newer: bool = False
) -> list[str]:
    """Delete the namespace's manifests, centroid blobs and cluster files that ``keep`` does not use.

    Only objects named by :func:`manifest_key`, :func:`centroids_key` and :func:`cluster_key` are
    candidates, and by default only those whose version is at most ``keep.version``: objects of a newer
    version may belong to a build in progress. Pass ``include_newer=True`` when no builder can be running
    (when a namespace opens) to also remove what a crashed build left.

    The caller must make sure no reader still needs an older manifest's objects (e.g. a query that
    loaded it but has not yet mapped its cluster files); objects already mapped stay readable.

    Returns:
        The deleted keys, sorted.

    Raises:
        ValueError: ``keep`` is not the current manifest.
        DataLossError: The current manifest is damaged.
    """
    current = load_current(store, prefix)
    if current != keep:
        raise ValueError("garbage_collect must be given the current manifest")
    referenced = keep.referenced_keys() | {manifest_key(prefix, keep)}
    base = _check_prefix(prefix) + "/"
    deleted: list[str] = []
    for key in store.list(base):
        version = _object_version(key[len(base) :])
        if version is None or key in referenced or (version > keep.version and not include_newer):
            continue
        store.delete(key)
        deleted.append(key)
    return deleted


# ---------------------------------------------------------------------------------------------------------
# Centroids


def write_centroids(store: BlobStore, key: str, centroids: npt.NDArray[np.float32]) -> None:
    """Write a ``(k, d)`` centroid matrix as a new immutable object (little-endian float32).

    Raises:
        ValueError: ``centroids`` is not two-dimensional.
        BlobExistsError: ``key`` already exists.
    """
    block = np.ascontiguousarray(centroids, dtype="<f4")
    if block.ndim != 2:
        raise ValueError(f"centroids must be a (k, d) matrix, got shape {block.shape}")
    payload = block.reshape(-1).view(np.uint8).data  # flat bytes, also for k or d = 0
    rows, dimension = block.shape
    head = _CENTROIDS_HEADER.pack(
        CENTROIDS_MAGIC, CENTROIDS_VERSION, 0, rows, dimension, zlib.crc32(payload), payload.nbytes
    )
    header = head + _CRC.pack(zlib.crc32(head))
    store.put(key, [header, bytes(CENTROIDS_HEADER_SIZE - len(header)), payload])


def read_centroids(store: BlobStore, key: str) -> npt.NDArray[np.float32]:
    """Read a centroid blob: a read-only, C-contiguous ``(k, d)`` float32 array (a private copy).

    Raises:
        DataLossError: The blob is missing or damaged.
    """
    try:
        data = store.get(key)
    except BlobNotFoundError:
        raise DataLossError(f"Centroid blob {key!r} is missing.") from None
    head_size = _CENTROIDS_HEADER.size
    if len(data) < CENTROIDS_HEADER_SIZE:
        raise DataLossError(f"Centroid blob {key!r} is damaged: shorter than its header.")
    magic, version, _flags, rows, dimension, crc, length = _CENTROIDS_HEADER.unpack_from(data)
    (header_crc,) = _CRC.unpack_from(data, head_size)
    if magic != CENTROIDS_MAGIC or zlib.crc32(data[:head_size]) != header_crc:
        raise DataLossError(f"Centroid blob {key!r} is damaged: bad header.")
    if version != CENTROIDS_VERSION:
        raise DataLossError(
            f"Centroid blob {key!r} has format version {version}; this build reads {CENTROIDS_VERSION}."
        )
    payload = memoryview(data)[CENTROIDS_HEADER_SIZE:]
    if length != 4 * rows * dimension or payload.nbytes != length:
        raise DataLossError(f"Centroid blob {key!r} is damaged: wrong length.")
    if zlib.crc32(payload) != crc:
        raise DataLossError(f"Centroid blob {key!r} is damaged: CRC mismatch.")
    array = np.frombuffer(payload, dtype="<f4").reshape(rows, dimension).astype(np.float32, copy=True)
    array.flags.writeable = False
    return array

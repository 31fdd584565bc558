"""Write-ahead log segments: framing, checksums, appends and recovery (format in FORMAT.md).

A WAL is a directory of segment files named ``<first LSN, 20 digits>.wal``. Each segment starts with a
24-byte header and holds records ``length | crc32 | lsn | payload``. Appends go to the newest segment;
``sync`` makes every appended record durable. Recovery reads the segments in order and stops at the first
record that is torn or fails its checksum: in the newest segment that is a crash during an append, and the
tail is cut off; anywhere else it is corruption and is reported, never served.
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pinecone_rag.errors import DataLossError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

logger = logging.getLogger(__name__)

SEGMENT_MAGIC = b"PRAGWAL\x00"
SEGMENT_VERSION = 1
_SEGMENT_HEADER = struct.Struct("<8sHHQI")  # magic, version, flags, first lsn, crc32 of the previous fields
_RECORD_HEADER = struct.Struct("<IIQ")  # length of (lsn + payload), crc32 of (lsn + payload), lsn
_LSN = struct.Struct("<Q")
SEGMENT_HEADER_SIZE = _SEGMENT_HEADER.size
RECORD_HEADER_SIZE = _RECORD_HEADER.size
MAX_RECORD_BYTES = 1 << 30  # far above any valid request; a larger length can only be garbage
DEFAULT_SEGMENT_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class WalRecord:
    """One recovered record."""

    lsn: int
    payload: bytes


def segment_name(first_lsn: int) -> str:
    """The file name of the segment whose first record has ``first_lsn``."""
    return f"{first_lsn:020d}.wal"


def encode_segment_header(first_lsn: int) -> bytes:
    """The 24-byte header that opens every segment."""
    head = struct.pack("<8sHHQ", SEGMENT_MAGIC, SEGMENT_VERSION, 0, first_lsn)
    return head + struct.pack("<I", zlib.crc32(head))


def encode_record(lsn: int, payload: bytes) -> bytes:
    """Frame one record: ``length | crc32 | lsn | payload`` (little-endian)."""
    lsn_bytes = _LSN.pack(lsn)
    crc = zlib.crc32(payload, zlib.crc32(lsn_bytes))
    return struct.pack("<II", len(payload) + _LSN.size, crc) + lsn_bytes + payload


def _segments(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.wal") if p.stem.isdigit())


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Scan:
    records: list[WalRecord]
    valid_bytes: int
    clean: bool


def _scan_segment(path: Path) -> _Scan:
    data = path.read_bytes()
    if len(data) < SEGMENT_HEADER_SIZE:
        return _Scan([], 0, clean=False)
    magic, version, _flags, _first, crc = _SEGMENT_HEADER.unpack_from(data)
    if magic != SEGMENT_MAGIC or zlib.crc32(data[: SEGMENT_HEADER_SIZE - 4]) != crc:
        raise DataLossError(f"WAL segment {path} has a damaged header.")
    if version != SEGMENT_VERSION:
        raise DataLossError(
            f"WAL segment {path} has format version {version}; this build reads {SEGMENT_VERSION}."
        )
    records: list[WalRecord] = []
    offset = SEGMENT_HEADER_SIZE
    view = memoryview(data)
    while offset < len(data):
        if offset + RECORD_HEADER_SIZE > len(data):
            return _Scan(records, offset, clean=False)
        length, crc, lsn = _RECORD_HEADER.unpack_from(data, offset)
        end = offset + 8 + length
        if length < _LSN.size or length > MAX_RECORD_BYTES or end > len(data):
            return _Scan(records, offset, clean=False)
        if zlib.crc32(view[offset + 8 : end]) != crc:
            return _Scan(records, offset, clean=False)
        records.append(WalRecord(lsn, bytes(view[offset + RECORD_HEADER_SIZE : end])))
        offset = end
    return _Scan(records, offset, clean=True)


def recover(directory: Path) -> list[WalRecord]:
    """Read every intact record in LSN order, cutting a torn tail off the newest segment.

    Raises:
        DataLossError: a segment other than the newest is damaged, or LSNs are out of order.
    """
    segments = _segments(directory)
    out: list[WalRecord] = []
    for position, path in enumerate(segments):
        scan = _scan_segment(path)
        newest = position == len(segments) - 1
        if not scan.clean:
            if not newest:
                raise DataLossError(
                    f"WAL segment {path.name} is damaged at byte {scan.valid_bytes}; "
                    f"{len(out) + len(scan.records)} records before it are intact."
                )
            logger.warning("cutting a torn WAL tail: %s at byte %d", path, scan.valid_bytes)
            if scan.valid_bytes < SEGMENT_HEADER_SIZE:
                path.unlink()
            else:
                with path.open("r+b") as handle:
                    handle.truncate(scan.valid_bytes)
                    handle.flush()
                    os.fsync(handle.fileno())
            fsync_directory(directory)
        for record in scan.records:
            if out and record.lsn <= out[-1].lsn:
                raise DataLossError(f"WAL segment {path.name} has LSN {record.lsn} after {out[-1].lsn}.")
            out.append(record)
    return out


class WalWriter:
    """Appends records to the newest segment of a WAL directory.

    Not thread-safe: the namespace's commit lock serialises ``append``; ``sync`` runs outside it (one
    caller at a time) while other appends continue, which is what makes group commit work. A rotation
    fsyncs the old segment itself, but leaves its descriptor open until the next ``sync``, so a sync that
    raced with the rotation never touches a closed (or reused) descriptor.
    """

    def __init__(self, directory: Path, next_lsn: int, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self._directory = directory
        self._segment_bytes = segment_bytes
        self._retired: list[int] = []
        directory.mkdir(parents=True, exist_ok=True)
        segments = _segments(directory)
        if segments:
            self._path = segments[-1]
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
            self._size = os.fstat(self._fd).st_size
        else:
            self._fd, self._path, self._size = self._create_segment(next_lsn)

    def _create_segment(self, first_lsn: int) -> tuple[int, Path, int]:
        path = self._directory / segment_name(first_lsn)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            header = encode_segment_header(first_lsn)
            os.write(fd, header)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        fsync_directory(self._directory)
        return fd, path, len(header)

    def append(self, lsn: int, payload: bytes) -> None:
        """Write one record to the OS (not yet durable). On failure nothing of it stays in the file."""
        if self._size >= self._segment_bytes:
            self._rotate(lsn)
        frame = encode_record(lsn, payload)
        try:
            written = os.write(self._fd, frame)
            while written < len(frame):
                written += os.write(self._fd, frame[written:])
        except BaseException:
            # A partial frame would be cut at recovery anyway, but the next append would land behind it;
            # truncating keeps the live segment clean. If even that fails the caller must stop writing.
            os.ftruncate(self._fd, self._size)
            raise
        self._size += len(frame)

    def _rotate(self, first_lsn: int) -> None:
        os.fsync(self._fd)
        old = self._fd
        self._fd, self._path, self._size = self._create_segment(first_lsn)
        self._retired.append(old)

    def sync(self) -> None:
        """Fsync the newest segment: every record appended before the call is durable when it returns."""
        retired, self._retired = self._retired, []
        os.fsync(self._fd)
        for fd in retired:
            os.close(fd)

    @property
    def size(self) -> int:
        """Bytes in the newest segment."""
        return self._size

    def close(self) -> None:
        """Close the segment file (appended but unsynced records may be lost)."""
        for fd in self._retired:
            os.close(fd)
        self._retired = []
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def iter_segment_paths(directory: Path) -> Iterator[Path]:
    """The segment files of a WAL directory in LSN order."""
    yield from _segments(directory)


def truncate_through(directory: Path, lsn: int) -> list[Path]:
    """Delete the segments whose records all have LSNs up to ``lsn`` (never the newest segment).

    The index builder calls this once a manifest covering ``lsn`` is published: those records are in
    cluster files, so recovery no longer needs them. A segment's last LSN is one below the next
    segment's first, which its name gives.

    Returns:
        The deleted segment paths.
    """
    segments = _segments(directory)
    deleted: list[Path] = []
    for current, following in itertools.pairwise(segments):
        if int(following.stem) - 1 > lsn:
            break
        current.unlink(missing_ok=True)
        deleted.append(current)
    if deleted:
        fsync_directory(directory)
    return deleted

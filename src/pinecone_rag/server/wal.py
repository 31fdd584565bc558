"""Write-ahead log segments: framing, checksums, appends and recovery (format in FORMAT.md).

A WAL is a directory of segment files named ``<first LSN, 20 digits>.wal``. Each segment starts with a
24-byte header and holds records ``length | checksum | lsn | payload``; the checksum is CRC-32 in format
version 1 segments and the low 32 bits of XXH3-64 in version 2, which this build writes. Appends go to the
newest segment; ``sync`` makes every appended record durable. Recovery reads the segments in order; after
a record that is torn or fails its checksum it resynchronises on the next intact record. A damaged end of
the newest segment is a crash during an append and is cut off; any other damage is reported, never served.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xxhash
from numpy.lib.stride_tricks import sliding_window_view

from pinecone_rag.errors import DataLossError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from pinecone_rag.server.ops import Buffer

logger = logging.getLogger(__name__)

SEGMENT_MAGIC = b"PRAGWAL\x00"
SEGMENT_VERSION = 2  # the version new segments get; every version in _CHECKSUMS is read
_SEGMENT_HEADER = struct.Struct("<8sHHQI")  # magic, version, flags, first lsn, crc32 of the previous fields
_RECORD_HEADER = struct.Struct("<IIQ")  # length of (lsn + payload), checksum of (lsn + payload), lsn
_LSN = struct.Struct("<Q")
SEGMENT_HEADER_SIZE = _SEGMENT_HEADER.size
RECORD_HEADER_SIZE = _RECORD_HEADER.size
MAX_RECORD_BYTES = 1 << 30  # far above any valid request; a larger length can only be garbage
DEFAULT_SEGMENT_BYTES = 64 << 20
_SCAN_CHUNK = 1 << 20  # offsets examined per vectorised step of a resynchronising scan


@dataclass(frozen=True, slots=True)
class WalRecord:
    """One recovered record."""

    lsn: int
    payload: bytes


def _crc32(pieces: Sequence[Buffer]) -> int:
    crc = 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    return crc


def _xxh3_low32(pieces: Sequence[Buffer]) -> int:
    digest = xxhash.xxh3_64()
    for piece in pieces:
        digest.update(piece)
    return digest.intdigest() & 0xFFFFFFFF


# A record's checksum by segment format version. Version 2 exists for speed: zlib's CRC-32 ran at ~3
# GB/s here and was 6-7% of the engine's CPU per upserted record (a 1.6 MB request took 0.5 ms), XXH3 runs
# at ~25 GB/s. Both detect the torn and garbled records recovery looks for with the same 2^-32 odds.
_CHECKSUMS: dict[int, Callable[[Sequence[Buffer]], int]] = {1: _crc32, 2: _xxh3_low32}


def segment_name(first_lsn: int) -> str:
    """The file name of the segment whose first record has ``first_lsn``."""
    return f"{first_lsn:020d}.wal"


def encode_segment_header(first_lsn: int, version: int = SEGMENT_VERSION) -> bytes:
    """The 24-byte header that opens every segment (its own CRC-32 in every version)."""
    head = struct.pack("<8sHHQ", SEGMENT_MAGIC, version, 0, first_lsn)
    return head + struct.pack("<I", zlib.crc32(head))


def encode_record(lsn: int, payload: bytes, version: int = SEGMENT_VERSION) -> bytes:
    """Frame one record of a segment of format ``version``: ``length | checksum | lsn | payload``."""
    return b"".join(_frame_pieces(lsn, [payload], version))


def _frame_pieces(lsn: int, payload: Sequence[Buffer], version: int) -> list[Buffer]:
    """The frame of a record whose payload is ``payload``'s pieces back to back, as pieces too."""
    lsn_bytes = _LSN.pack(lsn)
    pieces = [lsn_bytes, *payload]
    size = sum(len(piece) for piece in pieces)
    return [struct.pack("<II", size, _CHECKSUMS[version](pieces)), *pieces]


def _header_intact(data: bytes) -> bool:
    """Whether ``data`` starts with a whole segment header whose CRC matches (magic and version unchecked)."""
    if len(data) < SEGMENT_HEADER_SIZE:
        return False
    crc: int = _SEGMENT_HEADER.unpack_from(data)[-1]
    return zlib.crc32(data[: SEGMENT_HEADER_SIZE - 4]) == crc


def _segment_version(data: bytes) -> int | None:
    """The format version of a segment starting with ``data``; None when its header is not intact."""
    if not _header_intact(data):
        return None
    magic, version, _flags, _first, _crc = _SEGMENT_HEADER.unpack_from(data)
    return int(version) if magic == SEGMENT_MAGIC else None


def _write_all(fd: int, pieces: list[Buffer]) -> None:
    """Write ``pieces`` back to back with one system call (a second one for what a short write left)."""
    written = os.writev(fd, pieces)
    total = sum(len(piece) for piece in pieces)
    if written < total:
        rest = b"".join(bytes(piece) for piece in pieces)[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


def _segments(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.wal") if p.stem.isdigit())


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class WalDamage:
    """A damaged stretch of a segment that recovery skipped (its records are never applied).

    Attributes:
        segment: The segment's file name.
        start: Offset of the first damaged byte.
        end: Offset where the next intact record starts, or the segment's length.
        after_lsn: LSN of the last intact record before the damage (0 when there is none).
        before_lsn: LSN of the first intact record after it, in this or a later segment (None when
            none follows).
    """

    segment: str
    start: int
    end: int
    after_lsn: int
    before_lsn: int | None

    @property
    def lost_lsns(self) -> range | None:
        """The LSNs lost with the damage; None when no intact record follows it (the count is unknown).

        An empty range means the damaged bytes held no record that was not recovered.
        """
        if self.before_lsn is None:
            return None
        return range(self.after_lsn + 1, self.before_lsn)

    def describe(self) -> str:
        """One line for logs and error messages."""
        lost = self.lost_lsns
        if lost is None:
            what = f"the records after LSN {self.after_lsn} in it are lost"
        elif not lost:
            what = f"no record was lost (LSN {self.after_lsn} is followed by {self.before_lsn})"
        elif len(lost) == 1:
            what = f"the record with LSN {lost.start} is lost"
        else:
            what = f"the records with LSNs {lost.start} to {lost.stop - 1} are lost"
        return f"WAL segment {self.segment} is damaged at bytes {self.start}..{self.end}: {what}"


@dataclass(frozen=True, slots=True)
class WalRecovery:
    """What :func:`recover_log` found.

    Attributes:
        records: The intact records in LSN order.
        damage: The damaged stretches it skipped, in log order.
        next_lsn: The LSN the next write should take: above every recovered record and every LSN the
            newest segment's name accounts for, so a lost LSN is never reused.
    """

    records: list[WalRecord]
    damage: list[WalDamage]
    next_lsn: int


@dataclass(slots=True)
class _Region:
    start: int
    end: int
    records_before: int  # how many of the segment's intact records precede it


@dataclass(slots=True)
class _Scan:
    records: list[WalRecord]
    damage: list[_Region]
    tail: int | None  # where an unverifiable tail starts (None: the segment ends on a record boundary)


def _intact(data: bytes, offset: int, lowest: int, highest: int | None, versions: Sequence[int]) -> int:
    """The end of an intact frame at ``offset`` whose LSN is in ``lowest..highest``, or -1.

    The checksum may be that of any of ``versions`` (all of them when the segment header is damaged).
    """
    if offset + RECORD_HEADER_SIZE > len(data):
        return -1
    length, crc, lsn = _RECORD_HEADER.unpack_from(data, offset)
    end: int = offset + 8 + length
    if length < _LSN.size or length > MAX_RECORD_BYTES or end > len(data):
        return -1
    if lsn < lowest or (highest is not None and lsn > highest):
        return -1
    body = [memoryview(data)[offset + 8 : end]]
    if all(_CHECKSUMS[version](body) != crc for version in versions):
        return -1
    return end


def _resync(data: bytes, damaged: int, expected: int, lowest: int, versions: Sequence[int]) -> int | None:
    """The offset of the first intact frame after the damage at ``damaged``, or None.

    ``expected`` is the LSN the record at ``damaged`` should carry; ``lowest`` the smallest LSN a later
    record may have (above every LSN recovered so far). A record takes at least 16 bytes, so a frame
    ``k`` bytes further on has an LSN of at most ``expected + k // 16``: that window rules out almost
    every offset before a checksum is computed.
    """
    size = len(data)
    if damaged + RECORD_HEADER_SIZE <= size:
        # The damage is most often inside a record whose header still holds (its LSN is the expected
        # one): then its length is trusted first, so bytes inside its payload are never taken for a frame.
        length, _crc, lsn = _RECORD_HEADER.unpack_from(data, damaged)
        following: int = damaged + 8 + length
        if (
            lsn == expected
            and _LSN.size <= length <= MAX_RECORD_BYTES
            and following < size
            and _intact(data, following, lowest, expected + (following - damaged) // 16, versions) >= 0
        ):
            return following
    last = size - RECORD_HEADER_SIZE  # the last offset where a record header fits
    if last <= damaged:
        return None
    raw = np.frombuffer(data, dtype=np.uint8)
    for first in range(damaged + 1, last + 1, _SCAN_CHUNK):
        stop = min(first + _SCAN_CHUNK, last + 1)
        # The LSN field of a frame at offset p is bytes p+8..p+16: read it at every offset of the chunk.
        windows = sliding_window_view(raw[first + 8 : stop + 16], 8)[: stop - first]
        lsns = np.ascontiguousarray(windows).view("<u8").ravel()
        offsets = np.arange(first, stop, dtype=np.uint64)
        highest = np.uint64(expected) + (offsets - np.uint64(damaged)) // np.uint64(16)
        candidates = np.flatnonzero((lsns >= np.uint64(lowest)) & (lsns <= highest))
        for index in candidates.tolist():
            offset: int = first + index
            if _intact(data, offset, lowest, int(highest[index]), versions) >= 0:
                return offset
    return None


def _scan_segment(path: Path, last_lsn: int) -> _Scan:
    """Read a segment's intact records, skipping damaged stretches (see :func:`recover_log`)."""
    data = path.read_bytes()
    if len(data) < SEGMENT_HEADER_SIZE:
        return _Scan([], [], tail=0)
    damage: list[_Region] = []
    first = int(path.stem)
    versions: Sequence[int] = tuple(_CHECKSUMS)
    magic, version, _flags, header_first, _crc = _SEGMENT_HEADER.unpack_from(data)
    if not _header_intact(data):
        # The records carry their own LSNs and checksums, so they are still read (a checksum of either
        # version is accepted, the header that said which being lost); the name gives the first LSN.
        damage.append(_Region(0, SEGMENT_HEADER_SIZE, 0))
    elif magic != SEGMENT_MAGIC:
        raise DataLossError(f"WAL segment {path} is not a WAL segment (bad magic).")
    elif version not in _CHECKSUMS:
        readable = ", ".join(map(str, _CHECKSUMS))
        raise DataLossError(f"WAL segment {path} has format version {version}; this build reads {readable}.")
    else:
        first = header_first
        versions = (version,)
    records: list[WalRecord] = []
    offset = SEGMENT_HEADER_SIZE
    view = memoryview(data)
    while offset < len(data):
        end = _intact(data, offset, 0, None, versions)
        if end >= 0:
            _length, _crc, lsn = _RECORD_HEADER.unpack_from(data, offset)
            records.append(WalRecord(lsn, bytes(view[offset + RECORD_HEADER_SIZE : end])))
            offset = end
            continue
        expected = records[-1].lsn + 1 if records else first
        lowest = expected if records else max(first, last_lsn + 1)
        resume = _resync(data, offset, expected, lowest, versions)
        if resume is None:
            return _Scan(records, damage, tail=offset)
        damage.append(_Region(offset, resume, len(records)))
        offset = resume
    return _Scan(records, damage, tail=None)


def _cut(path: Path, at: int) -> None:
    """Cut a torn tail off the newest segment (delete it when not even its header is whole)."""
    logger.warning("cutting a torn WAL tail: %s at byte %d", path, at)
    if at < SEGMENT_HEADER_SIZE:
        path.unlink()
    else:
        with path.open("r+b") as handle:
            handle.truncate(at)
            handle.flush()
            os.fsync(handle.fileno())
    fsync_directory(path.parent)


def recover_log(directory: Path) -> WalRecovery:
    """Read every intact record in LSN order; cut a torn tail off the newest segment; report damage.

    A record is intact when its frame fits in the file, its length is in range and its checksum matches.
    After a record that is not, recovery resynchronises: it takes the next intact frame whose LSN is
    above the last one recovered (and within what the bytes skipped could have held) and goes on from
    there, in every segment. When nothing intact follows in the newest segment, the rest is a torn
    append from a crash and is cut off (nothing after it was acknowledged). Every other skipped stretch
    is returned as a :class:`WalDamage`; the files are left as they are, so a second recovery finds the
    same records and the same damage. Damaged records are never returned.

    Raises:
        DataLossError: A segment has a format version this build does not read, or intact records have
            LSNs out of order.
    """
    segments = _segments(directory)
    out: list[WalRecord] = []
    found: list[tuple[str, _Region, int]] = []  # segment, region, records recovered before it
    for position, path in enumerate(segments):
        scan = _scan_segment(path, out[-1].lsn if out else 0)
        base = len(out)
        for record in scan.records:
            if out and record.lsn <= out[-1].lsn:
                raise DataLossError(f"WAL segment {path.name} has LSN {record.lsn} after {out[-1].lsn}.")
            out.append(record)
        found.extend((path.name, region, base + region.records_before) for region in scan.damage)
        if scan.tail is not None:
            if position == len(segments) - 1:
                _cut(path, scan.tail)
            else:
                # An older segment was fsynced whole before the next one was started: a short or
                # unreadable end of one is damage, never a torn append.
                found.append((path.name, _Region(scan.tail, path.stat().st_size, 0), len(out)))
    damage = [
        WalDamage(
            segment=name,
            start=region.start,
            end=region.end,
            after_lsn=out[before - 1].lsn if before else 0,
            before_lsn=out[before].lsn if before < len(out) else None,
        )
        for name, region, before in found
    ]
    next_lsn = out[-1].lsn + 1 if out else 1
    remaining = _segments(directory)
    if remaining:
        next_lsn = max(next_lsn, int(remaining[-1].stem))
    return WalRecovery(out, damage, next_lsn)


def recover(directory: Path) -> list[WalRecord]:
    """The intact records of :func:`recover_log`, without its damage report."""
    return recover_log(directory).records


@dataclass(frozen=True, slots=True)
class WalPosition:
    """A point in the log: a segment and a length of it (see :meth:`WalWriter.position`)."""

    segment: Path
    size: int


def _version_to_append(path: Path) -> int:
    """The format version of records appended to an existing segment: the one its header names.

    A segment written by an older build goes on in its own version until the next rotation, so no segment
    ever mixes two. Recovery accepts either checksum where the header is damaged.
    """
    with path.open("rb") as handle:
        version = _segment_version(handle.read(SEGMENT_HEADER_SIZE))
    # (An unknown version never gets here: recovery refuses such a segment before a writer opens it.)
    return version if version in _CHECKSUMS else SEGMENT_VERSION


class WalWriter:
    """Appends records to the newest segment of a WAL directory.

    Not thread-safe: the namespace's commit lock serialises ``append``; ``sync`` runs outside it (one
    caller at a time) while other appends continue, which is what makes group commit work. A rotation
    fsyncs the old segment itself, but leaves its descriptor open until the next ``sync``, so a sync that
    raced with the rotation never touches a closed (or reused) descriptor.

    Attributes:
        broken: A failed append may have left bytes in the log (its partial frame could not be removed,
            or a rotation's fsync failed): nothing may be appended until :meth:`rollback` succeeds.
    """

    def __init__(self, directory: Path, next_lsn: int, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self._directory = directory
        self._segment_bytes = segment_bytes
        self._retired: list[int] = []
        self.broken = False
        directory.mkdir(parents=True, exist_ok=True)
        segments = _segments(directory)
        if segments:
            self._path = segments[-1]
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
            self._size = os.fstat(self._fd).st_size
            self._version = _version_to_append(self._path)
        else:
            self._fd, self._path, self._size = self._create_segment(next_lsn)
            self._version = SEGMENT_VERSION

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

    def append(self, lsn: int, payload: bytes | Sequence[Buffer]) -> None:
        """Write one record to the OS (not yet durable).

        ``payload`` may come in pieces (:func:`pinecone_rag.server.ops.encode_op_parts`): they are
        checksummed and written where they are, without being joined first.

        Raises:
            OSError: The record was not written (a full disk, typically). Nothing of it stays in the
                log unless :attr:`broken` is now set.
        """
        if self.broken:
            raise OSError(errno.EIO, "the log must be rolled back after a failed write")
        if self._size >= self._segment_bytes:
            self._rotate(lsn)
        pieces = _frame_pieces(lsn, [payload] if isinstance(payload, bytes) else payload, self._version)
        try:
            _write_all(self._fd, pieces)
        except BaseException:
            # A partial frame would be cut at recovery anyway, but the next append would land behind it;
            # truncating keeps the live segment clean. If even that fails the caller must roll back.
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                self.broken = True
            raise
        self._size += sum(len(piece) for piece in pieces)

    def _rotate(self, first_lsn: int) -> None:
        try:
            os.fsync(self._fd)
        except OSError:
            # Records appended since the last sync may not be on disk, and a second fsync could report
            # success without writing them (Linux reports a writeback error once).
            self.broken = True
            raise
        old = self._fd
        self._fd, self._path, self._size = self._create_segment(first_lsn)
        self._version = SEGMENT_VERSION
        self._retired.append(old)

    def sync(self) -> None:
        """Fsync the newest segment: every record appended before the call is durable when it returns."""
        retired, self._retired = self._retired, []
        try:
            os.fsync(self._fd)
        finally:
            for fd in retired:  # fsynced by their rotation
                os.close(fd)

    def position(self) -> WalPosition:
        """Where the next record will be appended (what :meth:`rollback` can return to)."""
        return WalPosition(self._path, self._size)

    def rollback(self, to: WalPosition) -> None:
        """Cut everything appended after ``to`` and make the cut durable; clears :attr:`broken`.

        Used after a failed write or sync: the records after the last successful sync were never
        acknowledged, and removing them keeps them from coming back at the next recovery. Segments
        started after ``to`` are deleted. Must not run concurrently with :meth:`sync`.

        Raises:
            OSError: The cut could not be made durable; :attr:`broken` stays set.
        """
        self.broken = True
        removed = False
        for path in _segments(self._directory):
            if path.name > to.segment.name:
                path.unlink(missing_ok=True)
                removed = True
        if self._path != to.segment:
            fd = os.open(to.segment, os.O_WRONLY | os.O_APPEND)
            self._retired.append(self._fd)
            self._fd, self._path = fd, to.segment
            self._version = _version_to_append(to.segment)
        os.ftruncate(self._fd, to.size)
        os.fsync(self._fd)
        if removed:
            fsync_directory(self._directory)
        self._size = to.size
        self.broken = False

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

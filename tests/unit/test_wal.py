"""Unit tests of the write-ahead log (pinecone_rag.server.wal): framing, rotation, recovery, corruption."""

from __future__ import annotations

import errno
import itertools
import os
import random
import struct
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinecone_rag.errors import DataLossError
from pinecone_rag.server import wal


def payload_for(lsn: int, rng: random.Random | None = None) -> bytes:
    """A recognisable payload of varying length (50 to 249 bytes)."""
    size = 50 + (lsn * 37) % 200 if rng is None else rng.randrange(0, 300)
    return bytes((lsn + i) % 256 for i in range(size))


def write_records(directory: Path, lsns: range, *, segment_bytes: int = wal.DEFAULT_SEGMENT_BYTES) -> None:
    writer = wal.WalWriter(directory, lsns.start, segment_bytes=segment_bytes)
    try:
        for lsn in lsns:
            writer.append(lsn, payload_for(lsn))
        writer.sync()
    finally:
        writer.close()


def expected(lsns: range) -> list[wal.WalRecord]:
    return [wal.WalRecord(lsn, payload_for(lsn)) for lsn in lsns]


def segments(directory: Path) -> list[Path]:
    return list(wal.iter_segment_paths(directory))


def last_record_offset(path: Path) -> int:
    """Byte offset of the last record of a segment (walks the framing)."""
    data = path.read_bytes()
    offset = wal.SEGMENT_HEADER_SIZE
    last = -1
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        last = offset
        offset += 8 + length
    assert last >= 0, "segment holds no record"
    return last


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


# --- framing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "checksum"),
    [(1, zlib.crc32), (2, lambda body: xxhash.xxh3_64_intdigest(body) & 0xFFFFFFFF)],
    ids=["v1-crc32", "v2-xxh3"],
)
def test_record_framing_layout(version: int, checksum: Any) -> None:
    payload = b"hello, wal"
    frame = wal.encode_record(42, payload, version)
    assert len(frame) == wal.RECORD_HEADER_SIZE + len(payload)
    length, crc, lsn = struct.unpack_from("<IIQ", frame)
    assert length == 8 + len(payload)
    assert lsn == 42
    assert crc == checksum(frame[8:])
    assert frame[wal.RECORD_HEADER_SIZE :] == payload


def test_new_records_use_the_current_version() -> None:
    assert wal.SEGMENT_VERSION == 2
    assert wal.encode_record(7, b"x") == wal.encode_record(7, b"x", 2) != wal.encode_record(7, b"x", 1)


def write_v1_segment(directory: Path, lsns: range) -> Path:
    """A segment as builds before format version 2 wrote it (CRC-32 checksums)."""
    path = directory / wal.segment_name(lsns.start)
    body = b"".join(wal.encode_record(lsn, payload_for(lsn), 1) for lsn in lsns)
    path.write_bytes(wal.encode_segment_header(lsns.start, 1) + body)
    return path


def test_a_version_1_segment_is_read_and_appended_to_in_version_1(tmp_path: Path) -> None:
    """A data directory from an older build: its log is recovered, and grows without mixing versions."""
    old = write_v1_segment(tmp_path, range(1, 11))
    written = old.stat().st_size
    assert wal.recover(tmp_path) == expected(range(1, 11))
    writer = wal.WalWriter(tmp_path, 11, segment_bytes=written + 400)
    try:
        for lsn in range(11, 31):
            writer.append(lsn, payload_for(lsn))
        writer.sync()
    finally:
        writer.close()
    assert wal.recover(tmp_path) == expected(range(1, 31))
    first, *later = segments(tmp_path)
    assert first == old
    assert later, "the writer should have rotated to a new segment"
    # The old segment went on with CRC-32 until it was full; the segments after it are version 2.
    assert struct.unpack_from("<H", first.read_bytes(), 8) == (1,)
    for path in later:
        assert struct.unpack_from("<H", path.read_bytes(), 8) == (2,)
    data = first.read_bytes()
    (length, crc) = struct.unpack_from("<II", data, written)  # the first record appended to it
    assert crc == zlib.crc32(data[written + 8 : written + 8 + length])


def test_a_version_1_record_in_a_version_2_segment_is_damage(tmp_path: Path) -> None:
    """The header decides the checksum: a record that only passes the other version's check is not intact."""
    write_records(tmp_path, range(1, 4))
    (path,) = segments(tmp_path)
    path.write_bytes(path.read_bytes() + wal.encode_record(4, payload_for(4), 1))
    assert wal.recover(tmp_path) == expected(range(1, 4))  # the foreign last record is a torn tail, cut


@pytest.mark.parametrize("version", [1, 2])
def test_records_of_a_segment_whose_header_is_damaged_are_kept_in_either_version(
    tmp_path: Path, version: int
) -> None:
    if version == 1:
        path = write_v1_segment(tmp_path, range(1, 11))
    else:
        write_records(tmp_path, range(1, 11))
        (path,) = segments(tmp_path)
    flip_byte(path, 3)  # the magic: the header's CRC fails, so its version is unknown
    recovery = wal.recover_log(tmp_path)
    assert recovery.records == expected(range(1, 11))
    assert [(d.start, d.end) for d in recovery.damage] == [(0, wal.SEGMENT_HEADER_SIZE)]


def test_segment_header_layout() -> None:
    header = wal.encode_segment_header(1234)
    assert len(header) == wal.SEGMENT_HEADER_SIZE == 24
    magic, version, flags, first, crc = struct.unpack("<8sHHQI", header)
    assert magic == wal.SEGMENT_MAGIC
    assert version == wal.SEGMENT_VERSION
    assert flags == 0
    assert first == 1234
    assert crc == zlib.crc32(header[:20])
    assert wal.segment_name(1234) == "00000000000000001234.wal"


def test_round_trip_including_empty_and_binary_payloads(tmp_path: Path) -> None:
    payloads = [b"", b"\x00" * 100, bytes(range(256)), os.urandom(5000)]
    writer = wal.WalWriter(tmp_path, 1)
    for lsn, payload in enumerate(payloads, start=1):
        writer.append(lsn, payload)
    writer.sync()
    writer.close()
    assert wal.recover(tmp_path) == [wal.WalRecord(i, p) for i, p in enumerate(payloads, start=1)]


def test_empty_directory_recovers_nothing(tmp_path: Path) -> None:
    assert wal.recover(tmp_path) == []
    writer = wal.WalWriter(tmp_path, 1)
    writer.close()
    # A fresh segment holds only its header.
    (segment,) = segments(tmp_path)
    assert segment.name == wal.segment_name(1)
    assert segment.stat().st_size == wal.SEGMENT_HEADER_SIZE
    assert wal.recover(tmp_path) == []


# --- rotation -----------------------------------------------------------------------------------------------


def test_recovery_across_segment_rotation(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 501), segment_bytes=512)
    paths = segments(tmp_path)
    assert len(paths) > 20
    # Each segment is named after the LSN of its first record, and its header says the same.
    for path in paths:
        first = int(path.stem)
        data = path.read_bytes()
        assert struct.unpack_from("<Q", data, 12)[0] == first
        assert struct.unpack_from("<Q", data, wal.SEGMENT_HEADER_SIZE + 8)[0] == first
    records = wal.recover(tmp_path)
    assert records == expected(range(1, 501))


def test_lsns_strictly_increase_across_segments(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 301), segment_bytes=300)
    lsns = [record.lsn for record in wal.recover(tmp_path)]
    assert lsns == list(range(1, 301))
    assert all(a < b for a, b in itertools.pairwise(lsns))


def test_reopen_appends_to_newest_segment_and_keeps_rotating(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 101), segment_bytes=400)
    before = segments(tmp_path)
    records = wal.recover(tmp_path)
    write_records(tmp_path, range(records[-1].lsn + 1, 201), segment_bytes=400)
    after = segments(tmp_path)
    assert after[: len(before)] == before
    assert len(after) > len(before)
    assert wal.recover(tmp_path) == expected(range(1, 201))


def test_many_random_records_across_rotation(tmp_path: Path) -> None:
    rng = random.Random(7)
    payloads = {lsn: os.urandom(rng.randrange(0, 2000)) for lsn in range(1, 1001)}
    writer = wal.WalWriter(tmp_path, 1, segment_bytes=16 * 1024)
    for lsn, payload in payloads.items():
        writer.append(lsn, payload)
        if lsn % 97 == 0:
            writer.sync()
    writer.sync()
    writer.close()
    assert len(segments(tmp_path)) > 10
    assert wal.recover(tmp_path) == [wal.WalRecord(lsn, p) for lsn, p in payloads.items()]


# --- torn tails ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 2, 7, 8, 9, 15, 16, 17, 40, "all-but-1", "whole"])
def test_torn_tail_is_cut_and_appending_resumes(tmp_path: Path, cut: int | str) -> None:
    write_records(tmp_path, range(1, 61), segment_bytes=1024)
    newest = segments(tmp_path)[-1]
    size = newest.stat().st_size
    last_start = last_record_offset(newest)
    frame = size - last_start
    k = {"all-but-1": frame - 1, "whole": frame}.get(cut, cut) if isinstance(cut, str) else cut
    assert isinstance(k, int)
    assert 0 < k <= frame, "the cut must stay within the last record"
    with newest.open("r+b") as handle:
        handle.truncate(size - k)

    records = wal.recover(tmp_path)
    assert records == expected(range(1, 60))
    # The torn bytes are gone from the file, so the next append lands right after the last good record.
    assert newest.stat().st_size == last_start
    # Recovery is idempotent.
    assert wal.recover(tmp_path) == records

    write_records(tmp_path, range(60, 71), segment_bytes=1024)
    assert wal.recover(tmp_path) == expected(range(1, 71))


def test_torn_segment_header_of_newest_segment_is_removed(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 41), segment_bytes=300)
    paths = segments(tmp_path)
    newest = paths[-1]
    first_of_newest = int(newest.stem)
    # A crash while creating the segment: not even its header is complete.
    newest.write_bytes(newest.read_bytes()[:10])

    records = wal.recover(tmp_path)
    assert records == expected(range(1, first_of_newest))
    assert not newest.exists()
    write_records(tmp_path, range(first_of_newest, 60), segment_bytes=300)
    assert wal.recover(tmp_path) == expected(range(1, 60))


def test_empty_newest_segment_file_is_removed(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 11))
    stray = tmp_path / wal.segment_name(11)
    stray.write_bytes(b"")
    assert wal.recover(tmp_path) == expected(range(1, 11))
    assert not stray.exists()


def test_header_only_newest_segment_recovers_and_resumes(tmp_path: Path) -> None:
    """A rotation that crashed after the new header but before the first record reached disk."""
    write_records(tmp_path, range(1, 21), segment_bytes=200)
    newest = segments(tmp_path)[-1]
    first = int(newest.stem)
    newest.write_bytes(newest.read_bytes()[: wal.SEGMENT_HEADER_SIZE])
    assert wal.recover(tmp_path) == expected(range(1, first))
    write_records(tmp_path, range(first, 31), segment_bytes=200)
    assert wal.recover(tmp_path) == expected(range(1, 31))


# --- checksums and corruption -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["payload-first", "payload-last", "lsn", "crc", "length"])
def test_damaged_last_record_is_dropped(tmp_path: Path, where: str) -> None:
    write_records(tmp_path, range(1, 31), segment_bytes=1024)
    newest = segments(tmp_path)[-1]
    start = last_record_offset(newest)
    end = newest.stat().st_size
    assert end - start > wal.RECORD_HEADER_SIZE, "the last record needs a payload"
    offset = {
        "payload-first": start + wal.RECORD_HEADER_SIZE,
        "payload-last": end - 1,
        "lsn": start + 8,
        "crc": start + 4,
        "length": start,
    }[where]
    flip_byte(newest, offset)
    assert wal.recover(tmp_path) == expected(range(1, 30))
    assert newest.stat().st_size == start


def record_offsets(path: Path) -> dict[int, tuple[int, int]]:
    """LSN -> (start, end) of every record of an undamaged segment (walks the framing)."""
    data = path.read_bytes()
    offset = wal.SEGMENT_HEADER_SIZE
    out = {}
    while offset < len(data):
        length, _crc, lsn = struct.unpack_from("<IIQ", data, offset)
        out[lsn] = (offset, offset + 8 + length)
        offset += 8 + length
    return out


@pytest.mark.parametrize("where", ["payload", "record-header", "last-record"])
def test_damage_in_an_older_segment_is_skipped_and_reported(tmp_path: Path, where: str) -> None:
    write_records(tmp_path, range(1, 101), segment_bytes=512)
    paths = segments(tmp_path)
    assert len(paths) >= 3
    victim = paths[1]
    frames = record_offsets(victim)
    if where == "payload":
        lost = min(frames)
        offset = frames[lost][0] + wal.RECORD_HEADER_SIZE + 1
    elif where == "record-header":
        lost = min(frames)
        offset = frames[lost][0] + 5  # the checksum field
    else:
        lost = max(frames)
        offset = frames[lost][1] - 1
    flip_byte(victim, offset)
    snapshot = {path: path.read_bytes() for path in paths}

    recovery = wal.recover_log(tmp_path)
    assert recovery.records == [r for r in expected(range(1, 101)) if r.lsn != lost]
    (damage,) = recovery.damage
    assert damage.segment == victim.name
    assert damage.start == frames[lost][0]
    assert damage.end == frames[lost][1]
    assert (damage.after_lsn, damage.before_lsn) == (lost - 1, lost + 1)
    assert damage.lost_lsns == range(lost, lost + 1)
    assert f"LSN {lost} is lost" in damage.describe()
    assert recovery.next_lsn == 101
    # Nothing was truncated or deleted: the damage is reported, never "repaired" away...
    assert {path: path.read_bytes() for path in segments(tmp_path)} == snapshot
    # ...so it keeps being reported, identically.
    assert wal.recover_log(tmp_path) == recovery


def test_truncated_older_segment_is_reported(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 101), segment_bytes=512)
    victim = segments(tmp_path)[0]
    last = max(record_offsets(victim))
    size = victim.stat().st_size
    with victim.open("r+b") as handle:
        handle.truncate(size - 3)
    recovery = wal.recover_log(tmp_path)
    assert [r.lsn for r in recovery.records] == [lsn for lsn in range(1, 101) if lsn != last]
    (damage,) = recovery.damage
    assert damage.segment == victim.name
    assert damage.end == size - 3
    assert damage.lost_lsns == range(last, last + 1)
    assert victim.stat().st_size == size - 3  # an older segment is never cut


def test_damage_in_the_middle_of_the_newest_segment_keeps_what_follows(tmp_path: Path) -> None:
    """Acknowledged records after a damaged one survive; the writer appends after them."""
    write_records(tmp_path, range(1, 41))
    (segment,) = segments(tmp_path)
    frames = record_offsets(segment)
    size = segment.stat().st_size
    for lsn in (7, 8, 20):  # two neighbours and a lone one
        flip_byte(segment, (frames[lsn][0] + frames[lsn][1]) // 2)

    recovery = wal.recover_log(tmp_path)
    assert recovery.records == [r for r in expected(range(1, 41)) if r.lsn not in (7, 8, 20)]
    assert [d.lost_lsns for d in recovery.damage] == [range(7, 9), range(20, 21)]
    assert [(d.start, d.end) for d in recovery.damage] == [
        (frames[7][0], frames[8][1]),
        (frames[20][0], frames[20][1]),
    ]
    assert segment.stat().st_size == size  # only a torn tail is ever cut

    write_records(tmp_path, range(recovery.next_lsn, 46))
    again = wal.recover_log(tmp_path)
    assert again.records == recovery.records + expected(range(41, 46))
    assert again.damage == recovery.damage


def test_damaged_length_field_resynchronises_by_scanning(tmp_path: Path) -> None:
    """A length that points nowhere: the scan finds the next record by its checksum and LSN."""
    write_records(tmp_path, range(1, 31))
    (segment,) = segments(tmp_path)
    frames = record_offsets(segment)
    data = bytearray(segment.read_bytes())
    for position in range(4):  # the whole length field
        data[frames[12][0] + position] ^= 0xA5
    segment.write_bytes(bytes(data))
    recovery = wal.recover_log(tmp_path)
    assert [r.lsn for r in recovery.records] == [lsn for lsn in range(1, 31) if lsn != 12]
    (damage,) = recovery.damage
    assert (damage.start, damage.end) == frames[12]


def test_overwritten_stretch_spanning_records_is_one_region(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 61), segment_bytes=1 << 20)
    (segment,) = segments(tmp_path)
    frames = record_offsets(segment)
    start, end = frames[10][0] + 3, frames[14][0] + 9  # from inside record 10 to inside record 14
    data = bytearray(segment.read_bytes())
    data[start:end] = bytes(end - start)  # zeroed, as a lost disk block reads back
    segment.write_bytes(bytes(data))
    recovery = wal.recover_log(tmp_path)
    assert [r.lsn for r in recovery.records] == [lsn for lsn in range(1, 61) if not 10 <= lsn <= 14]
    (damage,) = recovery.damage
    assert (damage.start, damage.end, damage.lost_lsns) == (frames[10][0], frames[15][0], range(10, 15))


def test_a_frame_inside_a_damaged_payload_is_not_taken_when_the_header_holds(tmp_path: Path) -> None:
    """A payload that embeds a valid-looking frame: its record's intact length skips past it."""
    forged = wal.encode_record(6, b"forged")
    writer = wal.WalWriter(tmp_path, 1)
    for lsn in range(1, 11):
        writer.append(lsn, b"x" * 40 + forged + b"y" * 40 if lsn == 5 else payload_for(lsn))
    writer.sync()
    writer.close()
    (segment,) = segments(tmp_path)
    frames = record_offsets(segment)
    flip_byte(segment, frames[5][1] - 3)  # inside record 5, after the embedded frame
    recovery = wal.recover_log(tmp_path)
    assert [r.lsn for r in recovery.records] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert all(r.payload != b"forged" for r in recovery.records)


@pytest.mark.parametrize("newest", [True, False], ids=["newest", "older"])
@pytest.mark.parametrize("damage", ["magic", "crc", "first-lsn"])
def test_damaged_segment_header_is_reported_and_its_records_kept(
    tmp_path: Path, damage: str, newest: bool
) -> None:
    write_records(tmp_path, range(1, 61), segment_bytes=512)
    paths = segments(tmp_path)
    victim = paths[-1] if newest else paths[0]
    data = bytearray(victim.read_bytes())
    if damage == "magic":
        data[0:8] = b"NOTAWAL\x00"
    elif damage == "crc":
        data[20] ^= 0xFF
    else:
        data[12] ^= 0x01  # the header CRC no longer matches
    victim.write_bytes(bytes(data))
    recovery = wal.recover_log(tmp_path)
    assert recovery.records == expected(range(1, 61))
    (reported,) = recovery.damage
    assert (reported.segment, reported.start, reported.end) == (victim.name, 0, wal.SEGMENT_HEADER_SIZE)
    assert reported.lost_lsns == range(0)  # no record was lost
    assert "no record was lost" in reported.describe()


@pytest.mark.parametrize("newest", [True, False], ids=["newest", "older"])
def test_unknown_segment_version_raises_data_loss(tmp_path: Path, newest: bool) -> None:
    """A well-formed header of a format this build does not read is not damage: refuse to guess."""
    write_records(tmp_path, range(1, 61), segment_bytes=512)
    paths = segments(tmp_path)
    victim = paths[-1] if newest else paths[0]
    data = bytearray(victim.read_bytes())
    head = struct.pack("<8sHHQ", wal.SEGMENT_MAGIC, wal.SEGMENT_VERSION + 1, 0, int(victim.stem))
    data[0:24] = head + struct.pack("<I", zlib.crc32(head))
    victim.write_bytes(bytes(data))
    with pytest.raises(DataLossError, match="format version"):
        wal.recover(tmp_path)


def test_next_lsn_skips_lsns_lost_at_the_end_of_an_older_segment(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 21), segment_bytes=200)
    paths = segments(tmp_path)
    newest = paths[-1]
    first_of_newest = int(newest.stem)
    newest.write_bytes(newest.read_bytes()[: wal.SEGMENT_HEADER_SIZE])  # only its header survived
    older = paths[-2]
    flip_byte(older, older.stat().st_size - 1)  # and the older one lost its last record
    recovery = wal.recover_log(tmp_path)
    assert recovery.records[-1].lsn == first_of_newest - 2
    assert recovery.damage[-1].lost_lsns is None  # nothing intact follows: how many were lost is unknown
    assert "are lost" in recovery.damage[-1].describe()
    assert recovery.next_lsn == first_of_newest  # the lost LSN is not handed out again


# --- flipped bytes anywhere (property) ----------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(min_value=1, max_value=60),
    segment_bytes=st.sampled_from([256, 700, 1 << 20]),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=3),
)
def test_flipped_bytes_lose_exactly_the_damaged_records(
    count: int, segment_bytes: int, flips: list[tuple[float, int]]
) -> None:
    with tempfile.TemporaryDirectory() as raw:
        directory = Path(raw)
        write_records(directory, range(1, count + 1), segment_bytes=segment_bytes)
        paths = segments(directory)
        layout = {path: record_offsets(path) for path in paths}
        original = {path: path.read_bytes() for path in paths}
        changed = {path: bytearray(data) for path, data in original.items()}
        total = sum(len(data) for data in original.values())
        for where, xor in flips:
            position = int(where * total)
            for path in paths:  # the segment holding the byte
                if position < len(changed[path]):
                    changed[path][position] ^= xor
                    break
                position -= len(changed[path])
        damaged: set[int] = set()
        headers: set[str] = set()
        for path in paths:
            path.write_bytes(bytes(changed[path]))
            # Flips may cancel out: what counts is which bytes differ in the end.
            diff = [i for i, (x, y) in enumerate(zip(original[path], changed[path], strict=True)) if x != y]
            if any(i < wal.SEGMENT_HEADER_SIZE for i in diff):
                headers.add(path.name)
            damaged.update(lsn for lsn, (s, e) in layout[path].items() if any(s <= i < e for i in diff))
        newest = paths[-1]
        newest_lsns = sorted(layout[newest])

        recovery = wal.recover_log(directory)
        # Never a damaged record, never a lost intact one.
        assert recovery.records == [r for r in expected(range(1, count + 1)) if r.lsn not in damaged]
        # A damaged end of the newest segment is cut as a torn tail; every other damage is reported.
        torn = set()
        for lsn in reversed(newest_lsns):
            if lsn not in damaged:
                break
            torn.add(lsn)
        reported: set[int] = set()
        for damage in recovery.damage:
            lost = damage.lost_lsns
            reported.update(range(damage.after_lsn + 1, count + 1) if lost is None else lost)
        assert damaged - torn <= reported
        assert {d.segment for d in recovery.damage if d.start == 0} == headers
        # Idempotent: the same records and the same report the second time.
        assert wal.recover_log(directory) == recovery
        # And the writer appends after whatever survived.
        write_records(directory, range(recovery.next_lsn, recovery.next_lsn + 3), segment_bytes=segment_bytes)
        after = wal.recover_log(directory)
        assert after.records == recovery.records + expected(range(recovery.next_lsn, recovery.next_lsn + 3))


def test_lsn_going_backwards_raises_data_loss(tmp_path: Path) -> None:
    writer = wal.WalWriter(tmp_path, 1)
    for lsn in (1, 2, 3, 3):
        writer.append(lsn, b"x")
    writer.sync()
    writer.close()
    with pytest.raises(DataLossError, match="LSN"):
        wal.recover(tmp_path)


def test_lsn_going_backwards_across_segments_raises_data_loss(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 11))
    later = tmp_path / wal.segment_name(11)
    later.write_bytes(wal.encode_segment_header(11) + wal.encode_record(5, b"stale"))
    with pytest.raises(DataLossError):
        wal.recover(tmp_path)


def test_garbage_length_is_a_torn_tail(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 11))
    (segment,) = segments(tmp_path)
    size = segment.stat().st_size
    with segment.open("ab") as handle:
        handle.write(struct.pack("<IIQ", 0xFFFFFFFF, 0, 11))  # length far past the end of the file
    assert wal.recover(tmp_path) == expected(range(1, 11))
    assert segment.stat().st_size == size


def test_non_segment_files_are_ignored(tmp_path: Path) -> None:
    write_records(tmp_path, range(1, 6))
    (tmp_path / "notes.wal").write_bytes(b"not a segment")
    (tmp_path / "00000000000000000009.tmp").write_bytes(b"junk")
    assert wal.recover(tmp_path) == expected(range(1, 6))


# --- the writer ---------------------------------------------------------------------------------------------


def test_sync_after_rotation_closes_retired_descriptors(tmp_path: Path) -> None:
    writer = wal.WalWriter(tmp_path, 1, segment_bytes=128)
    for lsn in range(1, 50):
        writer.append(lsn, b"y" * 40)
    writer.sync()
    assert writer.size <= 128 + wal.RECORD_HEADER_SIZE + 40
    writer.close()
    writer.close()  # idempotent
    assert [r.lsn for r in wal.recover(tmp_path)] == list(range(1, 50))


def test_concurrent_sync_while_appending(tmp_path: Path) -> None:
    """Group commit's pattern: appends under a lock, syncs outside it, rotations in between."""
    writer = wal.WalWriter(tmp_path, 1, segment_bytes=2048)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def syncer() -> None:
        try:
            while not stop.is_set():
                writer.sync()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=syncer)
    thread.start()
    try:
        for lsn in range(1, 2001):
            with lock:
                writer.append(lsn, payload_for(lsn))
    finally:
        stop.set()
        thread.join()
    writer.sync()
    writer.close()
    assert not errors
    assert wal.recover(tmp_path) == expected(range(1, 2001))


def fail_on(monkeypatch: pytest.MonkeyPatch, name: str, fd: int, *, partial: bool = False) -> None:
    """Make ``os.<name>`` fail with ENOSPC on ``fd`` (a write may first put half its bytes down)."""
    real = getattr(os, name)

    def fake(target: int, *args: Any) -> Any:
        if target != fd:
            return real(target, *args)
        if partial and args:
            data = b"".join(map(bytes, args[0])) if name == "writev" else bytes(args[0])
            if len(data) > 1:
                os.write(target, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, name, fake)


def test_failed_append_leaves_nothing_and_appending_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = wal.WalWriter(tmp_path, 1)
    for lsn in range(1, 6):
        writer.append(lsn, payload_for(lsn))
    writer.sync()
    (segment,) = segments(tmp_path)
    size = segment.stat().st_size
    with monkeypatch.context() as patch:
        fail_on(patch, "writev", writer._fd, partial=True)
        with pytest.raises(OSError, match="No space"):
            writer.append(6, payload_for(6))
    # The half-written frame was cut, so the next append lands right after the last good record.
    assert segment.stat().st_size == size == writer.size
    assert not writer.broken
    writer.append(6, payload_for(6))
    writer.sync()
    writer.close()
    assert wal.recover_log(tmp_path) == wal.WalRecovery(expected(range(1, 7)), [], 7)


def test_writer_that_could_not_clean_up_refuses_appends_until_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = wal.WalWriter(tmp_path, 1)
    for lsn in range(1, 4):
        writer.append(lsn, payload_for(lsn))
    writer.sync()
    durable = writer.position()
    with monkeypatch.context() as patch:
        fail_on(patch, "writev", writer._fd, partial=True)
        fail_on(patch, "ftruncate", writer._fd)
        with pytest.raises(OSError):
            writer.append(4, payload_for(4))
    assert bool(writer.broken)  # (not narrowed: rollback below clears it)
    with pytest.raises(OSError, match="rolled back"):
        writer.append(4, payload_for(4))
    writer.rollback(durable)
    assert not writer.broken
    writer.append(4, payload_for(4))
    writer.sync()
    writer.close()
    assert wal.recover(tmp_path) == expected(range(1, 5))


def test_failed_rotation_fsync_marks_the_writer_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = wal.WalWriter(tmp_path, 1, segment_bytes=256)
    lsn = 1
    while writer.size < 256:
        writer.append(lsn, payload_for(lsn))
        lsn += 1
    with monkeypatch.context() as patch:
        fail_on(patch, "fsync", writer._fd)
        with pytest.raises(OSError):
            writer.append(lsn, payload_for(lsn))
    # The unsynced records may be lost on disk even though a later fsync might say otherwise.
    assert writer.broken
    assert len(segments(tmp_path)) == 1
    writer.close()


def test_rollback_cuts_back_across_rotations(tmp_path: Path) -> None:
    writer = wal.WalWriter(tmp_path, 1, segment_bytes=256)
    for lsn in range(1, 6):
        writer.append(lsn, payload_for(lsn))
    writer.sync()
    durable = writer.position()
    for lsn in range(6, 40):
        writer.append(lsn, payload_for(lsn))
    assert len(segments(tmp_path)) > 3
    writer.rollback(durable)
    assert segments(tmp_path)[-1] == durable.segment
    assert writer.size == durable.size == durable.segment.stat().st_size
    assert wal.recover(tmp_path) == expected(range(1, 6))
    for lsn in range(6, 30):
        writer.append(lsn, payload_for(lsn))
    writer.sync()
    writer.close()
    assert wal.recover(tmp_path) == expected(range(1, 30))

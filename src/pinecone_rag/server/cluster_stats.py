"""Per-cluster metadata statistics and metadata columns (stored in cluster files; format in FORMAT.md).

:class:`ClusterStats` is what the query planner reads to skip a cluster whose records cannot match a
filter: per field, how many records have it, the range of its numbers, its strings (exactly when there
are at most :data:`MAX_EXACT_VALUES` distinct ones, else a :class:`Bloom` filter) and its boolean
counts. The statistics are plain data; deciding what a filter can match is the planner's job.

:func:`metadata_columns` turns a cluster's metadata into numpy arrays per field, so executors evaluate
filters without a Python loop per record.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence

    import numpy.typing as npt

    from pinecone_rag.server.records import Metadata

MAX_EXACT_VALUES: Final = 64
"""A field with at most this many distinct strings in a cluster keeps them exactly; above, a bloom filter."""
BLOOM_MIN_BITS: Final = 1024
BLOOM_MAX_BITS: Final = 1 << 20
BLOOM_BITS_PER_VALUE: Final = 10
BLOOM_HASHES: Final = 7
"""With 10 bits per value and 7 hashes a bloom filter answers wrongly "maybe" about 1% of the time."""
_BLOOM_WORDS: Final = struct.Struct("<8I")


def _bloom_positions(value: str, bits: int, hashes: int) -> list[int]:
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=32).digest()
    mask = bits - 1
    return [word & mask for word in _BLOOM_WORDS.unpack(digest)[:hashes]]


@dataclass(frozen=True, slots=True)
class Bloom:
    """A bloom filter over strings: never a false negative, a small rate of false positives.

    Bit ``p`` is bit ``p % 8`` of byte ``p // 8`` of ``data``. A value sets ``hashes`` bits: the first
    ``hashes`` little-endian uint32 words of ``blake2b(utf8(value), digest_size=32)``, each masked to
    ``bits - 1`` (``bits`` is a power of two, so the mask is the remainder).
    """

    bits: int
    hashes: int
    data: bytes

    def __post_init__(self) -> None:
        if self.bits < 8 or self.bits & (self.bits - 1) or len(self.data) != self.bits // 8:
            raise ValueError(f"bloom filter of {self.bits} bits cannot hold {len(self.data)} bytes")
        if not 1 <= self.hashes <= 8:
            raise ValueError(f"bloom filter hash count {self.hashes} is outside 1..8")

    @classmethod
    def build(cls, values: Collection[str]) -> Bloom:
        """A filter sized for ``values``: ~10 bits per value, a power of two within 1024..2**20 bits."""
        bits = BLOOM_MIN_BITS
        while bits < BLOOM_BITS_PER_VALUE * len(values) and bits < BLOOM_MAX_BITS:
            bits *= 2
        digests = b"".join(
            hashlib.blake2b(value.encode("utf-8"), digest_size=32).digest() for value in values
        )
        positions = np.frombuffer(digests, dtype="<u4").reshape(-1, 8)[:, :BLOOM_HASHES] & np.uint32(bits - 1)
        flags = np.zeros(bits, dtype=np.bool_)
        flags[positions.ravel()] = True
        # bitorder="little": bit p is bit p % 8 of byte p // 8, as might_contain reads it.
        return cls(bits, BLOOM_HASHES, np.packbits(flags, bitorder="little").tobytes())

    def might_contain(self, value: str) -> bool:
        """False only if ``value`` was certainly not added."""
        data = self.data
        return all(
            data[position >> 3] >> (position & 7) & 1
            for position in _bloom_positions(value, self.bits, self.hashes)
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in the stats section."""
        return {"bits": self.bits, "hashes": self.hashes, "data": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_json(cls, raw: Any) -> Bloom:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: ``raw`` is not a valid bloom filter.
        """
        try:
            return cls(int(raw["bits"]), int(raw["hashes"]), base64.b64decode(raw["data"], validate=True))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed bloom filter: {exc}") from exc


@dataclass(frozen=True, slots=True)
class FieldStats:
    """What one metadata field holds across the records of a cluster.

    Attributes:
        count: Records that have the field (with any value).
        number_count: Records whose value is a number.
        min: The smallest number, or None when no record has a number.
        max: The largest number, or None when no record has a number.
        string_count: Records whose value is a string or a list of strings.
        values: Every distinct string (strings and list elements) when there are at most
            :data:`MAX_EXACT_VALUES`; None otherwise, and then ``bloom`` holds them.
        bloom: A bloom filter of the distinct strings when there are too many for ``values``.
        true_count: Records whose value is ``True``.
        false_count: Records whose value is ``False``.
    """

    count: int
    number_count: int = 0
    min: float | None = None
    max: float | None = None
    string_count: int = 0
    values: frozenset[str] | None = frozenset()
    bloom: Bloom | None = None
    true_count: int = 0
    false_count: int = 0

    def might_contain(self, value: str) -> bool:
        """False only if no record holds the string ``value`` (as the value or a list element)."""
        if self.values is not None:
            return value in self.values
        return self.bloom is None or self.bloom.might_contain(value)

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in the stats section."""
        return {
            "count": self.count,
            "numbers": self.number_count,
            "min": self.min,
            "max": self.max,
            "strings": self.string_count,
            "values": None if self.values is None else sorted(self.values),
            "bloom": None if self.bloom is None else self.bloom.to_json(),
            "true": self.true_count,
            "false": self.false_count,
        }

    @classmethod
    def from_json(cls, raw: Any) -> FieldStats:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: ``raw`` is not valid field statistics.
        """
        try:
            values = raw["values"]
            bloom = raw["bloom"]
            low, high = raw["min"], raw["max"]
            return cls(
                count=int(raw["count"]),
                number_count=int(raw["numbers"]),
                min=None if low is None else float(low),
                max=None if high is None else float(high),
                string_count=int(raw["strings"]),
                values=None if values is None else frozenset(str(value) for value in values),
                bloom=None if bloom is None else Bloom.from_json(bloom),
                true_count=int(raw["true"]),
                false_count=int(raw["false"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed field statistics: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ClusterStats:
    """Per-field metadata statistics of one cluster, for pruning clusters a filter cannot match.

    A field absent from ``fields`` is missing from every record of the cluster.
    """

    count: int
    fields: Mapping[str, FieldStats] = field(default_factory=dict)

    @classmethod
    def compute(cls, metadata: Sequence[Metadata | None]) -> ClusterStats:
        """The statistics of a cluster holding ``metadata`` (one entry per record)."""
        columns = _collect(metadata)
        return cls(len(metadata), {name: column.stats() for name, column in columns.items()})

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in the stats section."""
        return {"count": self.count, "fields": {name: s.to_json() for name, s in self.fields.items()}}

    @classmethod
    def from_json(cls, raw: Any) -> ClusterStats:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: ``raw`` is not valid cluster statistics.
        """
        try:
            fields = raw["fields"]
            if not isinstance(fields, dict):
                raise TypeError("'fields' is not an object")
            return cls(int(raw["count"]), {str(k): FieldStats.from_json(v) for k, v in fields.items()})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed cluster statistics: {exc}") from exc


@dataclass(frozen=True, slots=True)
class MetadataColumn:
    """One metadata field of a cluster as arrays, so filters run as numpy operations.

    A field can hold different types in different records; each type has its own array.

    Attributes:
        present: Per row: the record has the field (any type).
        numbers: Per row: the value if it is a number, NaN otherwise (metadata numbers are always finite).
            None when no record has a number.
        bools: Per row: 1 for ``True``, 0 for ``False``, -1 otherwise. None when no record has a bool.
        strings: Each distinct string (as the value or as a list element) -> the sorted rows that hold it
            (a read-only mapping; :meth:`StringPostings.rows` also answers for absent values).
    """

    present: npt.NDArray[np.bool_]
    numbers: npt.NDArray[np.float64] | None
    bools: npt.NDArray[np.int8] | None
    strings: StringPostings


class StringPostings(Mapping[str, "npt.NDArray[np.int64]"]):
    """An inverted map of one field: each distinct string -> the sorted rows holding it.

    Stored as one row array grouped by value plus offsets, so a field with a distinct value per record
    costs three arrays and a dict of ints, not one small array per value. Lookups return views.
    """

    __slots__ = ("_index", "_offsets", "_rows")

    def __init__(
        self, index: dict[str, int], offsets: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
    ) -> None:
        self._index = index
        self._offsets = offsets
        self._rows = rows

    @classmethod
    def build(cls, index: dict[str, int], codes: list[int], rows: list[int]) -> StringPostings:
        """Group ``rows`` by ``codes`` (the value ids of ``index``); rows arrive in increasing order."""
        code_array = np.asarray(codes, dtype=np.int64)
        # A stable sort keeps each value's rows in their (increasing) arrival order.
        order = np.argsort(code_array, kind="stable")
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(np.bincount(code_array, minlength=len(index)), out=offsets[1:])
        return cls(index, offsets, np.asarray(rows, dtype=np.int64)[order])

    def __getitem__(self, value: str) -> npt.NDArray[np.int64]:
        code = self._index[value]
        return self._rows[self._offsets[code] : self._offsets[code + 1]]

    def rows(self, value: str) -> npt.NDArray[np.int64]:
        """The rows holding ``value``; empty when none does."""
        code = self._index.get(value)
        if code is None:
            return self._rows[:0]
        return self._rows[self._offsets[code] : self._offsets[code + 1]]

    def __contains__(self, value: object) -> bool:
        return value in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


class _FieldAccumulator:
    __slots__ = (
        "bool_rows",
        "bool_values",
        "number_rows",
        "number_values",
        "rows",
        "string_codes",
        "string_records",
        "string_rows",
        "strings",
    )

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.number_rows: list[int] = []
        self.number_values: list[float] = []
        self.bool_rows: list[int] = []
        self.bool_values: list[bool] = []
        self.string_records = 0
        self.strings: dict[str, int] = {}  # distinct string -> its code, in first-seen order
        self.string_codes: list[int] = []  # one (code, row) pair per occurrence
        self.string_rows: list[int] = []

    def add(self, row: int, value: object) -> None:
        self.rows.append(row)
        # bool before numbers: bool is a subclass of int.
        if value is True or value is False:
            self.bool_rows.append(row)
            self.bool_values.append(value)
        elif isinstance(value, str):
            self.string_records += 1
            self.string_codes.append(self.strings.setdefault(value, len(self.strings)))
            self.string_rows.append(row)
        elif isinstance(value, list):
            self.string_records += 1
            # dict.fromkeys: each element once per row, so a value's rows stay unique.
            for element in dict.fromkeys(value):
                self.string_codes.append(self.strings.setdefault(str(element), len(self.strings)))
                self.string_rows.append(row)
        elif isinstance(value, int | float):
            self.number_rows.append(row)
            self.number_values.append(float(value))
        # Anything else cannot come out of metadata validation; it counts as present only.

    def extend(self, rows: list[int], values: list[object]) -> None:
        """:meth:`add` for each ``(row, value)`` in order; a column of one type takes a bulk path."""
        kinds = set(map(type, values))
        if kinds == {str}:
            self.rows.extend(rows)
            self.string_records += len(values)
            strings = self.strings
            # len() is read before each insertion: codes in first-seen order, as add gives them.
            texts = cast("list[str]", values)
            self.string_codes.extend([strings.setdefault(text, len(strings)) for text in texts])
            self.string_rows.extend(rows)
        elif kinds == {list}:
            self.rows.extend(rows)
            self.string_records += len(values)
            strings, codes, string_rows = self.strings, self.string_codes, self.string_rows
            for row, items in zip(rows, cast("list[list[object]]", values), strict=True):
                for element in dict.fromkeys(items):  # each element once per row, as in add
                    codes.append(strings.setdefault(str(element), len(strings)))
                    string_rows.append(row)
        elif kinds and kinds <= {int, float}:  # bool is neither (type(True) is bool)
            self.rows.extend(rows)
            self.number_rows.extend(rows)
            self.number_values.extend(map(float, cast("list[float]", values)))
        else:
            for row, value in zip(rows, values, strict=True):
                self.add(row, value)

    def stats(self) -> FieldStats:
        numbers = self.number_values
        exact = len(self.strings) <= MAX_EXACT_VALUES
        trues = sum(self.bool_values)
        return FieldStats(
            count=len(self.rows),
            number_count=len(numbers),
            min=min(numbers) if numbers else None,
            max=max(numbers) if numbers else None,
            string_count=self.string_records,
            values=frozenset(self.strings) if exact else None,
            bloom=None if exact else Bloom.build(self.strings.keys()),
            true_count=trues,
            false_count=len(self.bool_values) - trues,
        )

    def column(self, count: int) -> MetadataColumn:
        present = np.zeros(count, dtype=np.bool_)
        present[self.rows] = True
        numbers: npt.NDArray[np.float64] | None = None
        if self.number_rows:
            numbers = np.full(count, np.nan, dtype=np.float64)
            numbers[self.number_rows] = self.number_values
        bools: npt.NDArray[np.int8] | None = None
        if self.bool_rows:
            bools = np.full(count, -1, dtype=np.int8)
            bools[self.bool_rows] = self.bool_values
        strings = StringPostings.build(self.strings, self.string_codes, self.string_rows)
        return MetadataColumn(present, numbers, bools, strings)


def _collect(metadata: Sequence[Metadata | None]) -> dict[str, _FieldAccumulator]:
    # Values are gathered per field first, then added a column at a time: a build computes this for
    # every record it writes, and one method call per value was most of that.
    columns: dict[str, tuple[list[int], list[object]]] = {}
    for row, record in enumerate(metadata):
        if not record:
            continue
        items: Mapping[str, object] = record
        for name, value in items.items():
            if value is None:  # the filter language treats a null like a missing field
                continue
            column = columns.get(name)
            if column is None:
                column = columns[name] = ([], [])
            column[0].append(row)
            column[1].append(value)
    fields: dict[str, _FieldAccumulator] = {}
    for name, (rows, values) in columns.items():
        accumulator = fields[name] = _FieldAccumulator()
        accumulator.extend(rows, values)
    return fields


def metadata_columns(metadata: Sequence[Metadata | None]) -> dict[str, MetadataColumn]:
    """Every metadata field of ``metadata`` (one entry per row) as a :class:`MetadataColumn`."""
    count = len(metadata)
    return {name: accumulator.column(count) for name, accumulator in _collect(metadata).items()}

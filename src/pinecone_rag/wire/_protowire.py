"""Protobuf wire-format constants and type aliases shared by the fast encoder and decoder."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from typing import TypeAlias

    from numpy.typing import NDArray

    FloatArray: TypeAlias = NDArray[np.float32]
    IndexArray: TypeAlias = NDArray[np.uint32]
    Sparse: TypeAlias = tuple[NDArray[np.uint32], NDArray[np.float32]]
    SparseInput: TypeAlias = tuple[NDArray[np.integer[Any]], NDArray[np.floating[Any]]]
    Ranges: TypeAlias = list[tuple[int, int]]  # byte ranges (start, stop) of a field's occurrences

MAX_DEPTH = 100
"""Deepest nesting of messages read or written (the outermost is 0; map entries count), as upb's default."""

UINT32_LIMIT = 1 << 32
UINT64_MASK = (1 << 64) - 1
F32 = np.dtype("<f4")
DOUBLE = struct.Struct("<d")
FLOAT = struct.Struct("<f")
ONE_BYTE = [bytes((i,)) for i in range(0x80)]
VARINT_SHIFTS = np.arange(0, 35, 7, dtype=np.uint32)  # the five 7-bit groups of a uint32
GROUP_COLUMNS = np.arange(5)

# Wire types.
VARINT, I64, LEN, I32 = 0, 1, 2, 5

"""A hand-written protobuf codec for the hot data-plane messages, straight from and into numpy.

Building ``UpsertRequest`` with the generated classes costs a Python float object per vector component;
that is the measured bottleneck of the client (ARCHITECTURE.md, decision 4). A packed ``repeated float``
field is a tag, a varint length and the raw little-endian float32 bytes, i.e. ``ndarray.tobytes()``, so
this module writes requests from numpy rows and reads packed floats with ``np.frombuffer``: no per-float
Python work anywhere, and packed ``uint32`` varints (sparse indices) are encoded and decoded vectorised.

Encoders write fields in field-number order and omit proto3 defaults exactly as protobuf does, so their
output is byte-identical to ``SerializeToString()`` of the same message built with the generated classes,
except for ``google.protobuf.Struct`` maps, whose entry order protobuf does not define (ours follows the
dict's order, or the first record's when every record of an upsert has the same keys); those compare
equal once parsed.

Decoders follow the protobuf parsing rules: unknown fields (wire types 0, 1, 2, 5) are skipped, repeated
scalars are accepted packed and unpacked, repeated occurrences of a singular message field merge, and the
last occurrence of a singular scalar wins. Malformed input (truncation, invalid wire types, field number 0,
overlong varints or tags, bad UTF-8, messages nested deeper than protobuf's limit of 100, counted as upb
counts them) raises ``ValueError``, and so do groups (wire types 3 and 4): proto3 never writes them, so
unlike upb, which skips them as unknown fields, this codec refuses them. The value arrays of one response
are views of rows of one freshly allocated buffer: writable, and independent of the input bytes.

The generated classes in :mod:`pinecone_rag.wire.messages` stay the reference: the unit tests check this
codec against them, and the client keeps using them for small requests.
"""

from __future__ import annotations

from pinecone_rag.wire._protowire import MAX_DEPTH
from pinecone_rag.wire.decode import (
    DecodedFetch,
    DecodedMatch,
    DecodedQuery,
    DecodedVector,
    decode_fetch_by_metadata_response,
    decode_fetch_response,
    decode_query_response,
)
from pinecone_rag.wire.decode_upsert import (
    DecodedUpsert,
    DecodedUpsertColumns,
    decode_upsert_columns,
    decode_upsert_request,
)
from pinecone_rag.wire.encode import encode_fetch_request, encode_query_request, encode_upsert_request

__all__ = [
    "MAX_DEPTH",
    "DecodedFetch",
    "DecodedMatch",
    "DecodedQuery",
    "DecodedUpsert",
    "DecodedUpsertColumns",
    "DecodedVector",
    "decode_fetch_by_metadata_response",
    "decode_fetch_response",
    "decode_query_response",
    "decode_upsert_columns",
    "decode_upsert_request",
    "encode_fetch_request",
    "encode_query_request",
    "encode_upsert_request",
]

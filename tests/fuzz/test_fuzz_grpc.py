"""Fuzzing the gRPC data plane: random and mutated bytes to every ``VectorService`` method.

Bytes go through a raw channel's generic ``unary_unary`` (no serializer), on the shared port (through
the listener's splice) and on the direct grpcio port. Every call must end OK or with a client-error
status, never INTERNAL/UNKNOWN (a server bug), DEADLINE_EXCEEDED (a hang) or UNAVAILABLE (a crash).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from pinecone_rag.wire import messages as pb

from .strategies import mutated_bytes
from .support import FUZZ, KEY, TALLY

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .support import FuzzTarget

FORBIDDEN = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _valid_messages() -> dict[str, list[bytes]]:
    """A few valid requests per method, serialized: the seeds of the mutations."""
    m = {name: request for name, (request, _) in pb.METHODS.items()}
    flt = _struct({"genre": {"$in": ["drama", "comedy"]}, "year": {"$gte": 2000}})
    upsert = m["Upsert"](namespace="ns")
    upsert.vectors.add(
        id="v1", values=[0.1, 0.2, 0.3, 0.4], metadata=_struct({"genre": "drama", "year": 2020})
    )
    sparse = m["Upsert"]()
    vector = sparse.vectors.add(id="s1")
    vector.sparse_values.indices[:] = [1, 5, 9]
    vector.sparse_values.values[:] = [0.5, 0.1, 0.2]
    query = m["Query"](
        namespace="ns", top_k=3, vector=[0.1, 0.2, 0.3, 0.4], include_metadata=True, filter=flt
    )
    by_id = m["Query"](id="v1", top_k=2, include_values=True)
    sparse_query = m["Query"](top_k=5)
    sparse_query.sparse_vector.indices[:] = [1, 5]
    sparse_query.sparse_vector.values[:] = [0.5, 0.5]
    update = m["Update"](
        id="v1", values=[1, 1, 1, 1], set_metadata=_struct({"genre": "comedy"}), namespace="ns"
    )
    messages = {
        "Upsert": [upsert, sparse],
        "Query": [query, by_id, sparse_query],
        "Fetch": [m["Fetch"](ids=["v1", "s1"], namespace="ns")],
        "FetchByMetadata": [m["FetchByMetadata"](namespace="ns", filter=flt, limit=10)],
        "Update": [update, m["Update"](filter=flt, set_metadata=_struct({"seen": True}), dry_run=True)],
        "Delete": [
            m["Delete"](ids=["v9"], namespace="ns"),
            m["Delete"](delete_all=True, namespace="scratch"),
        ],
        "List": [m["List"](namespace="ns", prefix="v", limit=10)],
        "DescribeIndexStats": [m["DescribeIndexStats"](filter=flt)],
        "ListNamespaces": [m["ListNamespaces"](prefix="n", limit=5)],
        "DescribeNamespace": [m["DescribeNamespace"](namespace="ns")],
        "CreateNamespace": [m["CreateNamespace"](name="fuzzed")],
        "DeleteNamespace": [m["DeleteNamespace"](namespace="scratch")],
    }
    assert set(messages) == set(pb.METHODS)
    return {name: [message.SerializeToString() for message in items] for name, items in messages.items()}


VALID = _valid_messages()


@pytest.fixture(scope="module")
def channels(target: FuzzTarget) -> Iterator[dict[tuple[str, str], grpc.Channel]]:
    opened: dict[tuple[str, str], grpc.Channel] = {}
    for name, host in target.hosts.items():
        opened[name, "shared"] = grpc.insecure_channel(host.removeprefix("http://"))
        opened[name, "direct"] = grpc.insecure_channel(f"127.0.0.1:{target.grpc_ports[name]}")
    yield opened
    for channel in opened.values():
        channel.close()


@given(
    index=st.sampled_from(["dense", "sparse", "docs"]),
    port=st.sampled_from(["shared", "direct"]),
    call=st.sampled_from(sorted(VALID)).flatmap(
        lambda method: st.tuples(
            st.just(method),
            st.sampled_from(VALID[method]).flatmap(mutated_bytes)
            | st.binary(max_size=300)
            | st.sampled_from(VALID[method]),
        )
    ),
)
@FUZZ
def test_fuzz_grpc_messages(
    channels: dict[tuple[str, str], grpc.Channel], index: str, port: str, call: tuple[str, bytes]
) -> None:
    method, payload = call
    stub = channels[index, port].unary_unary(f"/VectorService/{method}")
    try:
        stub(payload, metadata=(("api-key", KEY),), timeout=30)
    except grpc.RpcError as exc:
        error: Any = exc
        TALLY.note(error.code().name)
        assert error.code() not in FORBIDDEN, (method, payload[:200], error.code(), error.details())
    else:
        TALLY.note("OK")


def test_grpc_still_answers_after_fuzzing(
    channels: dict[tuple[str, str], grpc.Channel], target: FuzzTarget
) -> None:
    for channel in channels.values():
        stub = channel.unary_unary("/VectorService/DescribeIndexStats")
        assert isinstance(stub(b"", metadata=(("api-key", KEY),), timeout=30), bytes)
    target.healthy()

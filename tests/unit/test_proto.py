"""The wire contract: generated code is current, matches the official SDK, and coexists with it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pinecone_rag.wire import messages as pb

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "src" / "pinecone_rag" / "_proto"


def _generator_python() -> str | None:
    configured = os.environ.get("PINECONE_RAG_PROTOC_PYTHON")
    if configured:
        return configured
    return sys.executable if importlib.util.find_spec("grpc_tools") else None


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    python = _generator_python()
    if python is None:
        pytest.skip("grpcio-tools is not installed; `make test` provides it through .venv-tools")
    subprocess.run([python, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)], check=True)
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("*.py")}
    committed = {p.name: p.read_bytes() for p in GENERATED.glob("*.py")}
    assert fresh.keys() == committed.keys()
    for name, data in fresh.items():
        assert data == committed[name], f"{name} is stale: run `make protos`"


def _describe(file_descriptor: object) -> dict[str, object]:
    """Messages with fields (number, type, label, json name, message type, presence) and service methods."""
    out: dict[str, object] = {}

    def walk(message: object, prefix: str) -> None:
        name = prefix + message.name  # type: ignore[attr-defined]
        out[name] = sorted(
            (
                field.name,
                field.number,
                field.type,
                field.is_repeated if hasattr(field, "is_repeated") else field.label,
                field.json_name,
                field.message_type.full_name if field.message_type else None,
                field.has_presence,
                tuple(f.name for f in field.containing_oneof.fields) if field.containing_oneof else None,
            )
            for field in message.fields  # type: ignore[attr-defined]
        )
        for nested in message.nested_types:  # type: ignore[attr-defined]
            walk(nested, name + ".")

    for message in file_descriptor.message_types_by_name.values():  # type: ignore[attr-defined]
        walk(message, "")
    for service in file_descriptor.services_by_name.values():  # type: ignore[attr-defined]
        out["service " + service.full_name] = [
            (m.name, m.input_type.full_name, m.output_type.full_name) for m in service.methods
        ]
    out["package"] = file_descriptor.package  # type: ignore[attr-defined]
    return out


def test_descriptors_match_official_sdk() -> None:
    official = pytest.importorskip("pinecone.core.grpc.protos.db_data_2025_10_pb2")
    ours = _describe(pb.POOL.FindFileByName("vector_service.proto"))
    theirs = _describe(official.DESCRIPTOR)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name] == theirs[name], name
    assert ours["package"] == ""


def test_coexists_with_official_sdk_in_one_process() -> None:
    official = pytest.importorskip("pinecone.core.grpc.protos.db_data_2025_10_pb2")
    from pinecone.grpc import PineconeGRPC  # the official gRPC client imports cleanly next to ours

    assert PineconeGRPC is not None
    assert pb.Vector is not official.Vector
    ours = pb.Vector(id="a", values=[0.5, -1.0])
    ours.metadata.update({"genre": "doc", "year": 2020, "tags": ["x", "y"]})
    ours.sparse_values.indices.extend([3, 7])
    ours.sparse_values.values.extend([0.1, 0.2])
    theirs = official.Vector()
    theirs.ParseFromString(ours.SerializeToString())
    assert theirs.id == "a"
    assert dict(theirs.metadata) == {"genre": "doc", "year": 2020.0, "tags": ["x", "y"]}
    assert theirs.SerializeToString(deterministic=True) == ours.SerializeToString(deterministic=True)
    request = official.QueryRequest(top_k=3, vector=[1.0, 2.0], namespace="ns", include_metadata=True)
    parsed = pb.QueryRequest.FromString(request.SerializeToString())
    assert (parsed.top_k, list(parsed.vector), parsed.namespace) == (3, [1.0, 2.0], "ns")


def test_service_has_no_package() -> None:
    assert pb.SERVICE.full_name == "VectorService"
    assert list(pb.METHODS) == [
        "Upsert",
        "Delete",
        "Fetch",
        "List",
        "Query",
        "Update",
        "DescribeIndexStats",
        "ListNamespaces",
        "DescribeNamespace",
        "DeleteNamespace",
        "CreateNamespace",
        "FetchByMetadata",
    ]

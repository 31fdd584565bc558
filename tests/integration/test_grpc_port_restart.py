"""The advertised direct gRPC port of an index survives a restart when it is free, and moves when not.

A real server on loopback (port 0), restarted on the same data directory; raw gRPC calls to the port
describe_index advertises.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
from typing import TYPE_CHECKING, Any

import grpc

from pinecone_rag.server import LocalServer
from pinecone_rag.server.control_db import ControlDatabase
from pinecone_rag.server.launcher import CONTROL_DB
from pinecone_rag.wire import messages as pb

from .durability_support import HEADERS, client, create_index

if TYPE_CHECKING:
    from pathlib import Path

GRPC_PORT_HEADER = "x-pinecone-rag-grpc-port"


def direct_port(server: LocalServer, name: str) -> int:
    with client(server.url) as control:
        response = control.get(f"/indexes/{name}")
        assert response.status_code == 200, response.text
        return int(response.headers[GRPC_PORT_HEADER])


def call(port: int, method: str, request: Any, response_class: Any) -> Any:
    """One raw gRPC call to the direct port, with the test's API key."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = channel.unary_unary(
            f"/{pb.SERVICE_NAME}/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_class.FromString,
        )
        return stub(request, metadata=[("api-key", HEADERS["Api-Key"])], timeout=30)


def record_count(port: int) -> int:
    """describe_index_stats over the direct port: it answers, and sees the stored record."""
    stats = call(port, "DescribeIndexStats", pb.DescribeIndexStatsRequest(), pb.DescribeIndexStatsResponse)
    return int(stats.total_vector_count)


def upsert_one(port: int) -> None:
    request = pb.UpsertRequest(vectors=[pb.Vector(id="a", values=[0.5] * 8)])
    assert call(port, "Upsert", request, pb.UpsertResponse).upserted_count == 1


def index_with_one_record(data_dir: Path, name: str) -> int:
    """Start a server, create index ``name``, write one record over its direct port, stop; the port."""
    with LocalServer(data_dir, port=0) as server:
        with client(server.url) as control:
            create_index(control, name)
        port = direct_port(server, name)
        upsert_one(port)
    return port


def test_the_direct_grpc_port_is_kept_across_restarts(tmp_path: Path) -> None:
    port = index_with_one_record(tmp_path, "kept")
    with LocalServer(tmp_path, port=0) as second:
        assert direct_port(second, "kept") == port
        assert record_count(port) == 1


def test_a_taken_direct_port_is_replaced_and_the_new_one_advertised(tmp_path: Path) -> None:
    port = index_with_one_record(tmp_path, "moved")
    # Someone else listens on the old port while the server is down.
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        with LocalServer(tmp_path, port=0) as second:
            moved = direct_port(second, "moved")
            assert moved != port
            assert record_count(moved) == 1
        # The new port is what the control database remembers for the next start.
        database = ControlDatabase(tmp_path / CONTROL_DB)
        try:
            assert [record.grpc_port for record in database.indexes()] == [moved]
        finally:
            database.close()
    finally:
        squatter.close()


def test_a_database_from_before_the_column_gains_it(tmp_path: Path) -> None:
    with LocalServer(tmp_path, port=0) as first, client(first.url) as control:
        create_index(control, "old")
    # The database as a release before the direct port was remembered left it.
    with contextlib.closing(sqlite3.connect(tmp_path / CONTROL_DB)) as connection:
        connection.execute("ALTER TABLE indexes DROP COLUMN grpc_port")
        connection.commit()
    database = ControlDatabase(tmp_path / CONTROL_DB)
    try:
        assert [(record.name, record.grpc_port) for record in database.indexes()] == [("old", None)]
    finally:
        database.close()
    with LocalServer(tmp_path, port=0) as second:
        assert record_count(direct_port(second, "old")) == 0

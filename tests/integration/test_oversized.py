"""Oversized and slow requests are refused early, without exhausting memory, while others are served.

The 100 MB tests run against ``pinecone-rag serve`` in a subprocess so the server's own peak RSS
(``VmHWM``) can be read from ``/proc``; the figures are printed (``pytest -s``) for SECURITY.md.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import orjson
import pytest

from pinecone_rag.server import LocalServer
from pinecone_rag.server.data_rest import MAX_BODY_BYTES
from pinecone_rag.server.filters import MAX_FILTER_DEPTH, MAX_IN_VALUES
from pinecone_rag.server.settings import ENV_API_KEYS
from pinecone_rag.wire import messages as pb

if TYPE_CHECKING:
    from collections.abc import Iterator

KEY = "limits-key"
SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
HUNDRED_MB = 100 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)
HEAD_TIMEOUT = 2.0


def http(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Api-Key": KEY}, timeout=30)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


class Served:
    """``pinecone-rag serve`` in a subprocess, with one index."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.host_port = url.removeprefix("http://")
        with http(url) as control:
            created = control.post("/indexes", json={"name": "big", "dimension": 4, "spec": SERVERLESS})
        assert created.status_code == 201, created.text
        self.index_url: str = created.json()["host"]
        self.data_port = int(self.index_url.rsplit(":", 1)[1])
        self.grpc_port = int(created.headers["x-pinecone-rag-grpc-port"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = {k: v for k, v in os.environ.items() if k != ENV_API_KEYS}
    command = [
        sys.executable,
        "-m",
        "pinecone_rag.cli",
        "serve",
        "--data-dir",
        str(tmp_path_factory.mktemp("big")),
        "--port",
        "0",
        "--data-port-start",
        "0",
        "--api-key",
        KEY,
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while " on http" not in line:
            assert time.monotonic() < deadline, "serve did not start"
            assert process.poll() is None, "serve exited"
            line = process.stdout.readline()
        yield Served(process, line.rsplit(" on ", 1)[1].strip())
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _head(method: str, path: str, host: str, length: int | None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        f"Api-Key: {KEY}",
        "Content-Type: application/json",
    ]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket, timeout: float = 30) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while True:
        head, _, body = data.partition(b"\r\n\r\n")
        if _:
            lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
            if not lengths or len(body) >= int(lengths[0].split(b":")[1]):
                return data
        part = sock.recv(65536)
        if not part:
            return data
        data += part


def _declared_100_mb(port: int, path: str) -> tuple[bytes, int]:
    """Declare a 100 MB body; returns the answer (read before sending any body) and bytes accepted after."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_head("POST", path, f"127.0.0.1:{port}", HUNDRED_MB))
        answer = _read_response(sock)
        sent = 0
        try:
            while sent < HUNDRED_MB:
                sent += sock.send(CHUNK)
        except OSError:
            pass
        return answer, sent


def _streamed_100_mb(port: int, path: str) -> tuple[bytes, int]:
    """Stream 100 MB chunked until the server answers; returns the answer and the bytes sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_head("POST", path, f"127.0.0.1:{port}", None))
        frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
        sent = 0
        try:
            while sent < HUNDRED_MB:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(frame)
                sent += len(CHUNK)
        except OSError:
            pass
        return _read_response(sock), sent


def test_100_mb_bodies_are_refused_before_they_are_read(served: Served) -> None:
    before = peak_rss_mb(served.process.pid)
    for port, path in ((served.data_port, "/vectors/upsert"), (served.data_port, "/query")):
        answer, sent = _declared_100_mb(port, path)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"connection: close" in answer.lower()
        assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == 3
        assert sent < HUNDRED_MB, "the server kept reading a body it had refused"
    port = int(served.host_port.rsplit(":", 1)[1])
    answer, sent = _declared_100_mb(port, "/indexes")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert sent < HUNDRED_MB
    declared_peak = peak_rss_mb(served.process.pid)
    # Without a Content-Length the body is counted as it streams and cut at the limit.
    answer, sent = _streamed_100_mb(served.data_port, "/vectors/upsert")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < HUNDRED_MB
    answer, sent_control = _streamed_100_mb(port, "/embed")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    streamed_peak = peak_rss_mb(served.process.pid)
    print(
        f"\n[oversized] server peak RSS: {before:.0f} MiB before, {declared_peak:.0f} MiB after three "
        f"declared 100 MB bodies, {streamed_peak:.0f} MiB after streamed ones "
        f"(cut at {sent / 2**20:.0f} MiB data plane, {sent_control / 2**20:.0f} MiB control plane)"
    )
    assert declared_peak - before < 20, "a refused declared body was buffered"
    assert streamed_peak - before < 3 * MAX_BODY_BYTES / 2**20
    # Still serving.
    with http(served.index_url) as data:
        assert data.post("/describe_index_stats", json={}).status_code == 200


def test_100_mb_grpc_message_is_refused(served: Served) -> None:
    before = peak_rss_mb(served.process.pid)
    with grpc.insecure_channel(
        f"127.0.0.1:{served.grpc_port}", options=[("grpc.max_send_message_length", -1)]
    ) as channel:
        call = channel.unary_unary("/VectorService/Upsert")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\x0a" + b"\xff" * HUNDRED_MB, metadata=(("api-key", KEY),), timeout=60)
        error: Any = caught.value
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    after = peak_rss_mb(served.process.pid)
    print(f"\n[oversized] server peak RSS around a 100 MB gRPC message: {before:.0f} -> {after:.0f} MiB")
    with http(served.index_url) as data:
        assert data.post("/describe_index_stats", json={}).status_code == 200


# --- limits on content --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServer, dict[str, Any]]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ENV_API_KEYS, raising=False)
        server = LocalServer(tmp_path_factory.mktemp("limits"), port=0, request_head_timeout=HEAD_TIMEOUT)
    with server, http(server.url) as control:
        created = control.post("/indexes", json={"name": "lim", "dimension": 4, "spec": SERVERLESS})
        assert created.status_code == 201
        model: dict[str, Any] = created.json()
        model["grpc_port"] = int(created.headers["x-pinecone-rag-grpc-port"])
        yield server, model


def test_huge_ids_are_refused(limited: tuple[LocalServer, dict[str, Any]]) -> None:
    _, index = limited
    with http(index["host"]) as data:
        for record_id in ("x" * 513, "x" * 1_000_000):
            response = data.post(
                "/vectors/upsert", json={"vectors": [{"id": record_id, "values": [1, 0, 0, 0]}]}
            )
            assert response.status_code == 400
            assert len(response.content) < 1000, "the error echoes the whole id"
        assert data.get("/vectors/fetch", params={"ids": ["x" * 10_000]}).status_code == 400
        assert data.get("/vectors/fetch", params={"ids": [str(i) for i in range(1001)]}).status_code == 400
        assert data.post("/vectors/delete", json={"ids": [str(i) for i in range(1001)]}).status_code == 400


def _nested_and(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"a": {"$eq": 1}}
    for _ in range(depth):
        node = {"$and": [node]}
    return node


def test_deep_filters_are_refused(limited: tuple[LocalServer, dict[str, Any]]) -> None:
    _, index = limited
    query = {"vector": [1, 0, 0, 0], "topK": 1}
    with http(index["host"]) as data:
        assert (
            data.post("/query", json={**query, "filter": _nested_and(MAX_FILTER_DEPTH - 1)}).status_code
            == 200
        )
        response = data.post("/query", json={**query, "filter": _nested_and(MAX_FILTER_DEPTH + 1)})
        assert response.status_code == 400
        assert "nested" in response.json()["message"]
        # 100 000 levels of JSON: the parser's own recursion limit answers, as a 400.
        deep = b'{"vector":[1,0,0,0],"topK":1,"filter":' + b'{"$and":[' * 100_000 + b"]}" * 100_000 + b"}"
        response = data.post("/query", content=deep, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
    # gRPC: a Struct nested 500 deep is beyond protobuf's recursion limit: INVALID_ARGUMENT, not a crash.
    field = pb.METHODS["Query"][0].DESCRIPTOR.fields_by_name["filter"].number
    struct = b""
    for _ in range(500):
        value = b"\x2a" + _varint(len(struct)) + struct  # Value.struct_value (field 5)
        entry = b"\x0a\x01a\x12" + _varint(len(value)) + value  # map entry: key "a", value
        struct = b"\x0a" + _varint(len(entry)) + entry  # Struct.fields
    message = b"\x10\x01" + bytes([field << 3 | 2]) + _varint(len(struct)) + struct  # top_k=1, filter
    code = _grpc_code(index["grpc_port"], "Query", message)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _grpc_code(port: int, method: str, payload: bytes) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"/VectorService/{method}")
        try:
            call(payload, metadata=(("api-key", KEY),), timeout=30)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
            return code
    return grpc.StatusCode.OK


def test_in_with_10k_values(limited: tuple[LocalServer, dict[str, Any]]) -> None:
    _, index = limited
    with http(index["host"]) as data:
        upsert = {"vectors": [{"id": "a", "values": [1, 0, 0, 0], "metadata": {"k": "v9999"}}]}
        assert data.post("/vectors/upsert", json=upsert).status_code == 200
        values = [f"v{i}" for i in range(MAX_IN_VALUES)]
        started = time.monotonic()
        response = data.post(
            "/query", json={"vector": [1, 0, 0, 0], "topK": 1, "filter": {"k": {"$in": values}}}
        )
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 10
        too_many = {"k": {"$in": [*values, "one-more"]}}
        assert (
            data.post("/query", json={"vector": [1, 0, 0, 0], "topK": 1, "filter": too_many}).status_code
            == 400
        )


# --- slow clients -------------------------------------------------------------------------------------------


def _trickle(port: int, payload: bytes, interval: float, outcome: dict[str, Any]) -> None:
    """Send ``payload`` one byte per ``interval`` until the server closes; record when and what it said."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            for i in range(60):  # at most a minute: the server must cut the connection long before
                if payload:
                    sock.send(payload[i % len(payload) : i % len(payload) + 1])
                readable, _, _ = select.select([sock], [], [], interval)
                if readable:
                    part = sock.recv(4096)
                    received += part
                    if not part:
                        break
        except OSError:
            pass
    outcome["seconds"] = time.monotonic() - started
    outcome["received"] = received


@pytest.mark.parametrize(
    ("plane", "payload"),
    [
        ("control", b"GET /indexes HTTP/1.1\r\nHost: x\r\nApi-Key: k\r\nX-Slow: " + b"a" * 100),
        ("data", b"GET /vectors/list HTTP/1.1\r\nHost: x\r\nApi-Key: k\r\nX-Slow: " + b"a" * 100),
        ("data", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r"),  # a gRPC preface, never finished
        ("data", b""),  # connects and says nothing
        ("control", b""),
    ],
    ids=["control-headers", "data-headers", "data-h2-preface", "data-idle", "control-idle"],
)
def test_slowloris_clients_are_cut_off_and_others_served(
    limited: tuple[LocalServer, dict[str, Any]], plane: str, payload: bytes
) -> None:
    server, index = limited
    port = server.port if plane == "control" else int(index["host"].rsplit(":", 1)[1])
    outcomes = [dict[str, Any]() for _ in range(4)]
    threads = [threading.Thread(target=_trickle, args=(port, payload, 1.0, o)) for o in outcomes]
    for thread in threads:
        thread.start()
    served = 0
    latencies = []
    with http(server.url) as control, http(index["host"]) as data:
        while any(thread.is_alive() for thread in threads):
            started = time.monotonic()
            assert control.get("/indexes").status_code == 200
            assert data.get("/vectors/list").status_code == 200
            latencies.append(time.monotonic() - started)
            served += 2
            time.sleep(0.05)
            for thread in threads:
                thread.join(timeout=0)
    for thread in threads:
        thread.join()
    assert served > 10
    assert max(latencies) < 1.0, "slow clients delayed others"
    for outcome in outcomes:
        # Cut at the head deadline (plus scheduling slack), never left open.
        assert HEAD_TIMEOUT - 0.5 <= outcome["seconds"] <= HEAD_TIMEOUT + 3, outcome
        assert outcome["received"] == b"" or outcome["received"].startswith(b"HTTP/1.1 408"), outcome

"""``pinecone-rag serve``'s allocator settings: freed request buffers are reused, not faulted in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or not Path("/proc/self/stat").exists(),
    reason="mallopt's thresholds are glibc's; faults are read from /proc",
)

# A grpcio server whose handler does nothing: what is left is gRPC's handling of each request's bytes.
_SERVER = """
import sys
from concurrent import futures
import grpc
from pinecone_rag.server.heap import tune_for_server
if sys.argv[1] == "tuned":
    assert tune_for_server()
server = grpc.server(futures.ThreadPoolExecutor(8), options=[("grpc.max_receive_message_length", 8 << 20)])
handler = grpc.unary_unary_rpc_method_handler(lambda request, context: b"")
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.Floor", {"Call": handler}),))
print(server.add_insecure_port("127.0.0.1:0"), flush=True)
server.start()
sys.stdin.read()
"""


def _faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def _faults_per_request(setting: str, requests: int = 64) -> float:
    """Page faults a do-nothing server takes per 1.6 MB request, 8 in flight, after a warm-up round."""
    with subprocess.Popen(
        [sys.executable, "-c", _SERVER, setting], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as server:
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary("/t.Floor/Call")
                payload = os.urandom(1_600_000)

                def send() -> None:
                    for _ in range(requests // 8):
                        call(payload, timeout=30)

                def round_of() -> None:
                    workers = [threading.Thread(target=send) for _ in range(8)]
                    for worker in workers:
                        worker.start()
                    for worker in workers:
                        worker.join()

                round_of()
                before = _faults(server.pid)
                round_of()
                return (_faults(server.pid) - before) / requests
        finally:
            server.kill()


def test_tuned_server_reuses_request_buffers() -> None:
    """glibc's defaults fault in each request's pages anew (hundreds per 1.6 MB request); tuned, far fewer.

    Counts faults, not time. The margin is wide: measured 500 vs 74 per request (bench/allocator.py).
    """
    default = _faults_per_request("default")
    if default < 100:
        pytest.skip(f"this C library reuses freed buffers by default ({default:.0f} faults per request)")
    tuned = _faults_per_request("tuned")
    assert tuned < default / 2, (tuned, default)

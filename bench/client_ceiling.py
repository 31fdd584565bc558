"""Upsert throughput of the clients alone: our client vs the official SDK's gRPC client against a sink.

``client_upsert.py`` runs both clients against the local engine, where our client spends most of each
request waiting for the engine (one Python process decoding, logging and indexing). This benchmark
takes the engine out: both clients write the same ``--count`` (100,000) x 768 records with metadata to a
gRPC sink, a grpcio server in its own process that answers each ``Upsert`` with the number of records
the request holds and keeps nothing. What is left is each client's own cost: validating and encoding
the records and grpcio's transport, the part of an upsert that stays on the user's machine when the
server is Pinecone's cloud.

Both clients send ``--batch`` (500) records per request with ``--concurrency`` (8) requests in flight,
as in ``client_upsert.py``: ours is ``index.upsert(matrix, ids=..., metadata=..., max_concurrency=C)``,
timed from the numpy matrix; the SDK's is ``GRPCIndex.upsert(vectors=batch, async_req=True)`` per batch
with at most C futures pending, from record dicts built before its clock starts. The work runs in
``--rounds`` slices, the paths in alternating order. Besides records/s, it reports each client's CPU
time per record (this process's user + system time while it wrote): the client's cost, which does not
depend on how fast the server answers.

Run (from the repository root)::

    .venv/bin/python bench/client_ceiling.py                  # full: 100k x 768
    .venv/bin/python bench/client_ceiling.py --quick          # CI smoke: 5k records
    .venv/bin/python bench/client_ceiling.py --write bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import (
    API_KEY,
    METADATA_EXAMPLE,
    command_line,
    dataset,
    emit_section,
    fmt_rate,
    load_average,
    machine_facts,
    process_cpu_seconds,
    quiet_sdk_warnings,
    sdk_grpc_index,
    sdk_records,
    sdk_upserts_in_flight,
)

if TYPE_CHECKING:
    import numpy as np

SECTION = "client_ceiling"
TABLE_HEADER = "## Upsert without a server's limits: our client vs the official SDK's gRPC client, to a sink"
OURS, SDK = "ours gRPC", "SDK gRPC"


# ------------------------------------------------------------------------------------------------ sink
def count_records(request: bytes) -> int:
    """How many ``vectors`` (field 1) an ``UpsertRequest`` holds: its top-level fields, walked."""
    count = pos = 0
    end = len(request)
    while pos < end:
        tag = request[pos]
        pos += 1
        if tag & 7 != 2:  # UpsertRequest has only length-delimited fields (vectors, namespace)
            raise ValueError(f"unexpected wire type in tag {tag}")
        size = shift = 0
        while True:
            byte = request[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        pos += size
        count += tag == 0x0A
    if pos != end:
        raise ValueError("truncated request")
    return count


def serve_sink() -> None:
    """Run the sink until killed: print its port, answer every Upsert with its record count."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    import grpc  # noqa: PLC0415

    from pinecone_rag.server.heap import tune_for_server  # noqa: PLC0415
    from pinecone_rag.wire import messages as pb  # noqa: PLC0415

    tune_for_server()  # as `pinecone-rag serve` does: request buffers are reused, not faulted in again

    def upsert(request: bytes, _context: Any) -> bytes:
        return bytes(pb.UpsertResponse(upserted_count=count_records(request)).SerializeToString())

    handler = grpc.unary_unary_rpc_method_handler(upsert)  # no (de)serializers: bytes in, bytes out
    server = grpc.server(ThreadPoolExecutor(8), options=[("grpc.max_receive_message_length", 128 << 20)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(pb.SERVICE_NAME, {"Upsert": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


# ---------------------------------------------------------------------------------------------- clients
class Tally:
    """One client's totals over its slices."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.records = 0
        self.seconds = 0.0
        self.cpu = 0.0  # this process's CPU seconds while the client wrote
        self.sink_cpu = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    def us_per_record(self, seconds: float) -> float:
        return 1e6 * seconds / self.records


def cpu_now() -> float:
    times = os.times()
    return times.user + times.system


def write_ours(
    index: Any, matrix: np.ndarray, ids: list[str], metadata: list[Any], args: argparse.Namespace
) -> int:
    result = index.upsert(
        matrix,
        "ceiling",
        ids=ids,
        metadata=metadata,
        batch_size=args.batch,
        max_concurrency=args.concurrency,
        show_progress=False,
    )
    if result.failed:
        raise RuntimeError(f"{OURS}: {len(result.failed)} batches failed: {result.failed[0].error!r}")
    return int(result.upserted_count)


def write_sdk(index: Any, batches: list[list[dict[str, Any]]], concurrency: int) -> int:
    return sum(
        int(response.upserted_count)
        for response, _ in sdk_upserts_in_flight(index, batches, "ceiling", concurrency)
    )


def measure(args: argparse.Namespace, target: str, sink_cpu: Any) -> list[Tally]:
    """Every path on every slice, alternating which goes first; the totals per path."""
    from pinecone_rag import PineconeClient  # noqa: PLC0415

    matrix, ids, metadata = dataset(args.count, args.dimension)
    # No control plane is contacted: both clients are given the data-plane host.
    ours_client = PineconeClient(API_KEY, host="http://127.0.0.1:9")
    ours = ours_client.index(host=f"http://{target}")
    sdk = sdk_grpc_index("http://127.0.0.1:9", target)
    paths = {OURS: Tally(OURS), SDK: Tally(SDK)}
    warm = slice(0, 2 * args.batch)
    write_ours(ours, matrix[warm], ids[warm], metadata[warm], args)
    write_sdk(sdk, [sdk_records(matrix[warm], ids[warm], metadata[warm])], args.concurrency)
    try:
        for r in range(args.rounds):
            start, stop = r * args.count // args.rounds, (r + 1) * args.count // args.rounds
            order = [OURS, SDK] if r % 2 == 0 else [SDK, OURS]
            for name in order:
                part = slice(start, stop)
                if name == SDK:
                    records = sdk_records(matrix[part], ids[part], metadata[part])
                    batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
                    del records
                gc.collect()
                cpu, sink, began = cpu_now(), sink_cpu(), time.perf_counter()
                if name == OURS:
                    written = write_ours(ours, matrix[part], ids[part], metadata[part], args)
                else:
                    written = write_sdk(sdk, batches, args.concurrency)
                path = paths[name]
                path.seconds += time.perf_counter() - began
                path.cpu += cpu_now() - cpu
                path.sink_cpu += sink_cpu() - sink
                if written != stop - start:
                    raise RuntimeError(f"{name}: the sink acknowledged {written} records of {stop - start}")
                path.records += written
            print(
                f"# round {r + 1}/{args.rounds}: "
                + ", ".join(f"{p.name} {p.records / p.seconds:,.0f}/s" for p in paths.values()),
                file=sys.stderr,
                flush=True,
            )
    finally:
        sdk.close()
        ours_client.close()
    return list(paths.values())


# ---------------------------------------------------------------------------------------------- report
def render(args: argparse.Namespace, paths: list[Tally], elapsed: float, load_before: str) -> str:
    ours, sdk = paths
    lines = [
        TABLE_HEADER,
        "",
        f"Command: `{command_line()}` (from the repository root).",
        f"Wall time {elapsed:.1f} s. The sink is a grpcio server in its own process that counts each",
        "request's records and keeps nothing.",
        "",
        "Machine:",
        "",
        *machine_facts(load_before),
        "",
        (
            f"### {args.count:,} x {args.dimension} float32 with metadata ({METADATA_EXAMPLE}), "
            f"{args.batch} records per request, {args.concurrency} in flight"
        ),
        "",
        "| client | records/s | client CPU us / record | sink CPU us / record | records/s, ours / this |",
        "|---|---:|---:|---:|---:|",
    ]
    for path in paths:
        lines.append(
            f"| {path.name} | {fmt_rate(path.rate)} | {path.us_per_record(path.cpu):.1f} | "
            f"{path.us_per_record(path.sink_cpu):.1f} | {ours.rate / path.rate:.2f}x |"
        )
    rate_ratio = ours.rate / sdk.rate
    cpu_ratio = sdk.us_per_record(sdk.cpu) / ours.us_per_record(ours.cpu)
    lines += [
        "",
        f"- Our client wrote **{rate_ratio:.1f}x** as many records per second as the SDK's gRPC client and",
        f"  spent **{cpu_ratio:.1f}x** less CPU per record. Client CPU is this process's user + system time",
        "  while the client wrote (grpcio's threads included); the clients and the sink share the machine's",
        "  cores.",
        "- The SDK's record dicts (`.tolist()` values) were built before its clock started; ours started",
        f"  from the numpy matrix (validation included). {args.rounds} rounds, paths in alternating order.",
        "- Against the local engine (section client_upsert) the ratio is lower: there both clients wait for",
        "  the engine, which is bound by its own interpreter.",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 5k records")
    parser.add_argument("--count", type=int, default=None, help="records per client (default 100,000)")
    parser.add_argument("--dimension", type=int, default=768)
    parser.add_argument("--batch", type=int, default=500, help="records per request")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 10)")
    parser.add_argument("--write", type=Path, default=None, help="write the markdown section to this file")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)  # the sink's own process
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = 5_000 if args.quick else 100_000
    if args.rounds is None:
        args.rounds = 2 if args.quick else 10
    if args.count < args.rounds * args.batch or args.concurrency < 1 or args.rounds < 1:
        parser.error("need --count >= --rounds x --batch, --concurrency >= 1 and --rounds >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.sink:
        serve_sink()
        return 0
    quiet_sdk_warnings()
    load_before = load_average()
    began = time.perf_counter()
    sink = subprocess.Popen([sys.executable, __file__, "--sink"], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        target = f"127.0.0.1:{int(sink.stdout.readline())}"
        paths = measure(args, target, process_cpu_seconds(sink.pid))
    finally:
        sink.terminate()
        sink.wait(timeout=60)
    section = render(args, paths, time.perf_counter() - began, load_before)
    emit_section(section, args.write, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())

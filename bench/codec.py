"""The hand-written protobuf codec (``pinecone_rag.wire.codec``) against generated message classes.

Building protobuf messages from Python floats is the client's measured bottleneck (ARCHITECTURE.md,
decision 4); the codec writes packed floats straight from numpy rows and reads them with
``np.frombuffer``. This benchmark measures, on one thread of this process:

1. Upsert encoding of ``--dimension``-d float32 rows (seeded ``numpy.random.default_rng``), in batches of
   1000 and 100, without metadata and with a RAG chunk's metadata, four keys (``source`` string,
   ``chunk`` number, ``draft`` boolean, ``tags`` list of strings): once with values that repeat across
   records as a document's chunks do (``4 keys``), once with values that never repeat (``4 keys,
   unique``, the worst case for the encoder's memoized entries):

   * ``ours``: ``encode_upsert_request(ids, matrix, None, metadata, namespace)`` from the numpy matrix;
   * ``generated``: our generated classes (private descriptor pool, upb) built from Python lists,
     ``UpsertRequest(vectors=[Vector(id=..., values=row, metadata=struct)], ...)`` and
     ``SerializeToString()``; the ``.tolist()`` of the matrix (and the metadata Structs' source dicts)
     are made before the clock starts, as the official SDK's callers hand it lists;
   * ``generated + tolist``: the same with ``matrix.tolist()`` inside the timed call;
   * ``SDK 8.x``: the official SDK's own classes (``pinecone.core.grpc.protos.db_data_2025_10_pb2``)
     built the same way, from ready lists, if the SDK is importable.

   Before timing, every path's bytes must parse to the same message as ours, or the run fails.
2. Decoding a ``QueryResponse`` of 1000 (and 10) matches with ids, scores and ``--dimension`` values
   each: ``decode_query_response`` against ``QueryResponse.FromString`` plus, per match, ``id``,
   ``score`` and ``np.array(list(match.values), dtype=np.float32)`` (the generated classes of this
   protobuf version do not export a buffer, so a list is the way into numpy).

Paths run round-robin, one call each per round, so load drift on the machine hits them alike; each call
is timed alone with ``time.perf_counter`` and the garbage collector off (as ``timeit`` does), and the
table reports the median. Speedup is the other path's median time divided by ours.

Run (from the repository root)::

    .venv/bin/python bench/codec.py                 # full: 30 rounds per 1000-batch, 150 per 100-batch
    .venv/bin/python bench/codec.py --quick         # CI smoke: 3 and 15 rounds
    .venv/bin/python bench/codec.py --write bench/RESULTS.md

The markdown printed to stdout is also written (``--write``) between ``<!-- codec:start -->`` and
``<!-- codec:end -->`` in the given file, leaving the rest of the file alone.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from _common import command_line, emit_section, fmt_rate, package_version, unit_rows
from pinecone_rag.wire import messages as pb
from pinecone_rag.wire.codec import decode_query_response, encode_upsert_request

if TYPE_CHECKING:
    from collections.abc import Callable

SEED = 20250101
NAMESPACE = "bench"
TABLE_HEADER = "## Hand-written protobuf codec vs generated classes (`pinecone_rag.wire.codec`)"

OURS = "ours"
GENERATED = "generated"
TOLIST = "generated + tolist"
SDK = "SDK 8.x"


# ------------------------------------------------------------------------------------------------ data


_TAGS = (["a", "b"], ["b", "c"], ["a", "c"], ["c"])
REPEATING = "4 keys"
UNIQUE = "4 keys, unique"
METADATA_KINDS = (None, REPEATING, UNIQUE)


def chunk_metadata(i: int) -> dict[str, Any]:
    """A RAG chunk's metadata: its document, position, a flag and tags (values repeat across chunks)."""
    return {"source": f"doc-{i // 20}.md", "chunk": i % 20, "draft": i % 7 == 0, "tags": list(_TAGS[i % 4])}


def unique_metadata(i: int) -> dict[str, Any]:
    """The same keys and kinds with values that never repeat: the worst case for memoized entries."""
    return {"source": f"doc-{i:06d}.md", "chunk": i * 1.5, "draft": i % 7 == 0, "tags": [f"t{i}", f"u{i}"]}


def batch_metadata(kind: str | None, count: int) -> list[dict[str, Any]] | None:
    if kind is None:
        return None
    make = chunk_metadata if kind == REPEATING else unique_metadata
    return [make(i) for i in range(count)]


def sdk_classes() -> dict[str, Any] | None:
    """The official SDK 8.x's message classes (and the default pool's Struct), or None without the SDK."""
    try:
        from google.protobuf import struct_pb2  # noqa: PLC0415
        from pinecone.core.grpc.protos import db_data_2025_10_pb2 as sdk_pb  # noqa: PLC0415
    except ImportError:
        return None
    return {
        "UpsertRequest": sdk_pb.UpsertRequest,
        "Vector": sdk_pb.Vector,
        "Struct": struct_pb2.Struct,
        "QueryResponse": sdk_pb.QueryResponse,
    }


def build_with_classes(
    classes: dict[str, Any], ids: list[str], rows: list[list[float]], metadata: list[dict[str, Any]] | None
) -> bytes:
    """An UpsertRequest built from Python lists with generated classes, serialized."""
    vector_cls, struct_cls = classes["Vector"], classes["Struct"]
    if metadata is None:
        vectors = [vector_cls(id=i, values=row) for i, row in zip(ids, rows, strict=True)]
    else:
        vectors = []
        for i, row, fields in zip(ids, rows, metadata, strict=True):
            struct = struct_cls()
            struct.update(fields)
            vectors.append(vector_cls(id=i, values=row, metadata=struct))
    return bytes(classes["UpsertRequest"](vectors=vectors, namespace=NAMESPACE).SerializeToString())


# ------------------------------------------------------------------------------------------- measuring
def time_call(call: Callable[[], object]) -> float:
    """Seconds for one call, with the garbage collector off during it."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        began = time.perf_counter()
        call()
        return time.perf_counter() - began
    finally:
        if gc_was_enabled:
            gc.enable()


def round_robin(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Every call once per round, the order rotating each round; one warm-up round first."""
    for call in calls.values():
        call()
    names = list(calls)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        gc.collect()
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds[name].append(time_call(calls[name]))
    return seconds


@dataclass
class Result:
    """Median seconds per call of each path, for one configuration."""

    label: str
    count: int
    metadata: str | None
    medians: dict[str, float] = field(default_factory=dict)

    def vectors_per_s(self, path: str) -> float | None:
        median = self.medians.get(path)
        return None if median is None else self.count / median

    def speedup(self, path: str) -> float | None:
        theirs = self.medians.get(path)
        return None if theirs is None else theirs / self.medians[OURS]


def bench_upsert(
    data: np.ndarray, count: int, *, metadata: str | None, rounds: int, sdk: dict[str, Any] | None
) -> Result:
    matrix = data[:count]
    ids = [f"doc-{i // 10}#chunk-{i % 10}" for i in range(count)]
    fields = batch_metadata(metadata, count)
    rows = matrix.tolist()
    generated = {"Vector": pb.Vector, "Struct": pb.Struct, "UpsertRequest": pb.UpsertRequest}
    calls: dict[str, Callable[[], object]] = {
        OURS: lambda: encode_upsert_request(ids, matrix, None, fields, NAMESPACE),
        GENERATED: lambda: build_with_classes(generated, ids, rows, fields),
        TOLIST: lambda: build_with_classes(generated, ids, matrix.tolist(), fields),
    }
    if sdk is not None:
        calls[SDK] = lambda: build_with_classes(sdk, ids, rows, fields)
    # Every path must produce the same message (Struct entry order may differ, so compare parsed).
    reference = pb.UpsertRequest.FromString(encode_upsert_request(ids, matrix, None, fields, NAMESPACE))
    for name, call in calls.items():
        produced = call()
        assert isinstance(produced, bytes)
        if pb.UpsertRequest.FromString(produced) != reference:
            raise RuntimeError(f"{name}: the encoded request differs from ours")
    seconds = round_robin(calls, rounds)
    label = f"upsert {count} x {matrix.shape[1]}" + (f", {metadata}" if metadata else "")
    result = Result(label, count, metadata)
    result.medians = {name: statistics.median(values) for name, values in seconds.items()}
    return result


def generated_decode(cls: Any, wire: bytes) -> list[tuple[str, float, np.ndarray]]:
    response = cls.FromString(wire)
    return [(m.id, m.score, np.array(list(m.values), dtype=np.float32)) for m in response.matches]


def bench_decode(data: np.ndarray, count: int, *, rounds: int, sdk: dict[str, Any] | None) -> Result:
    matrix = data[:count]
    scores = np.linspace(1.0, 0.0, count, dtype=np.float32).tolist()
    message = pb.QueryResponse(namespace=NAMESPACE, usage=pb.Usage(read_units=5))
    for i, (row, score) in enumerate(zip(matrix.tolist(), scores, strict=True)):
        message.matches.add(id=f"doc-{i // 10}#chunk-{i % 10}", score=score, values=row)
    wire = message.SerializeToString()
    calls: dict[str, Callable[[], object]] = {
        OURS: lambda: decode_query_response(wire),
        GENERATED: lambda: generated_decode(pb.QueryResponse, wire),
    }
    if sdk is not None:
        calls[SDK] = lambda: generated_decode(sdk["QueryResponse"], wire)
    decoded = decode_query_response(wire)
    for got, (want_id, want_score, want_values) in zip(
        decoded.matches, generated_decode(pb.QueryResponse, wire), strict=True
    ):
        if got.id != want_id or got.score != want_score or got.values is None:
            raise RuntimeError("decode_query_response disagrees with the generated classes")
        if got.values.tobytes() != want_values.tobytes():
            raise RuntimeError("decode_query_response disagrees with the generated classes")
    seconds = round_robin(calls, rounds)
    result = Result(f"decode QueryResponse, {count} matches x {matrix.shape[1]}", count, metadata=None)
    result.medians = {name: statistics.median(values) for name, values in seconds.items()}
    return result


# --------------------------------------------------------------------------------------------- report
def fmt_ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.2f}"


def fmt_speedup(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


def machine_facts() -> list[str]:
    from google.protobuf.internal import api_implementation  # noqa: PLC0415

    versions = ", ".join(
        f"{name} {package_version(name)}" for name in ("pinecone", "protobuf", "numpy", "pinecone-rag")
    )
    return [
        f"- cores (`os.cpu_count()`): {os.cpu_count()}; {platform.system()} {platform.machine()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- {versions}; protobuf backend: {api_implementation.Type()}",
    ]


def upsert_rows(results: list[Result]) -> list[str]:
    rows = []
    for result in results:
        cells = [
            str(result.count),
            result.metadata or "none",
            fmt_ms(result.medians[OURS]),
            fmt_rate(result.vectors_per_s(OURS)),
        ]
        for path in (GENERATED, TOLIST, SDK):
            cells += [
                fmt_ms(result.medians.get(path)),
                fmt_rate(result.vectors_per_s(path)),
                fmt_speedup(result.speedup(path)),
            ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def decode_rows(results: list[Result]) -> list[str]:
    rows = []
    for result in results:
        cells = [str(result.count), fmt_ms(result.medians[OURS]), fmt_rate(result.vectors_per_s(OURS))]
        for path in (GENERATED, SDK):
            cells += [
                fmt_ms(result.medians.get(path)),
                fmt_rate(result.vectors_per_s(path)),
                fmt_speedup(result.speedup(path)),
            ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def render(
    args: argparse.Namespace, upserts: list[Result], decodes: list[Result], elapsed: float, sdk: bool
) -> str:
    lines = [
        TABLE_HEADER,
        "",
        f"Command: `{command_line()}` (from the repository root).",
        (
            f"Wall time {elapsed:.1f} s; one thread; {args.rounds} rounds per 1000-batch, "
            f"{args.rounds * 5} per 100-batch and 10-match response; medians of single calls, garbage "
            "collector off while timing."
        ),
        "",
        "Machine:",
        "",
        *machine_facts(),
        "",
        f"### Upsert encoding, {args.dimension}-d float32 (ms per batch, vectors/s, speedup of ours)",
        "",
        (
            "| batch | metadata | ours ms | ours vec/s | generated ms | generated vec/s | speedup "
            "| generated + tolist ms | vec/s | speedup | SDK 8.x ms | SDK 8.x vec/s | speedup |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *upsert_rows(upserts),
        "",
        "ours: `encode_upsert_request` from the numpy matrix. generated: our generated classes built",
        "from ready Python lists (`matrix.tolist()` before the clock) and serialized; generated + tolist:",
        "the same with the `.tolist()` timed. SDK 8.x: the official SDK's classes, from ready lists"
        + ("." if sdk else " (not installed: n/a)."),
        "With metadata, every path builds the Structs from dicts inside the timed call: 4 keys is",
        '`{"source": "doc-17.md", "chunk": 3, "draft": False, "tags": ["a", "b"]}` with values repeating',
        "across records (a document's chunks); 4 keys, unique has values that never repeat. Speedup is",
        "the other path's median time divided by ours. Every path's bytes parse to the same message as ours.",
        "",
        f"### Decoding a QueryResponse, matches x {args.dimension} values (ms per response, matches/s)",
        "",
        (
            "| matches | ours ms | ours matches/s | generated ms | generated matches/s | speedup "
            "| SDK 8.x ms | SDK 8.x matches/s | speedup |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *decode_rows(decodes),
        "",
        "ours: `decode_query_response` (ids, scores, float32 arrays). generated / SDK 8.x: `FromString`,",
        "then per match `id`, `score` and `np.array(list(values), dtype=np.float32)`.",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 3 rounds per 1000-batch")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per 1000-batch (default 30)")
    parser.add_argument("--dimension", type=int, default=768)
    parser.add_argument("--write", type=Path, default=None, help="write the markdown section to this file")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 30
    if args.rounds < 1 or args.dimension < 1:
        parser.error("need --rounds >= 1 and --dimension >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pinecone(_plugin_interface)?\b.*")
    began = time.perf_counter()
    sdk = sdk_classes()
    data = unit_rows(np.random.default_rng(SEED), 1000, args.dimension)
    upserts = []
    for count, rounds in ((1000, args.rounds), (100, args.rounds * 5)):
        for metadata in METADATA_KINDS:
            result = bench_upsert(data, count, metadata=metadata, rounds=rounds, sdk=sdk)
            upserts.append(result)
            print(
                f"# {result.label}: "
                + ", ".join(
                    f"{p} {fmt_ms(s)} ms ({fmt_speedup(result.speedup(p))})"
                    for p, s in result.medians.items()
                ),
                file=sys.stderr,
                flush=True,
            )
    decodes = []
    for count, rounds in ((1000, args.rounds), (10, args.rounds * 5)):
        result = bench_decode(data, count, rounds=rounds, sdk=sdk)
        decodes.append(result)
        print(
            f"# {result.label}: "
            + ", ".join(
                f"{p} {fmt_ms(s)} ms ({fmt_speedup(result.speedup(p))})" for p, s in result.medians.items()
            ),
            file=sys.stderr,
            flush=True,
        )
    section = render(args, upserts, decodes, time.perf_counter() - began, sdk is not None)
    emit_section(section, args.write, "codec")
    return 0


if __name__ == "__main__":
    sys.exit(main())

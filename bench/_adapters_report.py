"""The report of ``bench/adapters.py``: contender names, the Contender record and the markdown tables.

Split from the benchmark script (which measures); this module only formats what it measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from _common import METADATA_EXAMPLE, command_line, fmt_rate, fmt_ratio, machine_facts, package_version

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from adapters import Bench

TABLE_HEADER = "## Adapters: ours vs the official LangChain / LlamaIndex stores vs our raw client"
LANGCHAIN = "LangChain"
LLAMA_INDEX = "LlamaIndex"
OURS = "ours"
RAW = "raw client"
RAW_OBJECTS = "raw client + conversion"
LC_PEER = "langchain-pinecone"
LI_PEER = "llama-index-vector-stores-pinecone"
# Our client's default number of requests in flight (pinecone_rag.client._common.DEFAULT_MAX_CONCURRENCY),
# which our LlamaIndex store uses: it has no concurrency option.
CLIENT_DEFAULT_CONCURRENCY = 8


@dataclass
class Contender:
    """One way of writing and querying: ``add(start, stop, namespace)`` gives seconds, ``query`` figures."""

    family: str
    name: str
    how: str
    batch: int
    in_flight: str
    add: Callable[[int, int, str], float]
    query: Callable[[list[int], str], tuple[list[float], list[str]]]
    namespace: str = ""
    seconds: float = 0.0
    written: int = 0
    latencies: list[float] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)
    misses: int = 0

    @property
    def rate(self) -> float:
        return self.written / self.seconds

    def ms(self, q: float) -> float:
        return 1000.0 * float(np.percentile(np.asarray(self.latencies), q))


# --------------------------------------------------------------------------------------------- report
def family_rows(contenders: list[Contender]) -> list[str]:
    ours = next(c for c in contenders if c.name == OURS)
    rows = []
    for c in contenders:
        cells = [
            f"**{c.name}**" if c.name == OURS else c.name,
            c.how,
            str(c.batch),
            c.in_flight,
            f"{c.written:,}",
            f"{c.seconds:.1f}",
            fmt_rate(c.rate),
            fmt_ratio(ours.rate, c.rate),
            f"{c.ms(50):.2f}",
            f"{c.ms(99):.2f}",
            fmt_ratio(c.ms(50), ours.ms(50)),
            fmt_ratio(c.ms(99), ours.ms(99)),
            f"{len(c.latencies) - c.misses}/{len(c.latencies)}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def round_overhead(adapter: Contender, raw: Contender) -> str:
    """The median over rounds of the adapter's time over the raw path's in the same round, minus one.

    Each round's two times were measured minutes apart at most, so their ratio shares that round's machine
    load; the median keeps one disturbed round (a neighbour's burst) from deciding the result.
    """
    ratios = [a / r for a, r in zip(adapter.round_seconds, raw.round_seconds, strict=True)]
    return f"{100.0 * (float(np.median(ratios)) - 1.0):+.1f}%"


def overhead(adapter: float, raw: float) -> str:
    return f"{100.0 * (adapter / raw - 1.0):+.1f}%"


def summary_rows(families: dict[str, list[Contender]]) -> list[str]:
    def cells(compute: Callable[[dict[str, Contender]], str]) -> list[str]:
        return [compute({c.name: c for c in families[family]}) for family in (LANGCHAIN, LLAMA_INDEX)]

    def peer(by: dict[str, Contender]) -> Contender | None:
        return by.get(LC_PEER) or by.get(LI_PEER)

    def vs_peer(by: dict[str, Contender], value: Callable[[Contender], float], peer_over_ours: bool) -> str:
        other = peer(by)
        if other is None:
            return "n/a"
        ours, theirs = value(by[OURS]), value(other)
        return fmt_ratio(theirs, ours) if peer_over_ours else fmt_ratio(ours, theirs)

    def p50(c: Contender) -> float:
        return c.ms(50)

    def p99(c: Contender) -> float:
        return c.ms(99)

    lines: list[tuple[str, Callable[[dict[str, Contender]], str], str]] = [
        ("ours / official, add docs/s", lambda by: vs_peer(by, lambda c: c.rate, False), ""),
        ("official / ours, query p50", lambda by: vs_peer(by, p50, True), ""),
        ("official / ours, query p99", lambda by: vs_peer(by, p99, True), ""),
        (f"adapter overhead over {RAW_OBJECTS}, add time (median of rounds)",
         lambda by: round_overhead(by[OURS], by[RAW_OBJECTS]), "<= 10%"),
        (f"adapter overhead over {RAW_OBJECTS}, add time (totals)",
         lambda by: overhead(by[OURS].seconds, by[RAW_OBJECTS].seconds), ""),
        (f"adapter overhead over {RAW_OBJECTS}, query p50",
         lambda by: overhead(p50(by[OURS]), p50(by[RAW_OBJECTS])), "<= 10%"),
        (f"adapter overhead over {RAW_OBJECTS}, query p99",
         lambda by: overhead(p99(by[OURS]), p99(by[RAW_OBJECTS])), ""),
        (f"adapter overhead over bare {RAW}, add time (median of rounds)",
         lambda by: round_overhead(by[OURS], by[RAW]), ""),
        (f"adapter overhead over bare {RAW}, query p50",
         lambda by: overhead(p50(by[OURS]), p50(by[RAW])), ""),
    ]  # fmt: skip
    return [
        f"| {label} | " + " | ".join(cells(compute)) + f" | {target} |" for label, compute, target in lines
    ]


NOTES = (
    (
        "Ratios > 1 favour ours. Overhead: the adapter's time over the raw client's for the same work, minus",
        "one (negative: the adapter was faster, i.e. noise). `raw client + conversion` does the adapter's",
        "job by hand with the framework's own helpers (LangChain: embed, records from `Document`s,",
        "`Document`s from matches; LlamaIndex: `node_to_metadata_dict`, `metadata_dict_to_node`), which",
        "every adapter must do: the 10% target is about the adapter over that. The bare `raw client` is",
        "handed ready records (for LlamaIndex, exactly those our store sends) and returns matches.",
    ),
    (
        "Batch {batch} records per request for everyone: langchain-pinecone's REST requests carry each",
        "float32 as a float64 repr (about 8 KB per record), so larger batches would near the 2 MB limit.",
    ),
    (
        "langchain-pinecone runs in its own process and times itself the same way; embedding chunk {chunk}",
        "(`embedding_chunk_size`; it waits for a chunk's batches before embedding the next). It cannot use",
        "gRPC: it settles its parallel upserts with `.get()`, which only the REST client's results have.",
    ),
    (
        "llama-index-vector-stores-pinecone uses the SDK's gRPC client but writes one batch at a time",
        "(`upsert(batch_size=...)` cannot be combined with `async_req`); its queries pass",
        "`include_values=False` (its default fetches every vector). Our LlamaIndex store has no",
        "concurrency option and uses the client's default ({default} requests in flight).",
    ),
    (
        "Work ran in {rounds} rounds, contenders in a fresh seeded order each round. describe_index_stats",
        "showed exactly {count:,} records in every namespace. Each query is a stored document's text, so",
        "its top hit should be that document: the engine's index is approximate, so a rare miss is recall,",
        "not an error (the run fails above 1%).",
    ),
)


def notes(args: argparse.Namespace) -> list[str]:
    values = {
        "batch": args.batch,
        "chunk": args.chunk,
        "default": CLIENT_DEFAULT_CONCURRENCY,
        "rounds": args.rounds,
        "count": args.count,
    }
    return ["- " + " ".join(note).format(**values) for note in NOTES]


def render(args: argparse.Namespace, bench: Bench, elapsed: float, load_before: str, skipped: str) -> str:
    families = {
        family: [c for c in bench.contenders if c.family == family] for family in (LANGCHAIN, LLAMA_INDEX)
    }
    header = (
        "| contender | how | batch | in flight | docs | add s | docs/s | ours / this, docs/s "
        "| query p50 ms | p99 ms | this / ours, p50 | this / ours, p99 | top hit = itself |"
    )
    align = "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    lc_versions = ", ".join(f"{name} {version}" for name, version in bench.peer_versions.items()) or "not run"
    ours_versions = ", ".join(
        f"{name} {package_version(name)}"
        for name in (
            "langchain-pinecone-rag",
            "langchain-core",
            "llama-index-vector-stores-pinecone-rag",
            "llama-index-core",
            "llama-index-vector-stores-pinecone",
        )
    )
    setup = " ".join(
        (
            f"{args.count:,} documents x {args.dimension} float32 (seeded unit vectors), a text of about",
            f"{len(bench.corpus.texts[0])} characters and metadata like {METADATA_EXAMPLE}; each contender",
            "writes all of them into its own namespace; then each runs",
            f"{len(bench.corpus.query_rows):,} queries (k={args.top_k}, one at a time) against the namespace",
            "our adapter of its framework wrote (the same records everywhere: namespaces built at different",
            "moments can differ in query cost). Embedding is a lookup of precomputed vectors, the same for",
            "everyone.",
        )
    )
    lines = [
        TABLE_HEADER,
        "",
        f"Command: `{command_line()}` (from the repository root).",
        f"Wall time {elapsed:.1f} s; engine in a subprocess (`pinecone-rag serve`), one cosine index.",
        "",
        "Machine:",
        "",
        *machine_facts(load_before),
        f"- in `.venv`: {ours_versions}",
        f"- langchain-pinecone's worker (`.venv-compat/langchain`): {lc_versions}",
        "",
        setup,
        "",
        f"### LangChain: `add_documents` and `similarity_search` (embedding chunk {args.chunk})",
        "",
        header,
        align,
        *family_rows(families[LANGCHAIN]),
        "",
        f"### LlamaIndex: `add` ({args.chunk} embedded nodes per call) and `query`",
        "",
        header,
        align,
        *family_rows(families[LLAMA_INDEX]),
        "",
        "### Ratios",
        "",
        "| ratio | LangChain | LlamaIndex | target |",
        "|---|---:|---:|---|",
        *summary_rows(families),
        "",
        *notes(args),
    ]
    if skipped:
        lines.append(f"- **{LC_PEER} was not run**: {skipped}")
    return "\n".join(lines) + "\n"

"""The long stress profile with its figures: fuzzing every parser and API, and ``kill -9`` durability.

Runs, in a subprocess and from the repository root::

    PINECONE_RAG_FUZZ_EXAMPLES=20000 PINECONE_RAG_STRESS_CYCLES=50 \\
        python -m pytest tests/fuzz tests/integration/test_durability.py \\
            tests/integration/test_kill_midstream.py --timeout=0

with ``PINECONE_RAG_STRESS_REPORT`` pointing at a temporary file, where each fuzz test appends the inputs it
tried and the outcomes they got, and each durability test its figures (kill cycles, acknowledged writes
verified, records lost, namespaces created and deleted under kill, wall time); see
``tests/stress_report.py``. A JUnit XML file gives each test's result. The script then prints a markdown
section: per fuzz target the inputs tried, their outcomes and the result (a 5xx, a forbidden gRPC status, a
hang or a crash fails the test), the totals against the bar (>= 100,000 fuzz inputs, >= 50 kill -9
cycles, 0 records lost), the durability figures, the wall time and the exact commands.

Run (from the repository root)::

    .venv/bin/python bench/stress.py                          # the long profile (hours on 2 cores)
    .venv/bin/python bench/stress.py --quick                  # 200 inputs per fuzz test, 3 kill cycles
    .venv/bin/python bench/stress.py --write bench/RESULTS.md # what `make stress` runs

``--examples`` and ``--cycles`` default to ``PINECONE_RAG_FUZZ_EXAMPLES`` / ``PINECONE_RAG_STRESS_CYCLES``
when those are set. Arguments after ``--`` go to pytest. The section is also written (``--write``) between
``<!-- stress:start -->`` and ``<!-- stress:end -->`` in the given file, leaving the rest alone. The exit
status is pytest's, or 1 if a record was lost or a batch half applied.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import command_line, emit_section, load_average, machine_facts

ROOT = Path(__file__).resolve().parents[1]
SECTION = "stress"
HEADER = "## Stress (long profile): fuzzing and kill -9 durability"
TEST_PATHS = (
    "tests/fuzz",
    "tests/integration/test_durability.py",
    "tests/integration/test_kill_midstream.py",
)
LONG_EXAMPLES, LONG_CYCLES = 20_000, 50
QUICK_EXAMPLES, QUICK_CYCLES = 200, 3
BAR_INPUTS, BAR_CYCLES = 100_000, 50
KILL_TEST = "test_kill_9_mid_stream_loses_no_acknowledged_write"

# What each fuzz target feeds, and what its test forbids (the test fails on the first such answer).
FUZZ_TARGETS: dict[str, tuple[str, str]] = {
    "test_fuzz_grpc_messages": (
        "gRPC `VectorService`, every method, shared and direct ports: random and mutated messages",
        "INTERNAL, UNKNOWN, DATA_LOSS (a bug), DEADLINE_EXCEEDED (a hang), UNAVAILABLE (a crash)",
    ),
    "test_fuzz_data_plane_json_bodies": (
        "REST data plane, every JSON route: random and mutated bodies",
        "any 5xx (501 aside), a hang (30 s client timeout), malformed JSON errors",
    ),
    "test_fuzz_data_plane_queries_paths_and_records": (
        "REST query strings, namespace paths, records upsert (NDJSON) and search",
        "any 5xx (501 aside), a hang (30 s client timeout), malformed JSON errors",
    ),
    "test_fuzz_control_plane": (
        "REST control plane: create / configure / delete indexes, models, embed, rerank",
        "any 5xx (501 aside), a hang (30 s client timeout), malformed JSON errors",
    ),
    "test_fuzz_filter_parser": (
        "metadata filter parser and evaluator, in-process: mutated filters on random metadata",
        "any exception but a 400 InvalidArgumentError",
    ),
    "test_fuzz_metadata_validator": (
        "metadata validator, in-process: mutated metadata, one-by-one and batch paths",
        "any exception but a 400 InvalidArgumentError; the two paths disagreeing",
    ),
}

FUZZ_NOTE = """\
(`$TMP`: a temporary directory; the report's format is in `tests/stress_report.py`.) A fuzz test fails on
the first answer its "fails the test" column names, so `passed` means none of its inputs got one; the fuzz
server must also still answer on every plane afterwards (the `*_still_answers_*` tests)."""
KILL_NOTE = """\
Each kill cycle runs, at once: three writers on the default namespace (REST and gRPC: group commits), one
on another namespace, a thread that creates a namespace, writes to it and deletes the oldest, and one that
deletes whole batches written earlier; the index builder builds after 50 records or 50 ms of quiet, so it
is writing cluster files or publishing a manifest most of the time. The server gets SIGKILL at a random
moment and restarts on the same data dir. Then every acknowledged write must be there (a delete: gone),
every write in flight all there or not at all, every namespace whole or gone, counts, listings and
exhaustive queries exact, and the builder must not fail afterwards."""


@dataclass
class TestResult:
    """One test case of the JUnit XML file."""

    name: str
    outcome: str  # passed, failed, error or skipped
    seconds: float
    message: str = ""


@dataclass
class Run:
    """What one pytest run produced."""

    command: list[str]
    env: dict[str, str]
    returncode: int
    seconds: float
    tests: dict[str, TestResult] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ run
def run_profile(examples: int, cycles: int, seed: int | None, pytest_args: list[str]) -> Run:
    """Run the profile's tests in a subprocess; pytest's own output goes to stderr as it happens."""
    with tempfile.TemporaryDirectory(prefix="pinecone-rag-stress-") as scratch:
        report = Path(scratch) / "report.jsonl"
        junit = Path(scratch) / "junit.xml"
        env = {
            "PINECONE_RAG_FUZZ_EXAMPLES": str(examples),
            "PINECONE_RAG_STRESS_CYCLES": str(cycles),
        }
        if seed is not None:
            env["PINECONE_RAG_STRESS_SEED"] = str(seed)
        command = [sys.executable, "-m", "pytest", *TEST_PATHS, "--timeout=0", *pytest_args]
        started = time.monotonic()
        completed = subprocess.run(
            [*command, f"--junitxml={junit}"],
            cwd=ROOT,
            env={**os.environ, **env, "PINECONE_RAG_STRESS_REPORT": str(report)},
            stdout=sys.stderr,
            check=False,
        )
        run = Run(command, env, completed.returncode, time.monotonic() - started)
        if junit.exists():
            run.tests = read_junit(junit)
        if report.exists():
            run.entries = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    return run


def read_junit(path: Path) -> dict[str, TestResult]:
    """Each test case's outcome, by test name (parametrized ids included)."""
    results: dict[str, TestResult] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            child = case.find(kind)
            if child is not None:
                outcome = "failed" if kind == "failure" else kind
                # The first line of pytest's message is the assertion; enough to see what broke.
                message = (child.get("message") or "").strip().split("\n", 1)[0][:200]
                break
        name = case.get("name", "?")
        results[name] = TestResult(name, outcome, float(case.get("time", 0)), message)
    return results


# --------------------------------------------------------------------------------------------- report
def fmt(value: float) -> str:
    return f"{value:,.0f}"


def fmt_seconds(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {rest:02d} s" if hours else f"{minutes} min {rest:02d} s"


def shell_command(run: Run) -> str:
    """The pytest command as one shell line, with the profile's variables in front."""
    python = Path(run.command[0])
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    variables = " ".join(f"{key}={value}" for key, value in run.env.items())
    # The report and the JUnit file live in a temporary directory; $TMP stands for it.
    variables += " PINECONE_RAG_STRESS_REPORT=$TMP/report.jsonl"
    return f"{variables} {shlex.join([str(python), *run.command[1:]])} --junitxml=$TMP/junit.xml"


def result_of(run: Run, name: str) -> str:
    test = run.tests.get(name)
    if test is None:
        return "not run"
    if test.outcome == "passed":
        return "passed"
    return f"**{test.outcome.upper()}**" + (f": {test.message}" if test.message else "")


def fuzz_table(run: Run) -> tuple[list[str], int]:
    """The per-target table and the total number of inputs tried."""
    fuzz = [entry for entry in run.entries if entry.get("kind") == "fuzz"]
    lines = [
        "| fuzz target | inputs tried | outcomes (count per answer) | fails the test | result |",
        "|---|---:|---|---|---|",
    ]
    total = 0
    for entry in fuzz:
        name = entry["test"]
        what, forbidden = FUZZ_TARGETS.get(name, (f"`{name}`", "see the test"))
        outcomes = ", ".join(f"{outcome} {fmt(count)}" for outcome, count in entry["outcomes"].items())
        total += int(entry["inputs"])
        inputs, result = fmt(entry["inputs"]), result_of(run, name)
        lines.append(f"| {what} (`{name}`) | {inputs} | {outcomes} | {forbidden} | {result} |")
    lines.append(f"| **total** | **{fmt(total)}** | | | |")
    return lines, total


def durability_tables(run: Run) -> tuple[list[str], dict[str, Any]]:
    """The kill -9 figures and a line per other durability test; returns the kill test's entry too."""
    entries = [entry for entry in run.entries if entry.get("kind") == "durability"]
    kill = next((entry for entry in entries if entry["test"] == KILL_TEST), {})
    lines = ["| kill -9 figure | value |", "|---|---:|"]
    rows = [
        ("kill -9 cycles (kill, restart on the same data dir, check everything)", "cycles"),
        ("acknowledged writes (upserts, deletes, namespace creates and deletes)", "acknowledged_writes"),
        ("acknowledged records held at the end, all verified", "acknowledged_records"),
        ("record checks after restarts (values bit-exact, metadata equal)", "records_verified"),
        ("**records lost**", "records_lost"),
        ("**batches half applied**", "half_applied"),
        ("upsert batches in flight at a kill (then found whole or absent)", "batches_in_doubt"),
        ("deletes acknowledged / in flight at a kill", ("deletes_acknowledged", "deletes_in_doubt")),
        ("namespaces created / deleted (acknowledged)", ("namespaces_created", "namespaces_deleted")),
        ("namespace creates or deletes in flight at a kill (found whole or gone)", "namespace_ops_in_doubt"),
        ("seed (`PINECONE_RAG_STRESS_SEED` reproduces the run's choices)", "seed"),
    ]
    for label, keys in rows:
        if isinstance(keys, tuple):
            value = " / ".join(fmt(kill.get(key, 0)) for key in keys)
        elif keys == "seed":
            value = str(kill.get("seed", "n/a"))
        else:
            value = fmt(kill.get(keys, 0))
        lines.append(f"| {label} | {value} |")
    lines.append(f"| wall time | {fmt_seconds(kill.get('wall_seconds', 0))} |")
    lines.append(f"| result | {result_of(run, KILL_TEST)} |")
    lines += ["", "| other durability test | figures | result |", "|---|---|---|"]
    for entry in entries:
        if entry["test"] == KILL_TEST:
            continue
        shown = {k: v for k, v in entry.items() if k not in ("kind", "test", "wall_seconds")}
        figures = ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in shown.items())
        figures += f", {entry['wall_seconds']} s"
        lines.append(f"| `{entry['test']}` | {figures} | {result_of(run, entry['test'])} |")
    return lines, kill


def render(run: Run, examples: int, cycles: int, load_before: str) -> tuple[str, bool]:
    """The markdown section, and whether the run is clean (pytest passed, nothing lost)."""
    fuzz_lines, total_inputs = fuzz_table(run)
    durability_lines, kill = durability_tables(run)
    counts: dict[str, int] = {}
    for test in run.tests.values():
        counts[test.outcome] = counts.get(test.outcome, 0) + 1
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())) or "no results"
    lost, half = int(kill.get("records_lost", 0)), int(kill.get("half_applied", 0))
    clean = run.returncode == 0 and lost == 0 and half == 0
    inputs_met = "met" if total_inputs >= BAR_INPUTS else "not met"
    cycles_run = int(kill.get("cycles", 0))
    cycles_met = "met" if cycles_run >= BAR_CYCLES else "not met"
    bar = [
        f"- fuzz inputs: {fmt(total_inputs)} ({fmt(examples)} a test), bar {fmt(BAR_INPUTS)}: {inputs_met}",
        f"- kill -9 cycles: {fmt(cycles_run)} (asked {cycles}), bar {BAR_CYCLES}: {cycles_met}",
        f"- records lost: {lost}; batches half applied: {half}",
        f"- pytest: {summary} (exit status {run.returncode}); wall time {fmt_seconds(run.seconds)}",
    ]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        HEADER,
        "",
        f"Command: `{command_line()}` (from the repository root), {when}. It ran:",
        "",
        "```",
        shell_command(run),
        "```",
        "",
        *FUZZ_NOTE.splitlines(),
        "",
        "Result:",
        "",
        *bar,
        "",
        *fuzz_lines,
        "",
        *KILL_NOTE.splitlines(),
        "",
        *durability_lines,
        "",
        "Machine:",
        "",
        *machine_facts(load_before),
        "",
    ]
    return "\n".join(lines), clean


# ----------------------------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, help=f"inputs per fuzz test (long profile: {LONG_EXAMPLES})")
    parser.add_argument("--cycles", type=int, help=f"kill -9 cycles (long profile: {LONG_CYCLES})")
    parser.add_argument("--seed", type=int, help="seed of the kill test's random choices")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_EXAMPLES} inputs per fuzz test, {QUICK_CYCLES} cycles"
    )
    parser.add_argument("--write", type=Path, help="write the section into this markdown file")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args()
    # An explicit option wins, then --quick, then the profile's environment variables, then the long profile.
    if args.quick:
        examples, cycles = args.examples or QUICK_EXAMPLES, args.cycles or QUICK_CYCLES
    else:
        examples = args.examples or int(os.environ.get("PINECONE_RAG_FUZZ_EXAMPLES", LONG_EXAMPLES))
        cycles = args.cycles or int(os.environ.get("PINECONE_RAG_STRESS_CYCLES", LONG_CYCLES))
    load_before = load_average()
    print(f"stress: {examples} inputs per fuzz test, {cycles} kill -9 cycles", file=sys.stderr, flush=True)
    run = run_profile(examples, cycles, args.seed, args.pytest_args)
    section, clean = render(run, examples, cycles, load_before)
    emit_section(section, args.write, SECTION)
    return 0 if clean else (run.returncode or 1)


if __name__ == "__main__":
    sys.exit(main())

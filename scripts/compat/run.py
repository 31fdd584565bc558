"""Compatibility matrix: every official ``pinecone`` SDK line, LangChain and LlamaIndex against the engine.

Each line gets its own virtual environment under ``.venv-compat/<line>/`` (pip's wheel cache makes the
second run fast). The engine runs as ``pinecone-rag serve`` from the interpreter running this script (the
main ``.venv``), on port 0 with a temporary data directory. Each line then runs the shared scenario
(``scenario.py``; LangChain and LlamaIndex have their own) once per transport as a subprocess, and the JSON
lines it prints become the table::

    .venv/bin/python scripts/compat/run.py                    # all lines, print the table
    .venv/bin/python scripts/compat/run.py --lines 8.x 10.x   # some lines
    .venv/bin/python scripts/compat/run.py --write            # also update bench/RESULTS.md

Exit status 1 when any step failed (n/a, a feature the line lacks, is not a failure).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / "bench")]

from scenario import STEPS  # noqa: E402

from _common import command_line, package_version, running_engine, write_section  # noqa: E402

VENVS = ROOT / ".venv-compat"
RESULTS = ROOT / "bench" / "RESULTS.md"
SCENARIO_TIMEOUT = 600


@dataclass(frozen=True)
class Line:
    """One column group of the matrix: what to install, which scenario, over which transports."""

    name: str
    venv: str
    requirements: tuple[str, ...]
    scenario: str = "scenario.py"
    transports: tuple[str, ...] = ("rest", "grpc")


# Ranges, not pins: each line is tested at its newest release that installs here. The [grpc] extra brings
# grpcio up to 8.x; from 9.x the gRPC client is compiled into the wheel.
LINES = (
    Line("6.x", "pinecone-6", ("pinecone[grpc]>=6,<7",)),
    Line("7.x", "pinecone-7", ("pinecone[grpc]>=7,<8",)),
    Line("8.x", "pinecone-8", ("pinecone[grpc]>=8,<9",)),
    Line("10.x", "pinecone-10", ("pinecone>=10,<11",)),
    # langchain-pinecone 0.2.x requires pinecone<8.
    Line("langchain", "langchain", ("langchain-pinecone>=0.2,<0.3",), "langchain_scenario.py", ("rest",)),
    Line(
        "llama-index",
        "llama-index",
        ("llama-index-vector-stores-pinecone>=0.9,<0.10", "pinecone>=8,<9"),
        "llama_index_scenario.py",
        ("rest",),
    ),
)


@dataclass
class Outcome:
    """One scenario run: a line over one transport."""

    line: str
    transport: str
    version: str = "?"
    api_version: str = ""
    stack: str = ""
    steps: dict[str, tuple[bool | None, str | None]] = field(default_factory=dict)
    problem: str = ""  # the run itself broke (install, crash, timeout)

    def cell(self, step: str) -> str:
        if step not in self.steps:
            return "FAIL" if self.problem else "-"
        ok, error = self.steps[step]
        if ok is None:
            return "n/a"
        if ok:
            return "pass"
        return "skip" if (error or "").startswith("skipped") else "FAIL"

    @property
    def failed(self) -> bool:
        return bool(self.problem) or any(ok is False for ok, _ in self.steps.values())


# ---------------------------------------------------------------------------------------------- venvs
def ensure_venv(line: Line, *, reinstall: bool) -> Path:
    """The venv's Python, created and installed unless the stamp says the same requirements are in."""
    venv = VENVS / line.venv
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = "\n".join(line.requirements)
    if python.exists() and not reinstall and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"[{line.name}] installing {' '.join(line.requirements)}", flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", *line.requirements],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stamp.write_text(wanted)
    return python


# ------------------------------------------------------------------------------------------- scenarios
def run_scenario(line: Line, python: Path, url: str, transport: str) -> Outcome:
    outcome = Outcome(line.name, transport)
    command = [str(python), str(HERE / line.scenario), "--url", url]
    if line.scenario == "scenario.py":
        command += ["--transport", transport]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT, cwd=HERE, check=False
        )
    except subprocess.TimeoutExpired:
        outcome.problem = f"timed out after {SCENARIO_TIMEOUT} s"
        return outcome
    for raw in done.stdout.splitlines():
        try:
            record = json.loads(raw)
        except json.JSONDecodeError:
            continue  # an SDK printing on stdout is not a result
        if record["step"] == "sdk":
            outcome.version = record.get("version", "?")
            outcome.api_version = record.get("api_version", "")
        elif record["step"] == "stack":
            outcome.stack = record["stack"]
        else:
            outcome.steps[record["step"]] = (record["ok"], record["error"])
    # The scenario prints its stack record last: without it the run died part-way (a crash, not a result).
    if not outcome.stack:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        outcome.problem = f"ended early (exit {done.returncode}): " + " | ".join(tail)
    return outcome


# ---------------------------------------------------------------------------------------------- tables
def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def transport_label(outcome: Outcome) -> str:
    if outcome.transport == "rest":
        return "REST"
    return f"gRPC ({outcome.stack})" if outcome.stack else "gRPC"


def sdk_table(outcomes: list[Outcome]) -> str:
    header = ["line", "version", "API version", "transport", *STEPS]
    rows = [
        [o.line, o.version, o.api_version, transport_label(o), *(o.cell(step) for step in STEPS)]
        for o in outcomes
    ]
    return markdown_table(header, rows)


def integration_table(outcome: Outcome) -> str:
    steps = list(outcome.steps)
    return markdown_table(
        ["integration", "versions", *steps],
        [[outcome.line, outcome.version, *(outcome.cell(s) for s in steps)]],
    )


def failure_notes(outcomes: list[Outcome]) -> str:
    notes = []
    for o in outcomes:
        if o.problem:
            notes.append(f"- {o.line} {o.transport}: {o.problem}")
        for step, (ok, error) in o.steps.items():
            if ok is False and not (error or "").startswith("skipped"):
                notes.append(f"- {o.line} {o.transport} `{step}`: {error}")
    return "\n".join(notes) + "\n" if notes else ""


def section(outcomes: list[Outcome], seconds: float) -> str:
    sdk = [o for o in outcomes if o.line not in ("langchain", "llama-index")]
    integrations = [o for o in outcomes if o.line in ("langchain", "llama-index")]
    parts = [
        "## Compatibility matrix (`scripts/compat/run.py`)\n",
        (
            f"Command: `{command_line()}`; {time.strftime('%Y-%m-%d')}, engine `pinecone-rag serve` "
            f"{package_version('pinecone-rag')} (a subprocess, port 0, fresh data directory), Python "
            f"{platform.python_version()}, {seconds:.0f} s in all.\n"
        ),
        (
            "Each official SDK line runs the shared scenario (`scripts/compat/scenario.py`) in its own venv, "
            "once per transport. Every step checks exact results (ids in order, counts, metadata; scores and "
            "values within float32 rounding). `n/a`: the line does not have the feature (namespaces API "
            "before 2025-04, update by filter before 2025-10); `skip`: not run because index creation "
            "failed.\n"
        ),
        sdk_table(sdk),
        *(integration_table(outcome) for outcome in integrations),
    ]
    notes = failure_notes(outcomes)
    parts.append("Failures:\n\n" + notes if notes else "No step failed.\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [line.name for line in LINES]
    parser.add_argument("--lines", nargs="+", choices=names, default=names, help="which lines (default: all)")
    parser.add_argument(
        "--write",
        nargs="?",
        const=str(RESULTS),
        default=None,
        metavar="PATH",
        help=f"write the compat section of PATH (default {RESULTS.relative_to(ROOT)})",
    )
    parser.add_argument("--reinstall", action="store_true", help="reinstall every venv")
    args = parser.parse_args(argv)
    chosen = [line for line in LINES if line.name in args.lines]
    pythons = {line.name: ensure_venv(line, reinstall=args.reinstall) for line in chosen}
    started = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="compat-") as data, running_engine("process", Path(data)) as url:
        for line in chosen:
            for transport in line.transports:
                outcome = run_scenario(line, pythons[line.name], url, transport)
                status = "FAIL" if outcome.failed else "ok"
                print(f"[{line.name} {transport}] {outcome.version}: {status}", flush=True)
                outcomes.append(outcome)
    text = section(outcomes, time.perf_counter() - started)
    print("\n" + text)
    if args.write:
        write_section(Path(args.write), "compat", text)
        print(f"wrote the compat section of {args.write}")
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

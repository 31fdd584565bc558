"""An opt-in report of what the stress tests did, for ``bench/stress.py``.

When ``PINECONE_RAG_STRESS_REPORT`` names a file, the fuzz and durability tests each append one JSON
line to it: which test, how many inputs or kill cycles it ran, and what it saw. Without the variable
nothing is written. Not a test module itself; import it as ``stress_report`` (pytest puts ``tests/``, the
folder of the root ``conftest.py``, on ``sys.path``, whether it runs as ``pytest`` or ``python -m pytest``).
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV_REPORT = "PINECONE_RAG_STRESS_REPORT"


def enabled() -> bool:
    """Whether a report was asked for."""
    return bool(os.environ.get(ENV_REPORT))


def append_entry(entry: dict[str, Any]) -> None:
    """Append ``entry`` as one JSON line to the report, if one was asked for."""
    path = os.environ.get(ENV_REPORT)
    if not path:
        return
    line = json.dumps(entry, sort_keys=True) + "\n"
    # One write of one line in append mode: entries from one run never interleave.
    with open(path, "a", encoding="utf-8") as handle:  # noqa: PTH123 - a path from the environment
        handle.write(line)

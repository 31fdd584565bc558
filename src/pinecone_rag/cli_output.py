"""Plain-text tables and snippets for the ``pinecone-rag`` command (no third-party renderer needed).

Example:
    >>> print(render_table(["rank", "source"], [[1, "a.md"], [2, "docs/b.md"]]))
    rank  source
    ----  ---------
       1  a.md
       2  docs/b.md
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["format_score", "render_table", "snippet", "terminal_width"]

_ELLIPSIS = "…"


def terminal_width(default: int = 120) -> int:
    """The terminal's width in columns (``default`` when output is not a terminal)."""
    return shutil.get_terminal_size((default, 24)).columns


def snippet(text: str, width: int) -> str:
    r"""``text`` on one line (whitespace runs collapsed), cut to ``width`` characters with an ellipsis.

    Example:
        >>> snippet("The  with\nstatement wraps a block", 15)
        'The with state…'
    """
    flat = " ".join(text.split())
    if width <= 0:
        return ""
    if len(flat) <= width:
        return flat
    return flat[: max(width - 1, 0)] + _ELLIPSIS


def format_score(score: float) -> str:
    """A score with four significant decimals, the way the query table shows it.

    Example:
        >>> format_score(0.123456)
        '0.1235'
    """
    return f"{score:.4f}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, max_width: int | None = None
) -> str:
    """Rows under headers in aligned columns; numbers right-aligned, text left-aligned.

    Args:
        headers: Column titles.
        rows: One sequence of cells per row (any values; ``None`` shows as empty).
        max_width: When the table is wider, the last column is cut to fit (it is the free-text one,
            e.g. a snippet); ``None`` keeps every cell whole.

    Returns:
        The table, without a trailing newline.
    """
    cells = [["" if value is None else str(value) for value in row] for row in rows]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    if max_width is not None and widths:
        fixed = sum(widths[:-1]) + 2 * (len(widths) - 1)
        last = max(max_width - fixed, len(headers[-1]), 10)
        if widths[-1] > last:
            widths[-1] = last
            for row in cells:
                row[-1] = snippet(row[-1], last)

    def line(values: Sequence[str], align_numbers: bool) -> str:
        parts = [
            value.rjust(widths[i]) if align_numbers and numeric[i] else value.ljust(widths[i])
            for i, value in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(headers), align_numbers=False), "  ".join("-" * w for w in widths)]
    out.extend(line(row, align_numbers=True) for row in cells)
    return "\n".join(out)

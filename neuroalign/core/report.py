"""What a command returns: its result rows, printed by the ``neuroalign`` command as a short table.

A :class:`Report` is the list of row dicts a Python caller indexes as before; ``str(report)`` -- what
``neuroalign <command>`` prints -- is an aligned text table (long tables keep their first and last
rows) followed by the files the command wrote.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Report", "format_table"]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, max_rows: int = 12) -> str:
    """``rows`` as an aligned text table of ``columns`` (default: the keys of the first row); with more
    than ``max_rows`` rows only the first and last ``max_rows // 2`` are shown, with a ``...`` line between."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0])
    shown = list(rows)
    if len(shown) > max_rows:
        half = max(1, max_rows // 2)
        shown = [*shown[:half], None, *shown[-half:]]
    cells = [[_cell(r.get(c)) for c in columns] if r is not None else None for r in shown]
    widths = [max(len(c), *(len(row[i]) for row in cells if row is not None)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    out = [line(columns), line(["-" * w for w in widths])]
    for row in cells:
        out.append(line(row) if row is not None else f"... ({len(rows) - 2 * half} more rows)")
    return "\n".join(out)


class Report(list):
    """Result rows (a ``list`` of dicts) with a title, the columns to print and the files written.

    Args:
        rows: the result rows.
        title: first line of the printed report.
        files: paths the command wrote, printed after the table.
        columns: the columns to print (default: every key of the first row).
        max_rows: rows printed before the table is shortened.
        display_rows: rows to print instead of ``rows`` (e.g. with shortened paths).
    """

    def __init__(
        self,
        rows: Iterable[dict[str, Any]],
        title: str = "",
        files: Sequence[str | Path] = (),
        columns: Sequence[str] | None = None,
        max_rows: int = 12,
        display_rows: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(rows)
        self.display_rows = list(display_rows) if display_rows is not None else None
        self.title = title
        self.files = [Path(f) for f in files]
        self.columns = list(columns) if columns is not None else None
        self.max_rows = max_rows

    def __str__(self) -> str:
        parts = [self.title] if self.title else []
        parts.append(format_table(self.display_rows if self.display_rows is not None else self, self.columns, self.max_rows))
        parts += [f"wrote {f}" for f in self.files]
        return "\n".join(parts)

"""A Table-3-like summary (average, V1, V2, V4, IT, behaviour, rho-hierarchy) as CSV and Markdown."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SUMMARY_COLUMNS", "summary_markdown", "write_summary"]

#: (result key, column title) in the order of the seed paper's Table 3
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("average", "avg"),
    ("V1", "V1"),
    ("V2", "V2"),
    ("V4", "V4"),
    ("IT", "IT"),
    ("behavior", "beh."),
    ("rho_hierarchy", "rho-hierarchy"),
)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_markdown(rows: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table, one row per model name; missing scores shown as ``-``."""
    lines = ["| model | " + " | ".join(t for _, t in SUMMARY_COLUMNS) + " |"]
    lines.append("|---|" + "---|" * len(SUMMARY_COLUMNS))
    for name, scores in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(scores.get(k)) for k, _ in SUMMARY_COLUMNS) + " |")
    return "\n".join(lines)


def write_summary(rows: Mapping[str, Mapping[str, float]], output_dir: str | Path, stem: str = "brainscore_summary") -> str:
    """Write ``<stem>.csv`` and ``<stem>.md`` under ``output_dir``; return the Markdown table."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{stem}.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["model", *(k for k, _ in SUMMARY_COLUMNS)])
        for name, scores in rows.items():
            writer.writerow([name, *("" if scores.get(k) is None else f"{scores[k]:.6f}" for k, _ in SUMMARY_COLUMNS)])
    table = summary_markdown(rows)
    (out / f"{stem}.md").write_text(table + "\n")
    return table

"""``neuroalign brainio-files``: which Brain-Score data files are in the BrainIO cache, and where missing ones go."""

from __future__ import annotations

from pathlib import Path

from callbacks.brainscore.brainio_data import PUBLIC_BENCHMARKS, brainio_home, files_for, missing_brainio_files

__all__ = ["brainio_files_command"]


def brainio_files_command(benchmarks: list[str] | None = None, home: str | None = None) -> str:
    """Print which Brain-Score data files are present in the BrainIO cache and where missing ones go.

    Args:
        benchmarks: public benchmark ids to check (default: all five).
        home: the BrainIO cache folder (default ``$BRAINIO_HOME`` or ``~/.brainio``).
    """
    root = Path(home) if home is not None else brainio_home()
    missing = {f.sha1 for f in missing_brainio_files(benchmarks or PUBLIC_BENCHMARKS, root)}
    lines = [f"BrainIO cache: {root}"]
    for file in files_for(benchmarks or PUBLIC_BENCHMARKS):
        status = "MISSING" if file.sha1 in missing else "ok"
        lines.append(f"{status:8s} {file.path(root)}  <- {file.url}")
    return "\n".join(lines)

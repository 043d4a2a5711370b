"""Writing a matplotlib figure: lay it out, save it and always close it (figures are not left open)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["save_figure"]


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """``fig.tight_layout()``, save ``fig`` to ``path`` and close it, even when saving fails; returns ``path``."""
    import matplotlib.pyplot as plt  # matplotlib is heavy: only the commands that draw import it

    try:
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)

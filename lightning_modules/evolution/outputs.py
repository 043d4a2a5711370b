"""Files an evolution run writes under ``<log_dir>/evolution/``.

* ``scores.csv`` -- columns ``generation, unit, mean, max, best_so_far, sigma`` (one row per
  generation and unit, generation 0 first; a retired unit's rows end at its retirement);
* ``summary.csv`` -- one row per unit: the unit as evolved (``channel: auto`` resolved), whether it
  was chosen by ``auto``, ``status`` (``active`` / ``retired``), best score, generations evolved and,
  for a retired unit, the generation and the reason;
* ``best/<unit>.png`` -- the best image found so far for each unit;
* ``montage.png`` -- one row per unit, one column per snapshot of the best image (every k generations
  and the final one);
* ``prototypes.pt`` -- ``{"units", "labels", "codes", "images", "scores", "generation"}``.

Plain code (no Lightning): the module calls it on rank 0 only.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

__all__ = ["SCORE_COLUMNS", "SUMMARY_COLUMNS", "EvolutionOutputs", "read_scores", "read_summary", "montage_grid"]

#: column order of ``scores.csv``
SCORE_COLUMNS = ("generation", "unit", "mean", "max", "best_so_far", "sigma")
#: column order of ``summary.csv``
SUMMARY_COLUMNS = (
    "unit", "layer", "channel", "position", "token", "chosen", "status",
    "best_score", "generations", "retired_generation", "reason",
)  # fmt: skip


def montage_grid(images: torch.Tensor, n_columns: int, tile: int = 128, min_tile: int = 64) -> torch.Tensor:
    """Arrange ``(N, 3, H, W)`` [0,1] images row-major into one ``(3, H', W')`` grid.

    Tiles larger than ``tile`` px are downsampled (antialiased); tiles smaller than ``min_tile`` px are
    enlarged by a whole factor with nearest-neighbour sampling, so 32 px prototypes stay readable.
    """
    if images.shape[-1] > tile or images.shape[-2] > tile:
        images = F.interpolate(images.float(), size=(tile, tile), mode="bilinear", antialias=True, align_corners=False)
    elif max(images.shape[-2:]) < min_tile:
        images = F.interpolate(images.float(), scale_factor=min_tile // max(images.shape[-2:]), mode="nearest")
    return make_grid(images.float().clamp(0, 1).cpu(), nrow=max(1, n_columns), padding=2, pad_value=1.0)


def read_scores(path: str | Path) -> list[dict]:
    """Rows of a ``scores.csv`` as dicts (``generation`` int, ``unit`` str, the rest float)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["generation"] = int(row["generation"])
        for key in SCORE_COLUMNS[2:]:
            row[key] = float(row[key])
    return rows


def read_summary(path: str | Path) -> list[dict]:
    """Rows of a ``summary.csv`` as dicts of strings (empty string for an empty field)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


class EvolutionOutputs:
    """Writer of the evolution files under ``root`` (usually ``<trainer.log_dir>/evolution``).

    Args:
        root: output folder (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def scores_path(self) -> Path:
        """``<root>/scores.csv``."""
        return self.root / "scores.csv"

    def write_scores(
        self, labels: Sequence[str], history: torch.Tensor, last_generation: Sequence[int | None] | None = None
    ) -> Path:
        """Rewrite ``scores.csv`` from the whole history.

        Args:
            labels: the K unit labels.
            history: ``(G, K, 4)`` tensor of ``mean, max, best_so_far, sigma`` per generation and unit.
            last_generation: per unit, the last generation to write (a retired unit), ``None`` = all.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        values = history.detach().double().cpu().tolist()
        last = list(last_generation) if last_generation is not None else [None] * len(labels)
        with open(self.scores_path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(SCORE_COLUMNS)
            for generation, per_unit in enumerate(values):
                for label, stats, stop in zip(labels, per_unit, last):
                    if stop is None or generation <= stop:
                        writer.writerow([generation, label, *(repr(float(v)) for v in stats)])
        return self.scores_path

    def write_summary(self, rows: Sequence[dict]) -> Path:
        """Rewrite ``summary.csv``: one row per unit with the keys of :data:`SUMMARY_COLUMNS`."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "summary.csv"
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in SUMMARY_COLUMNS})
        return path

    def write_best(self, labels: Sequence[str], images: torch.Tensor) -> list[Path]:
        """Save ``best/<label>.png`` for each unit from ``(K, 3, H, W)`` [0,1] images."""
        folder = self.root / "best"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for label, image in zip(labels, images):
            paths.append(folder / f"{label}.png")
            save_image(image.float().clamp(0, 1).cpu(), paths[-1])
        return paths

    def write_montage(self, snapshots: torch.Tensor) -> tuple[Path, torch.Tensor]:
        """Save ``montage.png``: rows = units, columns = snapshots.

        Args:
            snapshots: ``(S, K, 3, H, W)`` best images at S snapshot generations.

        Returns:
            the path and the grid tensor ``(3, H', W')``.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        n_snap = snapshots.shape[0]
        grid = montage_grid(snapshots.transpose(0, 1).flatten(0, 1), n_columns=n_snap)
        path = self.root / "montage.png"
        save_image(grid, path)
        return path, grid

    def write_prototypes(
        self,
        units: Sequence[dict],
        labels: Sequence[str],
        codes: torch.Tensor,
        images: torch.Tensor,
        scores: torch.Tensor,
        generation: int,
    ) -> Path:
        """Save ``prototypes.pt`` (codes ``(K, D)``, images ``(K, 3, H, W)``, best scores ``(K,)``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "prototypes.pt"
        torch.save(
            {
                "units": list(units),
                "labels": list(labels),
                "codes": codes.detach().float().cpu(),
                "images": images.detach().float().cpu(),
                "scores": scores.detach().float().cpu(),
                "generation": int(generation),
            },
            path,
        )
        return path

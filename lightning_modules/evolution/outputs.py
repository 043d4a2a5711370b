"""Files an evolution run writes under ``<log_dir>/evolution/``.

* ``scores.csv`` -- columns ``generation, unit, mean, max, best_so_far, sigma`` (one row per
  generation and unit, generation 0 first; a retired unit's rows end at its retirement);
* ``summary.csv`` -- one row per unit: the unit as evolved (``channel: auto`` resolved), whether it
  was chosen by ``auto``, ``status`` (``active`` / ``retired``), best score, generations evolved and,
  for a retired unit, the generation and the reason;
* ``best/<unit>.png`` -- the best image found so far for each unit, enlarged (nearest neighbour, by a
  whole factor) to at least :data:`DISPLAY_SIDE` px so a 32 px prototype can be looked at;
* ``montage.png`` -- one row per unit (labelled with the unit and its best score), one column per
  snapshot of the best image (every k generations and the final one, labelled with the generation);
* ``prototypes.pt`` -- ``{"units", "labels", "codes", "images", "scores", "generation"}`` (images at the
  generator's native size).

Plain code (no Lightning): the ``EvolutionModule`` calls it on rank 0 only.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid, save_image

__all__ = [
    "SCORE_COLUMNS", "SUMMARY_COLUMNS", "DISPLAY_SIDE", "EvolutionOutputs", "read_scores", "read_summary",
    "summary_rows", "montage_grid", "enlarge", "to_uint8",
]  # fmt: skip

#: column order of ``scores.csv``
SCORE_COLUMNS = ("generation", "unit", "mean", "max", "best_so_far", "sigma")
#: column order of ``summary.csv``
SUMMARY_COLUMNS = (
    "unit", "layer", "channel", "position", "token", "chosen", "status",
    "best_score", "generations", "retired_generation", "reason",
)  # fmt: skip
#: smallest side (px) of the saved best images and of the images sent to W&B
DISPLAY_SIDE = 128


def enlarge(images: torch.Tensor, min_side: int = DISPLAY_SIDE) -> torch.Tensor:
    """``(N, 3, H, W)`` images enlarged by the smallest whole factor that makes both sides >= ``min_side``
    (nearest neighbour: every pixel becomes a sharp square); images that are large enough are returned as they are."""
    factor = math.ceil(min_side / min(images.shape[-2:]))
    if factor <= 1:
        return images
    return images.repeat_interleave(factor, -2).repeat_interleave(factor, -1)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` [0,1] images -> ``(N, H, W, 3)`` uint8 (rounded as ``save_image`` does).

    Loggers get these, never float tensors: wandb 0.31 turns a float [0,1] tensor into black.
    """
    scaled = images.detach().float().cpu().clamp(0, 1).mul(255).add(0.5).clamp(0, 255)
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _labelled(grid: torch.Tensor, rows: Sequence[str], columns: Sequence[str], n_rows: int, n_columns: int) -> np.ndarray:
    """The ``(3, H, W)`` grid drawn pixel for pixel with row labels on the left and column labels on top;
    returns the picture as ``(H', W', 3)`` uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width = grid.shape[-2:]
    dpi, left, top, bottom = 100, 150, 24, 6  # margins in px
    fig = Figure(figsize=((width + left + 10) / dpi, (height + top + bottom) / dpi), dpi=dpi)
    total_w, total_h = width + left + 10, height + top + bottom
    ax = fig.add_axes((left / total_w, bottom / total_h, width / total_w, height / total_h))
    ax.imshow(to_uint8(grid[None])[0], interpolation="nearest")
    tile_h, tile_w = (height - 2) / n_rows, (width - 2) / n_columns  # make_grid: 2 px padding
    ax.set_yticks([2 + tile_h * (i + 0.5) - 1 for i in range(n_rows)], list(rows), fontsize=8)
    ax.set_xticks([2 + tile_w * (j + 0.5) - 1 for j in range(n_columns)], list(columns), fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


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


def summary_rows(
    units: Sequence[Any],
    requested_units: Sequence[Any],
    best_scores: torch.Tensor,
    retired_at: torch.Tensor,
    reasons: Sequence[str | None],
    generation: int,
) -> list[dict]:
    """The rows of ``summary.csv`` (keys of :data:`SUMMARY_COLUMNS`), one per unit.

    Args:
        units: the K units as evolved (``channel: auto`` resolved), :class:`~lightning_modules.evolution.units.Unit`.
        requested_units: the K units as configured (tells which were chosen by ``auto``).
        best_scores: ``(K,)`` best score so far.
        retired_at: ``(K,)`` generation of retirement, -1 for an active unit; ``reasons`` say why.
        generation: generations done.
    """
    rows = []
    for i, (unit, requested) in enumerate(zip(units, requested_units)):
        retired = int(retired_at[i]) >= 0
        rows.append(
            {
                "unit": unit.label,
                "layer": unit.layer,
                "channel": unit.channel,
                "position": list(unit.position) if unit.position is not None else None,
                "token": unit.token,
                "chosen": "auto" if requested.is_auto else "config",
                "status": "retired" if retired else "active",
                "best_score": float(best_scores[i]),
                "generations": int(retired_at[i]) + 1 if retired else int(generation),
                "retired_generation": int(retired_at[i]) if retired else None,
                "reason": reasons[i],
            }
        )
    return rows


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
        """Save ``best/<label>.png`` for each unit from ``(K, 3, H, W)`` [0,1] images, enlarged by
        :func:`enlarge` to at least :data:`DISPLAY_SIDE` px."""
        folder = self.root / "best"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for label, image in zip(labels, enlarge(images.float().clamp(0, 1).cpu())):
            paths.append(folder / f"{label}.png")
            save_image(image, paths[-1])
        return paths

    def write_montage(
        self,
        snapshots: torch.Tensor,
        labels: Sequence[str] | None = None,
        generations: Sequence[int] | None = None,
        scores: Sequence[float] | None = None,
    ) -> tuple[Path, np.ndarray]:
        """Save ``montage.png``: rows = units, columns = snapshots, each row labelled with the unit and
        its best score and each column with its generation.

        Args:
            snapshots: ``(S, K, 3, H, W)`` best images at S snapshot generations.
            labels: the K unit labels (default ``unit 0`` ...).
            generations: the S snapshot generations (default ``0 .. S-1``).
            scores: the K best scores, shown under the unit labels.

        Returns:
            the path and the labelled picture as ``(H', W', 3)`` uint8 (what the file holds).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        n_snap, k = snapshots.shape[:2]
        grid = montage_grid(snapshots.transpose(0, 1).flatten(0, 1), n_columns=n_snap)
        rows = list(labels) if labels is not None else [f"unit {i}" for i in range(k)]
        if scores is not None:
            rows = [f"{row}\nbest {float(s):.4g}" for row, s in zip(rows, scores)]
        columns = [f"gen {g}" for g in (generations if generations is not None else range(n_snap))]
        picture = _labelled(grid, rows, columns, k, n_snap)
        path = self.root / "montage.png"
        Image.fromarray(picture).save(path)
        return path, picture

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

"""Tiny on-disk image datasets for the tests: ImageFolder trees in real file formats, and the stimuli of local benchmark folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: (PIL mode, file suffix) cycled over the files of a tree: greyscale, CMYK, palette, RGBA and RGB
MODES = (("RGB", ".JPEG"), ("L", ".JPEG"), ("CMYK", ".jpg"), ("P", ".png"), ("RGBA", ".png"))


def write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (40, 30), seed: int = 0) -> Path:
    """Write a random image of ``mode`` and ``size`` (width, height) to ``path``."""
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    image = rgb.convert("P", palette=Image.Palette.ADAPTIVE) if mode == "P" else rgb.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def make_image_tree(root: Path, classes: list[str], per_class: int = 3, seed: int = 0) -> list[Path]:
    """``root/<class>/img<i>.<ext>`` with mixed modes and sizes; returns the written files."""
    files = []
    for c, name in enumerate(classes):
        for i in range(per_class):
            k = c * per_class + i
            mode, suffix = MODES[k % len(MODES)]
            size = (24 + 7 * (k % 4), 20 + 5 * (k % 3))
            files.append(write_image(root / name / f"img{i}{suffix}", mode, size, seed + k))
    return files


def truncate(path: Path) -> Path:
    """Cut ``path`` to half its bytes (a truncated download)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_stimuli(folder: Path, n: int, side: int, groups: int, rng: np.random.Generator) -> None:
    """``n`` random ``side`` x ``side`` RGB PNGs ``im<i>.png`` drawn from ``rng`` and their ``stimuli.csv``
    (``stimulus_id`` ``s<i>``, ``object_name`` ``o<i % groups>``), as a local benchmark folder has them."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["stimulus_id,filename,object_name"]
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
        rows.append(f"s{i},im{i}.png,o{i % groups}")
    (folder / "stimuli.csv").write_text("\n".join(rows) + "\n")

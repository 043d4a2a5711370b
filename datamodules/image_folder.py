"""Robust ImageFolder reading: ``root/<class>/<image>`` trees as used by ImageNet and Imagenette.

Differences from ``torchvision.datasets.ImageFolder``: every image is converted to RGB (greyscale, CMYK,
palette and RGBA files included); a corrupt or truncated file raises :class:`CorruptImageError` naming
the file, or with ``skip_corrupt=True`` is replaced by the next readable sample and counted in the log;
a missing root, a class folder without images and train / val class sets that differ raise one-line
errors naming the folder and the config key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from neuroalign.core.errors import ConfigError, MissingFileError
from neuroalign.core.images import IMG_EXTENSIONS, CorruptImageError, read_rgb

__all__ = [
    "IMG_EXTENSIONS",
    "CorruptImageError",
    "ImageFolderDataset",
    "find_classes",
    "check_same_classes",
    "load_rgb",
    "subset_indices",
]

log = logging.getLogger(__name__)

#: config key pointing at the dataset root (shown in errors)
DATA_DIR_KEY = "data.init_args.data_dir"


def load_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` fully as RGB (:func:`neuroalign.core.images.read_rgb`); a corrupt file's error names
    the ``skip_corrupt`` switch."""
    return read_rgb(path, DATA_DIR_KEY, hint="remove it or set `data.init_args.skip_corrupt: true`")


def find_classes(root: str | Path, config_key: str = DATA_DIR_KEY) -> list[str]:
    """Sorted class folder names under ``root`` (sorted wnids give torchvision's ImageNet indices).

    Raises:
        MissingFileError: ``root`` does not exist.
        ConfigError: ``root`` has no class folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(f"image folder {root.name!r}", root, config_key)
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise ConfigError(f"{root} has no class folders (expected {root}/<class>/<image>); check `{config_key}`")
    return classes


def check_same_classes(train: Sequence[str], val: Sequence[str], root: str | Path, config_key: str = DATA_DIR_KEY) -> None:
    """Raise :class:`ConfigError` when the train and val splits have different class folders."""
    if list(train) == list(val):
        return
    only_train, only_val = sorted(set(train) - set(val)), sorted(set(val) - set(train))
    raise ConfigError(
        f"train and val class folders differ under {root}: only in train {only_train[:5]}"
        f"{'...' if len(only_train) > 5 else ''} ({len(only_train)}), only in val {only_val[:5]}"
        f"{'...' if len(only_val) > 5 else ''} ({len(only_val)}); fix the folders or `{config_key}`"
    )


def subset_indices(length: int, amount: float | int | None, seed: int, config_key: str) -> list[int] | None:
    """Fixed-seed random subset of ``range(length)``: a fraction in (0, 1] (float) or a count (int).

    Returns ``None`` for the full set (``amount`` is ``None``); indices come back sorted.
    """
    if amount is None:
        return None
    if isinstance(amount, bool) or amount <= 0 or (isinstance(amount, float) and amount > 1.0):
        raise ConfigError(f"{config_key}={amount!r} must be a fraction in (0, 1] or a positive count")
    count = round(length * amount) if isinstance(amount, float) else int(amount)
    count = max(1, min(length, count))
    generator = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(length, generator=generator)[:count].tolist())


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` dataset that yields ``(transform(rgb_image), class_index)``.

    Args:
        root: split folder, e.g. ``imagenet/train``.
        classes: class folder names in index order; ``None`` -> :func:`find_classes` (sorted).
        transform: applied to the RGB PIL image.
        skip_corrupt: replace unreadable files by the next readable sample (logged with a running count)
            instead of raising :class:`CorruptImageError`.
        extensions: lower-case file endings that count as images.
        config_key: config key named in errors.
    """

    def __init__(
        self,
        root: str | Path,
        classes: Sequence[str] | None = None,
        transform: Callable | None = None,
        skip_corrupt: bool = False,
        extensions: Sequence[str] = IMG_EXTENSIONS,
        config_key: str = DATA_DIR_KEY,
    ) -> None:
        self.root = Path(root)
        self.classes = list(classes) if classes is not None else find_classes(self.root, config_key)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.transform = transform
        self.skip_corrupt = skip_corrupt
        self.num_skipped = 0
        self.samples: list[tuple[str, int]] = []
        for name in self.classes:
            folder = self.root / name
            if not folder.is_dir():
                raise MissingFileError(f"class folder {name!r}", folder, config_key)
            files = sorted(
                entry.path for entry in os.scandir(folder) if entry.is_file() and entry.name.lower().endswith(tuple(extensions)) and not entry.name.startswith(".")
            )
            if not files:
                raise ConfigError(
                    f"class folder {folder} has no images ({', '.join(extensions[:3])}, ...); "
                    f"add images or remove the folder (`{config_key}`)"
                )
            self.samples += [(path, self.class_to_idx[name]) for path in files]
        self.targets = [target for _, target in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        for attempt in range(len(self.samples)):
            path, target = self.samples[(index + attempt) % len(self.samples)]
            try:
                image = load_rgb(path)
            except CorruptImageError:
                if not self.skip_corrupt:
                    raise
                self.num_skipped += 1
                log.warning("skipped corrupt image %s (%d skipped so far in this process)", path, self.num_skipped)
                continue
            return (self.transform(image) if self.transform else image), target
        raise CorruptImageError(f"no readable image under {self.root}; check `{DATA_DIR_KEY}`")

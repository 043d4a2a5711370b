"""Natural images for the evolution analyses: from an image folder or from a DataModule.

The folder may be flat or nested (Imagenette's ``val/<class>/<image>``); files are taken in sorted
path order so a run is reproducible. A folder with no images raises
:class:`~neuroalign.core.errors.ConfigError`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import LightningDataModule
from torchvision.transforms import v2

from neuroalign.core.errors import ConfigError, MissingFileError

__all__ = ["list_images", "load_image_folder", "load_datamodule_images", "load_natural_images"]


def list_images(folder: str | Path, config_key: str = "images") -> list[Path]:
    """Sorted image files under ``folder`` (recursive); an empty or missing folder raises a one-line error."""
    from datamodules.image_folder import IMG_EXTENSIONS

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise MissingFileError("image folder", root, config_key)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise ConfigError(f"image folder {root} holds no images ({', '.join(IMG_EXTENSIONS)}); set `{config_key}` to a folder with images")
    return files


def _transform(size: int) -> v2.Compose:
    return v2.Compose([v2.PILToTensor(), v2.Resize(size, antialias=True), v2.CenterCrop(size), v2.ToDtype(torch.float32, scale=True)])


def load_image_folder(folder: str | Path, n: int | None = None, size: int = 256, config_key: str = "images") -> tuple[torch.Tensor, list[str]]:
    """The first ``n`` images of ``folder`` as [0,1] RGB ``(n, 3, size, size)`` (shorter side resized, centre crop).

    Returns the images and their paths (strings).
    """
    from datamodules.image_folder import load_rgb

    files = list_images(folder, config_key)[: n or None]
    transform = _transform(size)
    return torch.stack([transform(load_rgb(f)) for f in files]), [str(f) for f in files]


def load_datamodule_images(datamodule: LightningDataModule, n: int, size: int = 256) -> tuple[torch.Tensor, list[str]]:
    """The first ``n`` images of the DataModule's validation loader (else test, else train), [0,1] RGB.

    Batches may be tensors, ``(images, labels)`` tuples or dicts with an ``image``/``images`` key.
    Images are resized and centre-cropped to ``size``; names are ``"<split>[<index>]"``.
    """
    datamodule.prepare_data()
    datamodule.setup("validate")
    loader, split = None, ""
    for split in ("val", "test", "train"):
        try:
            loader = getattr(datamodule, f"{split}_dataloader")()
        except Exception:  # noqa: BLE001 - a DataModule without this split
            loader = None
        if loader:
            break
    if not loader:
        raise ConfigError(f"{type(datamodule).__name__} has no val/test/train dataloader to draw natural images from (`datamodule`)")
    resize = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    chunks, total = [], 0
    for batch in loader:
        if isinstance(batch, dict):
            batch = batch.get("image", batch.get("images"))
        elif isinstance(batch, (tuple, list)):
            batch = batch[0]
        chunks.append(resize(batch.float()))
        total += chunks[-1].shape[0]
        if total >= n:
            break
    if not chunks:
        raise ConfigError(f"the {split} loader of {type(datamodule).__name__} yielded no images (`datamodule`)")
    images = torch.cat(chunks)[:n]
    return images, [f"{split}[{i}]" for i in range(images.shape[0])]


def load_natural_images(
    images: str | None, datamodule: LightningDataModule | None, n: int, size: int = 256
) -> tuple[torch.Tensor, list[str]]:
    """Natural images from a folder (``images``) or a DataModule; exactly one of them must be given."""
    if (images is None) == (datamodule is None):
        raise ConfigError("give exactly one source of natural images: `images` (a folder) or `datamodule`")
    if n < 1:
        raise ConfigError(f"n_images must be >= 1, got {n}")
    if images is not None:
        return load_image_folder(images, n, size)
    return load_datamodule_images(datamodule, n, size)

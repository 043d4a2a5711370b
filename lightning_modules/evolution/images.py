"""Natural images for the evolution analyses: from an image folder or from a DataModule.

The folder may be flat or nested (Imagenette's ``val/<class>/<image>``); files are listed and read by
:mod:`neuroalign.core.images` in sorted path order, so a run is reproducible. A folder with no images
raises :class:`~neuroalign.core.errors.ConfigError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torchvision.transforms import v2

from neuroalign.core.errors import ConfigError
from neuroalign.core.images import list_images, read_rgb

if TYPE_CHECKING:  # annotations only: this component does not import Lightning
    from lightning.pytorch import LightningDataModule

__all__ = ["list_images", "load_image_folder", "load_datamodule_images", "load_natural_images"]


def _resize_crop(size: int) -> v2.Compose:
    """Shorter side resized to ``size`` (antialiased), then a centre crop of ``size`` x ``size``."""
    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])


def _file_transform(size: int) -> v2.Compose:
    """A PIL image -> [0,1] ``(3, size, size)``: resized and cropped in uint8, then scaled to float."""
    return v2.Compose([v2.PILToTensor(), _resize_crop(size), v2.ToDtype(torch.float32, scale=True)])


def load_image_folder(folder: str | Path, n: int | None = None, size: int = 256, config_key: str = "images") -> tuple[torch.Tensor, list[str]]:
    """The first ``n`` images of ``folder`` as [0,1] RGB ``(n, 3, size, size)`` (shorter side resized, centre crop).

    Returns the images and their paths (strings).
    """
    files = list_images(folder, config_key)[: n or None]
    transform = _file_transform(size)
    return torch.stack([transform(read_rgb(f, config_key)) for f in files]), [str(f) for f in files]


def load_datamodule_images(datamodule: "LightningDataModule", n: int, size: int = 256) -> tuple[torch.Tensor, list[str]]:
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
    resize = _resize_crop(size)
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
    images: str | None, datamodule: "LightningDataModule | None", n: int, size: int = 256
) -> tuple[torch.Tensor, list[str]]:
    """Natural images from a folder (``images``) or a DataModule; exactly one of them must be given."""
    if (images is None) == (datamodule is None):
        raise ConfigError("give exactly one source of natural images: `images` (a folder) or `datamodule`")
    if n < 1:
        raise ConfigError(f"n_images must be >= 1, got {n}")
    if images is not None:
        return load_image_folder(images, n, size)
    return load_datamodule_images(datamodule, n, size)

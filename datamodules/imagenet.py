"""``ImageNetDataModule``: the standard ``root/{train,val}/<wnid>/*.JPEG`` layout.

Class indices follow the sorted wnid folders, which is torchvision's / timm's ImageNet-1k order, so
ImageNet weights score the labels directly. Any other ImageFolder tree works too (``imagenet_indices``
is then ``None`` unless its folders are ImageNet wnids).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from torch.utils.data import Dataset

from neuroalign.core.errors import MissingFileError

from datamodules.base import VisionDataModule
from datamodules.image_folder import DATA_DIR_KEY, ImageFolderDataset, check_same_classes, find_classes

__all__ = ["ImageNetDataModule", "imagenet_wnids"]


@functools.lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k wnids in index order, read from timm's class table (without importing timm)."""
    spec = importlib.util.find_spec("timm")
    table = Path(spec.origin).parent / "data" / "_info" / "imagenet_synsets.txt"
    return tuple(table.read_text().split())


class ImageNetDataModule(VisionDataModule):
    """ImageNet (or any ImageFolder tree with ``train/`` and ``val/`` splits of the same class folders).

    Val images must be sorted into wnid folders (the usual ``valprep.sh`` layout).

    ``data_dir`` is the folder holding ``train/`` and ``val/``; the other arguments are those of
    :class:`~datamodules.base.VisionDataModule` (``input_size`` defaults to 224).
    """

    def split_dir(self, split: str) -> Path:
        """Folder of ``split`` (``train`` or ``val``); raises :class:`MissingFileError` when absent."""
        folder = self.dataset_root() / split
        if not folder.is_dir():
            raise MissingFileError(f"{type(self).__name__} {split!r} split", folder, DATA_DIR_KEY)
        return folder

    def dataset_root(self) -> Path:
        """The folder holding the splits."""
        if self.data_dir is None or not self.data_dir.is_dir():
            raise MissingFileError(f"{type(self).__name__} root folder", self.data_dir, DATA_DIR_KEY)
        return self.data_dir

    def _list_classes(self) -> list[str]:
        return self.wnids

    @functools.cached_property
    def wnids(self) -> list[str]:
        """Class folder names of the train split in label order (wnids for ImageNet-style data)."""
        return find_classes(self.split_dir("train"))

    @property
    def imagenet_indices(self) -> list[int] | None:
        """ImageNet-1k index of each class folder, or ``None`` if some folder is not an ImageNet wnid."""
        index = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
        folders = self.wnids
        return [index[w] for w in folders] if all(w in index for w in folders) else None

    def _build_datasets(self, stage, train_transform, val_transform) -> tuple[Dataset | None, Dataset]:
        classes = self.wnids
        check_same_classes(classes, find_classes(self.split_dir("val")), self.dataset_root())
        val = ImageFolderDataset(self.split_dir("val"), classes, val_transform, self.skip_corrupt)
        if stage not in (None, "fit"):
            return None, val
        return ImageFolderDataset(self.split_dir("train"), classes, train_transform, self.skip_corrupt), val

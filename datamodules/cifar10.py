"""``CIFAR10DataModule``: CIFAR-10 from the python-pickle batches (``cifar-10-batches-py``).

The batches are read directly (``data_batch_1..5`` / ``test_batch`` / ``batches.meta``) so a local copy
needs no checksum match; a missing copy is downloaded with ``torchvision.datasets.CIFAR10`` when
``download`` is on (fails fast offline). Training uses the standard 32 px augmentation (4 px padded
random crop, horizontal flip), optionally the seed-000 rotation / greyscale, then a bicubic upsample
when the model takes another input size (e.g. 224 for ImageNet models).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from neuroalign.core.errors import ConfigError, MissingFileError

from datamodules.base import VisionDataModule
from datamodules.download import local_or_download
from datamodules.image_folder import DATA_DIR_KEY
from datamodules.transforms import build_crop_flip_transform, build_resize_transform

__all__ = ["CIFAR10DataModule", "ArrayImageDataset", "read_cifar_batches", "CIFAR_FOLDER"]

CIFAR_FOLDER = "cifar-10-batches-py"
_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
_TEST_FILES = ["test_batch"]


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ConfigError(f"corrupt CIFAR-10 file {path} ({err}); replace it (`{DATA_DIR_KEY}`)") from None


def read_cifar_batches(folder: str | Path, train: bool) -> tuple[np.ndarray, list[int], list[str]]:
    """Read the train (5 batches) or test split of a ``cifar-10-batches-py`` folder.

    Returns:
        ``(images uint8 [N, 32, 32, 3], labels, class names)``.

    Raises:
        MissingFileError: a batch file or ``batches.meta`` is absent.
        ConfigError: a file does not hold the expected ``data`` / ``labels`` entries.
    """
    folder = Path(folder)
    arrays, labels = [], []
    for name in _TRAIN_FILES if train else _TEST_FILES:
        path = folder / name
        if not path.is_file():
            raise MissingFileError(f"CIFAR-10 batch {name!r}", path, DATA_DIR_KEY)
        entry = _unpickle(path)
        data = np.asarray(entry.get("data"))
        if data.ndim != 2 or data.shape[1] != 3072 or "labels" not in entry or len(entry["labels"]) != len(data):
            raise ConfigError(f"{path} is not a CIFAR-10 batch (need data uint8 [N, 3072] and N labels)")
        arrays.append(data.astype(np.uint8, copy=False))
        labels.extend(int(y) for y in entry["labels"])
    meta_path = folder / "batches.meta"
    if not meta_path.is_file():
        raise MissingFileError("CIFAR-10 'batches.meta'", meta_path, DATA_DIR_KEY)
    names = list(_unpickle(meta_path)["label_names"])
    images = np.concatenate(arrays).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels, names


class ArrayImageDataset(Dataset):
    """In-memory uint8 ``[N, H, W, 3]`` images + labels -> ``(transform(PIL RGB image), label)``.

    Args:
        images: uint8 array ``[N, H, W, 3]``.
        labels: ``N`` integer labels.
        transform: applied to each PIL image.
    """

    def __init__(self, images: np.ndarray, labels, transform=None) -> None:
        self.images, self.targets, self.transform = images, list(labels), transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])
        return (self.transform(image) if self.transform else image), self.targets[index]


class CIFAR10DataModule(VisionDataModule):
    """CIFAR-10 (50 000 train / 10 000 test images, 32 px); ``val`` and ``test`` are the test split.

    Further keyword arguments (batch_size, num_workers, rotation, grayscale_p, input_size, subsets,
    ...) are those of :class:`~datamodules.base.VisionDataModule`; ``input_size`` (default 32) other
    than 32 upsamples bicubically after the augmentation.

    Args:
        data_dir: the ``cifar-10-batches-py`` folder or the folder that holds (or will hold) it.
        padding: zero padding of the 32 px random crop (0 = no crop).
        download: download with torchvision when no local copy is found (fails fast offline).
        **kwargs: keyword arguments of VisionDataModule.
    """

    default_input_size = 32

    def __init__(self, data_dir: str | Path, padding: int = 4, download: bool = True, **kwargs) -> None:
        super().__init__(data_dir, **kwargs)
        self.padding, self.download = padding, download

    def _local_folder(self) -> Path | None:
        if self.data_dir is None:
            return None
        for folder in (self.data_dir, self.data_dir / CIFAR_FOLDER):
            if (folder / "batches.meta").is_file():
                return folder
        return None

    def prepare_data(self) -> None:
        """Download the archive when no local copy exists (rank 0 only under Lightning)."""
        self.batches_folder()

    def batches_folder(self) -> Path:
        """The ``cifar-10-batches-py`` folder (downloaded first if needed and allowed)."""
        from torchvision.datasets import CIFAR10

        def fetch() -> None:
            CIFAR10(str(self.data_dir), train=True, download=True)

        return local_or_download(self._local_folder(), self.data_dir, CIFAR_FOLDER, "CIFAR-10", CIFAR10.url, self.download, fetch)

    def _list_classes(self) -> list[str]:
        folder = self._local_folder()
        if folder is None:  # the ten names are fixed; no download needed to link num_classes
            return ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        return list(_unpickle(folder / "batches.meta")["label_names"])

    def build_transforms(self, input_size: int):
        """Pad-crop + flip (+ rotation / greyscale) at 32 px, then upsample to ``input_size``."""
        train = build_crop_flip_transform(
            32, input_size, self.padding, self.rotation, self.grayscale_p, interpolation=self.interpolation
        )
        return train, build_resize_transform(32, input_size, self.interpolation)

    def _build_datasets(self, stage, train_transform, val_transform):
        folder = self.batches_folder()
        images, labels, _ = read_cifar_batches(folder, train=False)
        val = ArrayImageDataset(images, labels, val_transform)
        if stage not in (None, "fit"):
            return None, val
        images, labels, _ = read_cifar_batches(folder, train=True)
        return ArrayImageDataset(images, labels, train_transform), val

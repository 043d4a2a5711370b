"""``ImagenetteDataModule``: the 10-class ImageNet subset (fast.ai), local or downloaded by torchvision.

A local copy is either ``data_dir`` itself (holding ``train/`` and ``val/``) or the extracted archive
folder inside it (``imagenette2``, ``imagenette2-320`` or ``imagenette2-160`` for the size variant).
Otherwise, when ``download`` is on, ``torchvision.datasets.Imagenette`` downloads and extracts it there;
offline that request fails within seconds naming the folder to place.
"""

from __future__ import annotations

import functools
from pathlib import Path

from neuroalign.core.errors import ConfigError

from datamodules.download import local_or_download
from datamodules.image_folder import find_classes
from datamodules.imagenet import ImageNetDataModule

__all__ = ["ImagenetteDataModule", "IMAGENETTE_CLASSES", "IMAGENETTE_SIZES"]

#: wnid -> (class name, ImageNet-1k index), in label order (sorted wnids)
IMAGENETTE_CLASSES: dict[str, tuple[str, int]] = {
    "n01440764": ("tench", 0),
    "n02102040": ("English springer", 217),
    "n02979186": ("cassette player", 482),
    "n03000684": ("chain saw", 491),
    "n03028079": ("church", 497),
    "n03394916": ("French horn", 566),
    "n03417042": ("garbage truck", 569),
    "n03425413": ("gas pump", 571),
    "n03445777": ("golf ball", 574),
    "n03888257": ("parachute", 701),
}

#: size variant -> extracted folder name (torchvision's archive stems)
IMAGENETTE_SIZES: dict[str, str] = {"full": "imagenette2", "320px": "imagenette2-320", "160px": "imagenette2-160"}


class ImagenetteDataModule(ImageNetDataModule):
    """Imagenette with ImageNet label mapping, for evaluating and probing ImageNet-trained models.

    Labels are 0..9 (sorted wnids); :attr:`imagenet_indices` maps them to ImageNet-1k indices (tench 0,
    English springer 217, cassette player 482, chain saw 491, church 497, French horn 566, garbage
    truck 569, gas pump 571, golf ball 574, parachute 701). Further keyword arguments are those of
    :class:`~datamodules.base.VisionDataModule`.

    Args:
        data_dir: the extracted ``imagenette2*`` folder, or the folder that holds (or will hold) it.
        size: size variant ``full``, ``320px`` or ``160px`` (shorter side of the stored images).
        download: download with torchvision when no local copy is found (fails fast offline).
        **kwargs: batch_size, num_workers, rotation, grayscale_p, input_size, ... of VisionDataModule.
    """

    def __init__(self, data_dir: str | Path, size: str = "320px", download: bool = True, **kwargs) -> None:
        if size not in IMAGENETTE_SIZES:
            raise ConfigError(f"Imagenette size {size!r} is unknown; choose one of {list(IMAGENETTE_SIZES)} (data.init_args.size)")
        super().__init__(data_dir, **kwargs)
        self.size, self.download = size, download

    def _local_root(self) -> Path | None:
        if self.data_dir is None:
            return None
        for folder in (self.data_dir, self.data_dir / IMAGENETTE_SIZES[self.size]):
            if (folder / "train").is_dir() and (folder / "val").is_dir():
                return folder
        return None

    def prepare_data(self) -> None:
        """Download and extract the archive when no local copy exists (rank 0 only under Lightning)."""
        self.dataset_root()

    def dataset_root(self) -> Path:
        """The extracted folder holding ``train/`` and ``val/`` (downloaded first if needed and allowed)."""
        from torchvision.datasets import Imagenette

        def fetch() -> None:
            Imagenette(str(self.data_dir), split="train", size=self.size, download=True)

        url = Imagenette._ARCHIVES[self.size][0]
        folder = IMAGENETTE_SIZES[self.size]
        return local_or_download(self._local_root(), self.data_dir, folder, f"Imagenette ({self.size})", url, self.download, fetch)

    @functools.cached_property
    def wnids(self) -> list[str]:
        """Class folders in label order; the 10 Imagenette wnids before a copy exists (no download)."""
        root = self._local_root()
        return find_classes(root / "train") if root is not None else sorted(IMAGENETTE_CLASSES)

    def _list_classes(self) -> list[str]:
        return [IMAGENETTE_CLASSES[w][0] if w in IMAGENETTE_CLASSES else w for w in self.wnids]

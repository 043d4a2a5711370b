"""The built-in offline dataset: procedurally drawn shapes (:mod:`datamodules.shapes`), deterministic from a seed.

A split is rendered once into memory when small, memory-mapped from ``data_dir`` when one is given,
or drawn per item otherwise. It is the data of ``configs/quickstart.yaml``. Optionally every image carries
a class-dependent pattern (:mod:`datamodules.class_patterns`), the injected non-robust feature that makes
FGSM training overfit catastrophically (``configs/robust/quickstart_co_demo.yaml``).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from neuroalign.core.errors import ConfigError

from datamodules.base import VisionDataModule
from datamodules.class_patterns import (
    DEFAULT_CLASS_PATTERN_SEED, add_class_pattern, check_class_pattern, class_patterns,
)
from datamodules.shapes import SHAPE_CLASSES, render_shapes, sample_shape_params
from datamodules.transforms import build_crop_flip_transform, build_resize_transform

__all__ = ["SHAPE_CLASSES", "ShapesDataset", "ShapesDataModule"]  # SHAPE_CLASSES: from datamodules.shapes

log = logging.getLogger(__name__)

#: render everything up front when a split needs at most this many bytes (else per item / memory map)
_MEMORY_CACHE_BYTES = 256 * 2**20


class ShapesDataset(Dataset):
    """One split of the procedural shapes: ``(transform(PIL RGB image), label)``.

    Args:
        num: number of images.
        image_size: side of the drawn square images.
        num_classes: number of shape classes used (first of :data:`SHAPE_CLASSES`).
        seed: seed of the whole dataset (train and val differ through ``split``).
        split: ``train`` or ``val``.
        transform: applied to each PIL image.
        cache_dir: folder for a memory-mapped ``.npy`` copy of the rendered split (reused next time).
        class_pattern: L-inf size ``beta`` of the class pattern on every image (0: none). It is applied to
            the final [0,1] tensor (after ``transform``, which must return one; so the pattern is not
            augmented): ``(1 - 2 beta) x + beta + beta v_y``, with ``v_y`` the class's +-1 image
            (:func:`~datamodules.class_patterns.add_class_pattern`).
        class_pattern_seed: seed of the patterns (the same in every split).
    """

    def __init__(
        self,
        num: int,
        image_size: int,
        num_classes: int = 10,
        seed: int = 0,
        split: str = "train",
        transform=None,
        cache_dir: str | Path | None = None,
        class_pattern: float = 0.0,
        class_pattern_seed: int = DEFAULT_CLASS_PATTERN_SEED,
    ) -> None:
        check_class_pattern(class_pattern)
        self.num_classes = num_classes
        self.class_pattern, self.class_pattern_seed = class_pattern, class_pattern_seed
        self._patterns: Tensor | None = None
        self.params = sample_shape_params(num, num_classes, seed, split)
        self.targets = self.params["labels"].tolist()
        self.image_size, self.transform = image_size, transform
        self.images: np.ndarray | None = None
        nbytes = num * image_size * image_size * 3
        if cache_dir is not None:
            key = hashlib.sha1(f"{num}-{image_size}-{num_classes}-{seed}-{split}-v1".encode()).hexdigest()[:12]
            path = Path(cache_dir) / f"shapes-{split}-{key}.npy"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                self._render_all(np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), "w+", np.uint8, (num, image_size, image_size, 3)))
                path.with_suffix(".tmp.npy").replace(path)
                log.info("rendered %d %d px shapes into %s", num, image_size, path)
            self.images = np.load(path, mmap_mode="r")
        elif nbytes <= _MEMORY_CACHE_BYTES:
            self.images = self._render_all(np.empty((num, image_size, image_size, 3), np.uint8))

    def _render_all(self, out: np.ndarray) -> np.ndarray:
        chunk = max(1, 2**22 // (self.image_size**2))
        for start in range(0, len(out), chunk):
            stop = min(len(out), start + chunk)
            out[start:stop] = render_shapes(self.params, np.arange(start, stop), self.image_size)
        return out

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        if self.images is not None:
            array = np.asarray(self.images[index])
        else:
            array = render_shapes(self.params, np.array([index]), self.image_size)[0]
        image = Image.fromarray(array)
        label = self.targets[index]
        image = self.transform(image) if self.transform else image
        return (self._add_pattern(image, label) if self.class_pattern > 0 else image), label

    def _add_pattern(self, image: Tensor, label: int) -> Tensor:
        """The class's pattern on ``image`` (:func:`~datamodules.class_patterns.add_class_pattern`); drawn for its shape."""
        if not isinstance(image, Tensor):
            raise ConfigError("class_pattern needs a transform that returns a tensor (data.init_args.class_pattern)")
        if self._patterns is None or self._patterns.shape[1:] != image.shape:
            self._patterns = class_patterns(self.num_classes, tuple(image.shape), self.class_pattern_seed)
        return add_class_pattern(image, label, self.class_pattern, self._patterns)


class ShapesDataModule(VisionDataModule):
    """Built-in offline dataset of procedurally drawn shapes (no download, deterministic from ``seed``).

    Further keyword arguments (batch_size, num_workers, rotation, grayscale_p, input_size, seed,
    subsets, ...) are those of :class:`~datamodules.base.VisionDataModule`. Images are drawn at
    ``image_size`` (default: the model input size, else 32) and resized to ``input_size`` if it differs.

    Args:
        data_dir: optional cache folder for rendered splits (``None``: render in memory / on the fly).
        num_train: training images.
        num_val: validation images.
        image_size: side of the drawn images; ``None`` follows ``input_size`` (32 if unset).
        num_classes: shape classes, 2 to 12.
        padding: padding of the training random crop in pixels; ``None`` -> image_size // 8.
        class_pattern: L-inf size ``beta`` (in [0, 0.5)) of a fixed random +-1 pattern per class put on
            every image of every split (train, val and the test loader, which is val) after augmentation
            and the resize, on the [0,1] tensor the model sees: ``(1 - 2 beta) x + beta + beta v_y``
            (the image shrunk towards grey, so nothing is clipped); 0 (default) adds nothing. Just
            under the training eps it is an easy, discriminative but non-robust feature that makes FGSM
            training overfit catastrophically (Ortiz-Jimenez et al. 2023, "Catastrophic overfitting can be
            induced with discriminative non-robust features").
        class_pattern_seed: seed of the class patterns (the same patterns in every split).
        **kwargs: keyword arguments of VisionDataModule.
    """

    default_input_size = 32

    def __init__(
        self,
        data_dir: str | Path | None = None,
        num_train: int = 10000,
        num_val: int = 1000,
        image_size: int | None = None,
        num_classes: int = 10,
        padding: int | None = None,
        class_pattern: float = 0.0,
        class_pattern_seed: int = DEFAULT_CLASS_PATTERN_SEED,
        **kwargs,
    ) -> None:
        check_class_pattern(class_pattern)
        if not 2 <= num_classes <= len(SHAPE_CLASSES):
            raise ConfigError(f"num_classes={num_classes} must be in 2..{len(SHAPE_CLASSES)} (data.init_args.num_classes)")
        if num_train < 1 or num_val < 1:
            raise ConfigError(f"num_train={num_train} and num_val={num_val} must be >= 1 (data.init_args)")
        super().__init__(data_dir, **kwargs)
        self.num_train, self.num_val, self.image_size = num_train, num_val, image_size
        self._num_classes, self.padding = num_classes, padding
        self.class_pattern, self.class_pattern_seed = class_pattern, class_pattern_seed

    def _list_classes(self) -> list[str]:
        return list(SHAPE_CLASSES[: self._num_classes])

    @property
    def resolved_image_size(self) -> int:
        """Side the images are drawn at."""
        return self.image_size or self.resolved_input_size

    def build_transforms(self, input_size: int):
        """Pad-crop + flip (+ rotation / greyscale) at the drawn size, then resize to ``input_size``."""
        size = self.resolved_image_size
        padding = size // 8 if self.padding is None else self.padding
        train = build_crop_flip_transform(
            size, input_size, padding, self.rotation, self.grayscale_p, interpolation=self.interpolation
        )
        return train, build_resize_transform(size, input_size, self.interpolation)

    def _build_datasets(self, stage, train_transform, val_transform):
        def split(name: str, num: int, transform) -> ShapesDataset:
            return ShapesDataset(
                num, self.resolved_image_size, self._num_classes, self.seed, name, transform, self.data_dir,
                self.class_pattern, self.class_pattern_seed,
            )

        val = split("val", self.num_val, val_transform)
        return (split("train", self.num_train, train_transform) if stage in (None, "fit") else None), val

"""``VisionDataModule``: what every neuroalign DataModule shares.

Arguments common to all (``data_dir`` first, then batch size, workers, the augmentation switches and
the model input size), lazy class metadata for LightningCLI links, fixed-seed subsets and the loaders.
Subclasses say where the data is (:meth:`VisionDataModule._build_datasets`) and which classes it has
(:meth:`VisionDataModule._list_classes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader, Dataset, Subset

from neuroalign.core.errors import ConfigError

from datamodules.image_folder import subset_indices
from datamodules.transforms import build_train_transform, build_val_transform

__all__ = ["VisionDataModule", "DEFAULT_NUM_WORKERS"]

#: two loader processes keep a 2-core machine's training step fed (see benchmarks/bench_data_pipeline.py)
DEFAULT_NUM_WORKERS = 2


def _as_side(value: int | Sequence[int] | None) -> int | None:
    """``224``, ``(224, 224)`` or ``(3, 224, 224)`` -> ``224``; non-square sizes are rejected."""
    if value is None or isinstance(value, int):
        return value
    sides = [int(v) for v in value][-2:]
    if len(set(sides)) != 1:
        raise ConfigError(f"input_size={tuple(value)} is not square; set `data.init_args.input_size` to one side")
    return sides[0]


class VisionDataModule(L.LightningDataModule):
    """Base of the image-classification DataModules: loaders of [0, 1] RGB tensors and integer labels.

    Args:
        data_dir: dataset root folder (meaning depends on the subclass).
        batch_size: images per batch.
        num_workers: DataLoader worker processes (0 loads in the main process).
        rotation: switch the hard 0/90/180/270 degree rotation on (docs/recipes.md section 1).
        grayscale_p: probability of ``RandomGrayscale``; 0 switches it off (seed 000 used 0.25).
        input_size: side of the square model input; ``None`` -> the dataset's default. Usually linked
            from the model (``model.input_size``); may be set after ``__init__`` and before ``setup``.
        resize_size: shorter side of the first resize; ``None`` -> round(input_size * 256 / 224).
        interpolation: resize interpolation, ``bicubic`` (seed 000), ``bilinear`` or ``nearest``.
        skip_corrupt: skip unreadable image files (counted in the log) instead of failing on them.
        pin_memory: pin loader memory (useful with a GPU only).
        seed: seed of the train / val subsets (and of generated data).
        train_subset: fixed-seed subset of the training split: fraction in (0, 1] or a count.
        val_subset: fixed-seed subset of the validation split: fraction in (0, 1] or a count.
    """

    #: input side used when neither ``input_size`` nor a link sets one
    default_input_size: int = 224

    def __init__(
        self,
        data_dir: str | Path | None,
        batch_size: int = 64,
        num_workers: int = DEFAULT_NUM_WORKERS,
        rotation: bool = False,
        grayscale_p: float = 0.0,
        input_size: int | None = None,
        resize_size: int | None = None,
        interpolation: str = "bicubic",
        skip_corrupt: bool = False,
        pin_memory: bool = False,
        seed: int = 0,
        train_subset: float | int | None = None,
        val_subset: float | int | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be >= 1 (data.init_args.batch_size)")
        if num_workers < 0:
            raise ConfigError(f"num_workers={num_workers} must be >= 0 (data.init_args.num_workers)")
        if not 0.0 <= grayscale_p <= 1.0:
            raise ConfigError(f"grayscale_p={grayscale_p} is not a probability in [0, 1] (data.init_args.grayscale_p)")
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else None
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.rotation, self.grayscale_p = rotation, grayscale_p
        self.input_size = input_size
        self.resize_size, self.interpolation = resize_size, interpolation
        self.skip_corrupt, self.seed = skip_corrupt, seed
        self.train_subset, self.val_subset = train_subset, val_subset
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self._class_names: list[str] | None = None

    # ------------------------------------------------------------------ metadata (for links)
    @property
    def input_size(self) -> int | None:
        """Side of the square model input (``None`` until set: the dataset default is used)."""
        return self._input_size

    @input_size.setter
    def input_size(self, value: int | Sequence[int] | None) -> None:
        self._input_size = _as_side(value)

    @property
    def resolved_input_size(self) -> int:
        """The input side ``setup`` uses: ``input_size`` or the dataset default."""
        return self.input_size or self.default_input_size

    @property
    def class_names(self) -> list[str]:
        """Class names in label order (read from the folder listing on first access, no image scan)."""
        if self._class_names is None:
            self._class_names = list(self._list_classes())
        return self._class_names

    @property
    def num_classes(self) -> int:
        """Number of classes (for ``link_arguments`` to the model head)."""
        return len(self.class_names)

    @property
    def imagenet_indices(self) -> list[int] | None:
        """ImageNet-1k index of each class (label order), or ``None`` when the classes are not ImageNet's."""
        return None

    # ------------------------------------------------------------------ subclass hooks
    def _list_classes(self) -> Sequence[str]:
        """Class names in label order; cheap (no image decoding)."""
        raise NotImplementedError

    def _build_datasets(self, stage: str | None, train_transform, val_transform) -> tuple[Dataset | None, Dataset]:
        """Return ``(train, val)`` datasets; ``train`` may be ``None`` when ``stage`` does not fit."""
        raise NotImplementedError

    def build_transforms(self, input_size: int):
        """``(train, val)`` transforms for ``input_size``; default: the docs/recipes.md section 1 pipelines."""
        train = build_train_transform(
            input_size, self.resize_size, self.rotation, self.grayscale_p, interpolation=self.interpolation
        )
        return train, build_val_transform(input_size, self.resize_size, self.interpolation)

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        """Build the transforms for the current ``input_size`` and the (subset) datasets."""
        train_tf, val_tf = self.build_transforms(self.resolved_input_size)
        train, val = self._build_datasets(stage, train_tf, val_tf)
        self.train_dataset = self._subset(train, self.train_subset, "data.init_args.train_subset")
        self.val_dataset = self._subset(val, self.val_subset, "data.init_args.val_subset")

    def _subset(self, dataset: Dataset | None, amount: float | int | None, key: str) -> Dataset | None:
        if dataset is None:
            return None
        indices = subset_indices(len(dataset), amount, self.seed, key)
        return dataset if indices is None else Subset(dataset, indices)

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for a DataLoader")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches ``(images [B, 3, S, S] in [0, 1], labels [B])``."""
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in a fixed order."""
        return self._loader(self.val_dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """The validation split (ImageNet-style datasets have no labelled test split)."""
        return self._loader(self.val_dataset, shuffle=False)

"""The built-in procedural shapes: determinism, sizes, caching, the DataModule, learnability."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import transforms as T

import datamodules.procedural as procedural
from datamodules import SHAPE_CLASSES, ShapesDataModule
from datamodules.class_patterns import class_patterns
from datamodules.procedural import ShapesDataset
from neuroalign.core.errors import ConfigError


def _arrays(dataset: ShapesDataset) -> np.ndarray:
    return np.stack([np.asarray(dataset[i][0]) for i in range(len(dataset))])


def test_deterministic_from_seed_and_splits_differ():
    a, b = ShapesDataset(40, 24, seed=5), ShapesDataset(40, 24, seed=5)
    assert np.array_equal(a.images, b.images) and a.targets == b.targets
    assert not np.array_equal(a.images, ShapesDataset(40, 24, seed=6).images)
    assert not np.array_equal(a.images, ShapesDataset(40, 24, seed=5, split="val").images)
    assert np.bincount(a.targets).tolist() == [4] * 10  # balanced labels


def test_on_the_fly_rendering_equals_cached(monkeypatch):
    cached = ShapesDataset(30, 20, num_classes=12, seed=1)
    monkeypatch.setattr(procedural, "_MEMORY_CACHE_BYTES", 0)
    lazy = ShapesDataset(30, 20, num_classes=12, seed=1)
    assert lazy.images is None
    assert np.array_equal(_arrays(lazy), cached.images)
    assert set(lazy.targets) == set(range(12))


def test_any_image_size_shows_the_same_scene():
    small, large = ShapesDataset(12, 32, seed=2), ShapesDataset(12, 96, seed=2)
    assert large.images.shape == (12, 96, 96, 3) and large.targets == small.targets
    downsampled = large.images.reshape(12, 32, 3, 32, 3, 3).mean(axis=(2, 4))
    assert np.abs(downsampled - small.images).mean() < 20  # same layout, finer pixels


def test_disk_cache_is_written_and_reused(tmp_path):
    first = ShapesDataset(16, 16, seed=3, cache_dir=tmp_path)
    files = list(tmp_path.glob("shapes-train-*.npy"))
    assert len(files) == 1 and isinstance(first.images, np.memmap)
    second = ShapesDataset(16, 16, seed=3, cache_dir=tmp_path)
    assert np.array_equal(first.images, second.images) and len(list(tmp_path.glob("*.npy"))) == 1


def test_foreground_contrast_survives_greyscale():
    dataset = ShapesDataset(60, 32, seed=4)
    p = dataset.params
    grey = lambda c: c @ np.array([0.299, 0.587, 0.114])  # noqa: E731
    contrast = np.abs(grey(p["fg"]) - (grey(p["bg0"]) + grey(p["bg1"])) / 2)
    assert contrast.min() > 0.1 and np.median(contrast) > 0.25


def test_datamodule_follows_input_size_and_options(tmp_path):
    dm = ShapesDataModule(num_train=20, num_val=10, batch_size=8, num_workers=0, rotation=True, grayscale_p=0.5)
    assert dm.num_classes == 10 and dm.class_names == list(SHAPE_CLASSES[:10]) and dm.imagenet_indices is None
    dm.input_size = 40  # linked from the model after __init__: images are drawn at 40 px
    dm.setup("fit")
    assert dm.train_dataset.image_size == 40
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 40, 40) and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.int64
    fixed = ShapesDataModule(tmp_path, num_train=8, num_val=8, image_size=16, input_size=32, num_workers=0, batch_size=8)
    fixed.setup("validate")
    assert fixed.train_dataset is None and next(iter(fixed.val_dataloader()))[0].shape == (8, 3, 32, 32)
    assert list(tmp_path.glob("shapes-val-*.npy"))


def _item(dataset, index: int, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)  # the same random augmentation for the plain and the patterned copy
    return dataset[index][0]


def test_class_pattern_is_added_after_augmentation_the_same_in_every_split():
    beta = 6 / 255
    kwargs = dict(num_train=20, num_val=20, batch_size=4, num_workers=0, image_size=16, input_size=24, padding=2)
    plain, marked = ShapesDataModule(**kwargs), ShapesDataModule(class_pattern=beta, class_pattern_seed=3, **kwargs)
    for dm in (plain, marked):
        dm.setup("fit")
    patterns = class_patterns(10, (3, 24, 24), seed=3)
    assert not torch.equal(patterns, class_patterns(10, (3, 24, 24), seed=4))
    for split in ("train_dataset", "val_dataset"):  # train: crop + flip (+ resize), val: resize only
        a, b = getattr(plain, split), getattr(marked, split)
        for i in range(len(a)):
            x, x_marked, y = _item(a, i, seed=i), _item(b, i, seed=i), a.targets[i]
            # the image shrunk towards grey plus exactly +-beta in the class's signs, nothing clipped
            assert torch.allclose(x_marked - (1 - 2 * beta) * x - beta, beta * patterns[y], atol=1e-6)
            assert x_marked.min() >= 0 and x_marked.max() <= 1


def test_class_pattern_off_by_default_and_checked():
    dataset = ShapesDataset(10, 16, seed=1, transform=T.ToTensor())
    assert dataset.class_pattern == 0.0
    for i in range(len(dataset)):
        assert torch.equal(dataset[i][0], T.ToTensor()(dataset.images[i]))  # the rendered pixels, untouched
    for bad in (-0.1, 0.5):
        with pytest.raises(ConfigError, match="data.init_args.class_pattern"):
            ShapesDataModule(class_pattern=bad)


@pytest.mark.parametrize("kwargs", [{"num_classes": 13}, {"num_classes": 1}, {"num_train": 0}])
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        ShapesDataModule(**kwargs)

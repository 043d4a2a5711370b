"""CIFAR10DataModule on a tiny ``cifar-10-batches-py`` folder in the real python-pickle format."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
import torch
from torchvision import transforms as T

from datamodules import CIFAR10DataModule, HardRotation
from neuroalign.core.errors import MissingFileError

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _write_batch(path, images: np.ndarray, labels: list[int]) -> None:
    """One batch as CIFAR-10 ships it: data uint8 [N, 3072] (channel planes, row-major), labels list."""
    entry = {
        "batch_label": path.name,
        "labels": labels,
        "data": images.transpose(0, 3, 1, 2).reshape(len(images), 3072),
        "filenames": [f"img_{i}.png" for i in range(len(images))],
    }
    with open(path, "wb") as handle:
        pickle.dump(entry, handle, protocol=2)


@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _write_batch(folder / f"data_batch_{i}", rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), [i, i, 0, 9])
    test_images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    test_images[0] = 0
    test_images[0, 0, 1] = (255, 10, 0)  # one red pixel at row 0, column 1
    _write_batch(folder / "test_batch", test_images, [3, 1, 4, 1, 5, 9])
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": NAMES, "num_cases_per_batch": 4, "num_vis": 3072}, handle, protocol=2)
    return tmp_path


def test_reads_real_format_pixel_exact(cifar_root):
    dm = CIFAR10DataModule(cifar_root, batch_size=8, num_workers=0)
    assert dm.class_names == NAMES and dm.num_classes == 10
    dm.setup("fit")
    assert len(dm.train_dataset) == 20 and len(dm.val_dataset) == 6
    x, y = dm.val_dataset[0]
    assert y == 3 and x.shape == (3, 32, 32)
    assert x[:, 0, 1].tolist() == pytest.approx([1.0, 10 / 255, 0.0]) and x.sum() == pytest.approx(1 + 10 / 255)
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (8, 3, 32, 32) and yb.dtype == torch.int64 and 0 <= xb.min() and xb.max() <= 1


def test_upsampling_and_recipe_options(cifar_root):
    dm = CIFAR10DataModule(cifar_root / "cifar-10-batches-py", batch_size=4, num_workers=0, rotation=True, grayscale_p=0.25)
    dm.input_size = 64  # linked from an ImageNet-style model
    dm.setup("fit")
    kinds = [type(t) for t in dm.train_dataset.transform.transforms]
    assert kinds[:2] == [HardRotation, T.RandomGrayscale] and T.RandomCrop in kinds and T.Resize in kinds
    assert dm.train_dataset.transform.transforms[kinds.index(T.RandomCrop)].padding == 4
    assert next(iter(dm.train_dataloader()))[0].shape == (4, 3, 64, 64)
    assert next(iter(dm.val_dataloader()))[0].shape == (4, 3, 64, 64)


def test_missing_batch_named(cifar_root):
    (cifar_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(MissingFileError, match="data_batch_3"):
        CIFAR10DataModule(cifar_root, num_workers=0).setup("fit")
    CIFAR10DataModule(cifar_root, num_workers=0).setup("validate")  # the test split alone is complete


def test_offline_download_fails_fast(tmp_path):
    dm = CIFAR10DataModule(tmp_path)
    assert dm.num_classes == 10  # fixed class names: linkable without data
    start = time.monotonic()
    with pytest.raises(MissingFileError, match=r"cifar-10-batches-py.*data\.init_args\.data_dir"):
        dm.prepare_data()
    assert time.monotonic() - start < 10

"""ImageNetDataModule on a tiny ``train/val/<wnid>`` JPEG tree: labels, transforms, subsets, bad input."""

from __future__ import annotations

import pytest
import torch
from image_trees import make_image_tree, truncate
from jsonargparse import ArgumentParser

from datamodules import ImageNetDataModule
from datamodules.image_folder import CorruptImageError
from neuroalign.core.errors import ConfigError, MissingFileError

# three real ImageNet wnids, deliberately not in sorted order
WNIDS = ["n03888257", "n01440764", "n02102040"]


@pytest.fixture
def imagenet_root(tmp_path):
    root = tmp_path / "imagenet"
    make_image_tree(root / "train", WNIDS, per_class=4)
    make_image_tree(root / "val", WNIDS, per_class=2, seed=100)
    return root


def test_labels_follow_sorted_wnids_and_imagenet_indices(imagenet_root):
    dm = ImageNetDataModule(imagenet_root, batch_size=4, num_workers=0)
    # class metadata is there before setup (for LightningCLI links)
    assert dm.class_names == sorted(WNIDS) and dm.num_classes == 3
    assert dm.imagenet_indices == [0, 217, 701]
    assert dm.train_dataset is None


def test_loaders_yield_unnormalised_batches_at_linked_input_size(imagenet_root):
    dm = ImageNetDataModule(imagenet_root, batch_size=4, num_workers=0, rotation=True, grayscale_p=0.25)
    dm.input_size = (3, 32, 32)  # as a LightningCLI link from model.input_size would set it after __init__
    dm.setup("fit")
    assert len(dm.train_dataset) == 12 and len(dm.val_dataset) == 6
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == torch.int64 and set(y.tolist()) <= {0, 1, 2}
    val_batches = list(dm.val_dataloader())
    assert sum(len(b[1]) for b in val_batches) == 6
    assert torch.equal(val_batches[0][0], next(iter(dm.val_dataloader()))[0])  # val is deterministic
    assert [b[1].tolist() for b in val_batches] == [[0, 0, 1, 1], [2, 2]]


def test_validate_stage_builds_val_only_and_default_size(imagenet_root):
    dm = ImageNetDataModule(imagenet_root, batch_size=2, num_workers=0)
    dm.setup("validate")
    assert dm.train_dataset is None
    assert next(iter(dm.test_dataloader()))[0].shape == (2, 3, 224, 224)


def test_fixed_seed_subsets(imagenet_root):
    a = ImageNetDataModule(imagenet_root, num_workers=0, train_subset=0.5, val_subset=4, seed=3)
    b = ImageNetDataModule(imagenet_root, num_workers=0, train_subset=0.5, val_subset=4, seed=3)
    a.setup("fit"), b.setup("fit")
    assert len(a.train_dataset) == 6 and len(a.val_dataset) == 4
    assert a.train_dataset.indices == b.train_dataset.indices
    with pytest.raises(ConfigError, match="val_subset"):
        ImageNetDataModule(imagenet_root, num_workers=0, val_subset=2.0).setup("validate")


def test_non_imagenet_folders_have_no_imagenet_indices(tmp_path):
    make_image_tree(tmp_path / "train", ["cats", "dogs"], per_class=1)
    assert ImageNetDataModule(tmp_path).imagenet_indices is None


def test_init_is_cheap_and_errors_name_folder_and_key(tmp_path):
    dm = ImageNetDataModule(tmp_path / "missing")  # no scan in __init__ (print_config works without data)
    with pytest.raises(MissingFileError, match=r"missing.*data\.init_args\.data_dir"):
        dm.setup("fit")
    make_image_tree(tmp_path / "only_train" / "train", WNIDS, per_class=1)
    with pytest.raises(MissingFileError, match=r"'val' split.*only_train/val"):
        ImageNetDataModule(tmp_path / "only_train").setup("fit")


def test_train_val_class_mismatch(tmp_path):
    make_image_tree(tmp_path / "train", WNIDS, per_class=1)
    make_image_tree(tmp_path / "val", WNIDS[:2] + ["n09999999"], per_class=1)
    with pytest.raises(ConfigError, match="n09999999"):
        ImageNetDataModule(tmp_path).setup("fit")


def test_corrupt_file_through_worker_and_skip(imagenet_root):
    bad = truncate(sorted((imagenet_root / "val" / WNIDS[1]).iterdir())[0])
    dm = ImageNetDataModule(imagenet_root, batch_size=6, num_workers=1, input_size=16)
    dm.setup("validate")
    with pytest.raises(CorruptImageError, match=bad.name):
        list(dm.val_dataloader())
    dm = ImageNetDataModule(imagenet_root, batch_size=6, num_workers=0, input_size=16, skip_corrupt=True)
    dm.setup("validate")
    (x, y), = list(dm.val_dataloader())
    assert x.shape == (6, 3, 16, 16)


def test_cli_introspection_sees_shared_arguments():
    parser = ArgumentParser()
    parser.add_class_arguments(ImageNetDataModule, "data")
    defaults = parser.get_defaults().data
    for key in ("data_dir", "batch_size", "num_workers", "rotation", "grayscale_p", "input_size", "train_subset"):
        assert key in defaults
    assert defaults.rotation is False and defaults.grayscale_p == 0.0

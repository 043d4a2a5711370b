"""ImagenetteDataModule: extracted ``imagenette2-*`` trees, the ImageNet index map, offline downloads."""

from __future__ import annotations

import time

import pytest
from image_trees import make_image_tree

from datamodules import IMAGENETTE_CLASSES, ImagenetteDataModule
from datamodules.imagenet import imagenet_wnids
from neuroalign.core.errors import ConfigError, MissingFileError

EXPECTED_INDICES = [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]


@pytest.fixture
def imagenette_parent(tmp_path):
    folder = tmp_path / "imagenette2-160"
    make_image_tree(folder / "train", list(IMAGENETTE_CLASSES), per_class=1)
    make_image_tree(folder / "val", list(IMAGENETTE_CLASSES), per_class=1, seed=50)
    return tmp_path


def test_class_map_matches_imagenet():
    wnids = imagenet_wnids()
    assert [idx for _, idx in IMAGENETTE_CLASSES.values()] == EXPECTED_INDICES
    assert [wnids.index(w) for w in IMAGENETTE_CLASSES] == EXPECTED_INDICES


def test_local_size_variant_loads_with_names_and_indices(imagenette_parent):
    dm = ImagenetteDataModule(imagenette_parent, size="160px", batch_size=5, num_workers=0, input_size=24)
    assert dm.imagenet_indices == EXPECTED_INDICES
    assert dm.class_names[:2] == ["tench", "English springer"] and dm.num_classes == 10
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (5, 3, 24, 24) and 0 <= x.min() and x.max() <= 1
    assert len(dm.val_dataset) == 10 and sorted(dm.val_dataset.targets) == list(range(10))


def test_data_dir_may_be_the_extracted_folder(imagenette_parent):
    dm = ImagenetteDataModule(imagenette_parent / "imagenette2-160", size="full", num_workers=0, input_size=16)
    dm.setup("validate")
    assert len(dm.val_dataset) == 10


def test_offline_download_fails_fast_naming_folder_and_key(tmp_path):
    dm = ImagenetteDataModule(tmp_path, size="320px")
    assert dm.num_classes == 10 and dm.imagenet_indices == EXPECTED_INDICES  # no download needed to link
    start = time.monotonic()
    with pytest.raises(MissingFileError, match=r"imagenette2-320.*data\.init_args\.data_dir"):
        dm.prepare_data()
    assert time.monotonic() - start < 10
    with pytest.raises(MissingFileError, match="download"):
        ImagenetteDataModule(tmp_path, download=False).setup("fit")


def test_bad_size():
    with pytest.raises(ConfigError, match="size"):
        ImagenetteDataModule("x", size="64px")

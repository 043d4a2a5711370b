"""Robust ImageFolder reading: RGB conversion of every mode, corrupt files, empty folders, class checks."""

from __future__ import annotations

import logging

import pytest
from image_trees import make_image_tree, truncate, write_image
from PIL import Image

from datamodules.image_folder import (
    CorruptImageError,
    ImageFolderDataset,
    check_same_classes,
    find_classes,
    load_rgb,
    subset_indices,
)
from neuroalign.core.errors import ConfigError, MissingFileError


def test_every_mode_is_read_as_rgb(tmp_path):
    files = make_image_tree(tmp_path, ["b_cls", "a_cls"], per_class=5)
    modes = {Image.open(f).mode for f in files}
    assert {"RGB", "L", "CMYK", "P", "RGBA"} <= modes
    dataset = ImageFolderDataset(tmp_path)
    assert dataset.classes == ["a_cls", "b_cls"]  # sorted, like torchvision
    assert len(dataset) == 10
    sizes = set()
    for image, target in (dataset[i] for i in range(len(dataset))):
        assert image.mode == "RGB" and target in (0, 1)
        sizes.add(image.size)
    assert len(sizes) > 1  # mixed sizes are kept for the transform to handle


def test_palette_with_transparency(tmp_path):
    path = tmp_path / "p.png"
    image = Image.new("P", (8, 6))
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.info["transparency"] = 0
    image.save(path, transparency=0)
    assert load_rgb(path).mode == "RGB"


def test_corrupt_file_named_or_skipped(tmp_path, caplog):
    make_image_tree(tmp_path, ["a", "b"], per_class=2)
    bad = truncate(write_image(tmp_path / "a" / "zz_bad.JPEG", "RGB", (64, 48)))
    (tmp_path / "b" / "not_an_image.jpg").write_bytes(b"hello")
    strict = ImageFolderDataset(tmp_path)
    index = [path for path, _ in strict.samples].index(str(bad))
    with pytest.raises(CorruptImageError, match="zz_bad.JPEG") as info:
        strict[index]
    assert "skip_corrupt" in str(info.value) and isinstance(info.value, ConfigError)

    lenient = ImageFolderDataset(tmp_path, skip_corrupt=True)
    with caplog.at_level(logging.WARNING, logger="datamodules.image_folder"):
        items = [lenient[i] for i in range(len(lenient))]
    assert all(image.mode == "RGB" for image, _ in items)
    assert lenient.num_skipped == 2
    assert any("zz_bad.JPEG" in r.getMessage() for r in caplog.records)
    assert any("2 skipped" in r.getMessage() for r in caplog.records)


def test_empty_class_folder_and_missing_root(tmp_path):
    make_image_tree(tmp_path / "train", ["a"], per_class=1)
    (tmp_path / "train" / "empty_cls").mkdir()
    (tmp_path / "train" / "empty_cls" / "notes.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="empty_cls has no images"):
        ImageFolderDataset(tmp_path / "train")
    with pytest.raises(MissingFileError, match="nowhere"):
        find_classes(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    with pytest.raises(ConfigError, match="no class folders"):
        find_classes(tmp_path / "flat")


def test_class_set_mismatch():
    check_same_classes(["a", "b"], ["a", "b"], "root")
    with pytest.raises(ConfigError, match=r"only in train \['b'\].*only in val \['c'\]"):
        check_same_classes(["a", "b"], ["a", "c"], "root")


def test_subset_indices_fraction_count_and_seed():
    assert subset_indices(10, None, 0, "k") is None
    half = subset_indices(10, 0.5, 0, "k")
    assert len(half) == 5 and half == sorted(half) and half == subset_indices(10, 0.5, 0, "k")
    assert subset_indices(10, 0.5, 1, "k") != half or subset_indices(10, 0.5, 2, "k") != half
    assert len(subset_indices(10, 3, 0, "k")) == 3
    assert len(subset_indices(10, 30, 0, "k")) == 10
    for bad in (0, -1, 1.5, 0.0):
        with pytest.raises(ConfigError, match="data.init_args.train_subset"):
            subset_indices(10, bad, 0, "data.init_args.train_subset")

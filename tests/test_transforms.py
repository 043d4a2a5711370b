"""The seed-000 augmentation pipelines (docs/recipes.md section 1): order, rotation angles and rates, greyscale rate, no normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from datamodules.transforms import (
    HardRotation,
    build_crop_flip_transform,
    build_train_transform,
    build_val_transform,
    default_resize_size,
)
from neuroalign.core.errors import ConfigError


def _marker_image(width: int = 40, height: int = 24) -> Image.Image:
    """Non-square image with a marker off-centre inside the central square: every rotation looks different."""
    array = np.full((height, width, 3), 80, np.uint8)
    array[2:8, 10:16] = (255, 0, 0)
    return Image.fromarray(array)


def test_hard_rotation_angles_are_uniform_and_canvas_is_kept():
    image = _marker_image()
    candidates = {angle: np.asarray(F.rotate(image, angle, expand=False, fill=0)) for angle in (0, 90, 180, 270)}
    assert len({a.tobytes() for a in candidates.values()}) == 4  # the four outcomes are distinguishable
    rotate = HardRotation()
    torch.manual_seed(0)
    counts = dict.fromkeys(candidates, 0)
    n = 2000
    for _ in range(n):
        out = rotate(image)
        assert out.size == image.size  # expand=False: the non-square canvas stays 40 x 24
        array = np.asarray(out)
        matches = [angle for angle, ref in candidates.items() if np.array_equal(array, ref)]
        assert len(matches) == 1
        counts[matches[0]] += 1
    for angle, count in counts.items():
        assert abs(count / n - 0.25) < 0.035, (angle, counts)
    # a quarter turn of a non-square image leaves black (fill 0) bars at the sides
    quarter = candidates[90]
    assert quarter[:, 0].max() == 0 and quarter[:, -1].max() == 0


def test_hard_rotation_on_tensors_and_probabilities():
    x = torch.rand(3, 8, 12)
    torch.manual_seed(1)
    always = HardRotation(p90=1.0, p180=0.0)
    assert torch.equal(always(x), F.rotate(x, 90, expand=False, fill=0.0))
    assert torch.equal(HardRotation(p90=0.0, p180=0.0)(x), x)
    with pytest.raises(ConfigError, match="p90"):
        HardRotation(p90=1.5)


def _colour_image(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (30, 50, 3), dtype=np.uint8))


@pytest.mark.parametrize("p", [0.0, 0.25, 0.6])
def test_grayscale_rate(p):
    transform = build_train_transform(input_size=16, grayscale_p=p)
    torch.manual_seed(2)
    image, n = _colour_image(), 800
    grey = 0
    for _ in range(n):
        x = transform(image)
        grey += bool(torch.equal(x[0], x[1]) and torch.equal(x[1], x[2]))
    assert abs(grey / n - p) < 0.05, grey / n


def test_train_pipeline_order_and_no_normalisation():
    transform = build_train_transform(224, rotation=True, grayscale_p=0.25)
    kinds = [type(t) for t in transform.transforms]
    assert kinds == [T.Resize, HardRotation, T.RandomGrayscale, T.RandomResizedCrop, T.RandomHorizontalFlip, T.ToTensor]
    resize, crop = transform.transforms[0], transform.transforms[3]
    assert resize.size == 256 and resize.interpolation == InterpolationMode.BICUBIC
    assert crop.size == (224, 224) and crop.interpolation == InterpolationMode.BICUBIC
    plain = build_train_transform(224, rotation=False, grayscale_p=0.0)
    assert HardRotation not in [type(t) for t in plain.transforms]
    assert T.RandomGrayscale not in [type(t) for t in plain.transforms]
    x = transform(_colour_image())
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5  # [0, 1] pixels, not normalised


def test_val_pipeline_resize_then_center_crop():
    image = _colour_image()
    transform = build_val_transform(32)
    assert [type(t) for t in transform.transforms] == [T.Resize, T.CenterCrop, T.ToTensor]
    x = transform(image)
    assert x.shape == (3, 32, 32)
    expected = F.to_tensor(F.center_crop(F.resize(image, 37, InterpolationMode.BICUBIC), 32))
    assert torch.equal(x, expected) and torch.equal(transform(image), x)  # deterministic


def test_default_resize_size_scales_256_over_224():
    assert default_resize_size(224) == 256
    assert default_resize_size(32) == 37
    assert default_resize_size(384) == 439


def test_crop_flip_transform_upsamples_after_augmenting():
    transform = build_crop_flip_transform(32, 64, padding=4, rotation=True, grayscale_p=0.5)
    kinds = [type(t) for t in transform.transforms]
    assert kinds == [HardRotation, T.RandomGrayscale, T.RandomCrop, T.RandomHorizontalFlip, T.Resize, T.ToTensor]
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    assert transform(image).shape == (3, 64, 64)
    native = build_crop_flip_transform(32, None, padding=0, hflip=False)
    assert torch.equal(native(image), F.to_tensor(image))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"grayscale_p": 1.5}, "grayscale_p"), ({"interpolation": "lanczos9"}, "interpolation"), ({"input_size": 0}, "input_size")],
)
def test_bad_transform_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_train_transform(**{"input_size": 32, **kwargs})

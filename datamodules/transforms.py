"""Augmentation as configuration: the seed-000 (docs/recipes.md section 1) train / val pipelines.

Train, in this order: ``Resize(resize_size, bicubic)`` -> :class:`HardRotation` (0/90/180/270 degrees on
the non-square image, canvas kept) -> ``RandomGrayscale(p)`` -> ``RandomResizedCrop(input_size)`` ->
``RandomHorizontalFlip`` -> ``ToTensor``. Val: ``Resize(resize_size, bicubic)`` -> ``CenterCrop`` ->
``ToTensor``. There is no normalisation: images stay [0, 1] RGB and the model normalises inside.

Small native-resolution data (CIFAR-10, the procedural shapes) use :func:`build_crop_flip_transform`
instead: pad-and-crop + flip at the native size, then an optional bicubic upsample to the model input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from neuroalign.core.errors import ConfigError

__all__ = [
    "HardRotation",
    "default_resize_size",
    "build_train_transform",
    "build_val_transform",
    "build_crop_flip_transform",
    "build_resize_transform",
]

_INTERPOLATIONS = {
    "bicubic": InterpolationMode.BICUBIC,
    "bilinear": InterpolationMode.BILINEAR,
    "nearest": InterpolationMode.NEAREST,
}


class HardRotation(torch.nn.Module):
    """Rotate by 90 degrees with probability ``p90``, then by 180 degrees with probability ``p180``.

    With the defaults each of 0, 90, 180 and 270 degrees has probability 0.25. The rotation keeps the
    canvas (``expand=False``) of a non-square image and fills the uncovered area with ``fill``, as in
    the seed-000 code. Works on PIL images and tensors; random numbers come from ``torch`` so that
    DataLoader workers seeded by Lightning stay reproducible.

    Args:
        p90: probability of the 90 degree rotation.
        p180: probability of the 180 degree rotation.
        fill: value of the pixels uncovered by a rotation of a non-square image.
    """

    def __init__(self, p90: float = 0.5, p180: float = 0.5, fill: float = 0.0) -> None:
        super().__init__()
        for name, value in (("p90", p90), ("p180", p180)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"HardRotation {name}={value} is not a probability in [0, 1]")
        self.p90, self.p180, self.fill = p90, p180, fill

    def sample_angle(self) -> int:
        """Draw the angle (degrees, counter-clockwise) the next call applies."""
        angle = 90 if torch.rand(()).item() < self.p90 else 0
        if torch.rand(()).item() < self.p180:
            angle += 180
        return angle

    def forward(self, img):  # noqa: D102 -- PIL image or tensor in, same type out
        angle = self.sample_angle()
        if angle == 0:
            return img
        return F.rotate(img, angle, expand=False, fill=self.fill)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p90={self.p90}, p180={self.p180}, fill={self.fill})"


def _interpolation(name: str) -> InterpolationMode:
    try:
        return _INTERPOLATIONS[name]
    except KeyError:
        raise ConfigError(
            f"interpolation {name!r} is unknown; choose one of {sorted(_INTERPOLATIONS)} (data.init_args.interpolation)"
        ) from None


def _check_size(input_size: int) -> None:
    if not isinstance(input_size, int) or input_size < 1:
        raise ConfigError(f"input_size={input_size!r} must be a positive int (data.init_args.input_size)")


def _check_p(grayscale_p: float) -> None:
    if not 0.0 <= grayscale_p <= 1.0:
        raise ConfigError(f"grayscale_p={grayscale_p} is not a probability in [0, 1] (data.init_args.grayscale_p)")


def default_resize_size(input_size: int) -> int:
    """Shorter-side resize before cropping: 256 for a 224 input, scaled alike for other sizes (37 for 32)."""
    return round(input_size * 256 / 224)


def _colour_augment(rotation: bool, grayscale_p: float) -> list:
    _check_p(grayscale_p)
    steps: list = [HardRotation()] if rotation else []
    if grayscale_p > 0:
        steps.append(T.RandomGrayscale(p=grayscale_p))
    return steps


def build_train_transform(
    input_size: int = 224,
    resize_size: int | None = None,
    rotation: bool = False,
    grayscale_p: float = 0.0,
    hflip: bool = True,
    interpolation: str = "bicubic",
    scale: Sequence[float] = (0.08, 1.0),
) -> T.Compose:
    """The training pipeline of docs/recipes.md section 1 for PIL images; returns [0, 1] float tensors (no normalisation).

    Args:
        input_size: side of the square crop the model takes.
        resize_size: shorter side after the first resize; ``None`` -> :func:`default_resize_size`.
        rotation: apply :class:`HardRotation` after the resize.
        grayscale_p: probability of ``RandomGrayscale`` (3-channel grey); 0 switches it off.
        hflip: apply ``RandomHorizontalFlip``.
        interpolation: ``bicubic`` (seed 000), ``bilinear`` or ``nearest``.
        scale: ``RandomResizedCrop`` area range.
    """
    _check_size(input_size)
    mode = _interpolation(interpolation)
    steps: list = [T.Resize(resize_size or default_resize_size(input_size), interpolation=mode)]
    steps += _colour_augment(rotation, grayscale_p)
    steps.append(T.RandomResizedCrop(input_size, scale=tuple(scale), interpolation=mode))
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    steps.append(T.ToTensor())
    return T.Compose(steps)


def build_val_transform(
    input_size: int = 224, resize_size: int | None = None, interpolation: str = "bicubic"
) -> T.Compose:
    """The validation pipeline of docs/recipes.md section 1: ``Resize(resize_size, bicubic)`` -> ``CenterCrop`` -> ``ToTensor``."""
    _check_size(input_size)
    mode = _interpolation(interpolation)
    return T.Compose(
        [
            T.Resize(resize_size or default_resize_size(input_size), interpolation=mode),
            T.CenterCrop(input_size),
            T.ToTensor(),
        ]
    )


def build_resize_transform(native_size: int, input_size: int, interpolation: str = "bicubic") -> T.Compose:
    """Validation for square native-resolution data: upsample to ``input_size`` when it differs, ``ToTensor``."""
    _check_size(input_size)
    steps: list = []
    if input_size != native_size:
        steps.append(T.Resize((input_size, input_size), interpolation=_interpolation(interpolation)))
    steps.append(T.ToTensor())
    return T.Compose(steps)


def build_crop_flip_transform(
    native_size: int,
    input_size: int | None = None,
    padding: int = 4,
    rotation: bool = False,
    grayscale_p: float = 0.0,
    hflip: bool = True,
    interpolation: str = "bicubic",
) -> T.Compose:
    """Standard small-image training augmentation (CIFAR-10): pad-and-crop + flip, then upsample.

    Order: :class:`HardRotation` -> ``RandomGrayscale`` -> ``RandomCrop(native_size, padding)`` ->
    ``RandomHorizontalFlip`` -> bicubic ``Resize(input_size)`` if it differs from ``native_size`` ->
    ``ToTensor``.

    Args:
        native_size: side of the (square) stored images, e.g. 32.
        input_size: side the model takes; ``None`` keeps ``native_size``.
        padding: zero padding of the random crop (4 px for CIFAR-10); 0 switches the crop off.
        rotation: apply :class:`HardRotation`.
        grayscale_p: probability of ``RandomGrayscale``.
        hflip: apply ``RandomHorizontalFlip``.
        interpolation: interpolation of the upsample.
    """
    input_size = input_size or native_size
    _check_size(input_size)
    steps: list = _colour_augment(rotation, grayscale_p)
    if padding > 0:
        steps.append(T.RandomCrop(native_size, padding=padding))
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps + build_resize_transform(native_size, input_size, interpolation).transforms)

"""The built-in offline dataset: procedurally drawn shapes, deterministic from a seed, any image size.

Each image shows one shape class (disk, ring, square, hollow square, triangle, plus, star, crescent,
bar, two dots, semicircle, three dots) at a random position, scale and orientation, in a random
colour, on a random background (colour gradient + sinusoidal texture + pixel noise). The foreground
always differs in brightness from the background, so the class survives hard rotation, greyscale and
colour changes. Rendering is vectorised numpy (signed distances, anti-aliased edges); a split is
rendered once into memory when small, memory-mapped from ``data_dir`` when one is given, or drawn per
item otherwise. It is the data of ``configs/quickstart.yaml``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from neuroalign.core.errors import ConfigError

from datamodules.base import VisionDataModule
from datamodules.transforms import build_crop_flip_transform, build_resize_transform

__all__ = ["SHAPE_CLASSES", "ShapesDataset", "ShapesDataModule", "render_shapes", "sample_shape_params"]

log = logging.getLogger(__name__)

SHAPE_CLASSES = (
    "disk", "ring", "square", "hollow_square", "triangle", "plus",
    "star", "crescent", "bar", "two_dots", "semicircle", "three_dots",
)  # fmt: skip

#: render everything up front when a split needs at most this many bytes (else per item / memory map)
_MEMORY_CACHE_BYTES = 256 * 2**20
_SPLITS = {"train": 0, "val": 1}


# ----------------------------------------------------------------------------- shapes (signed distance)
def _box(u, v, half_u, half_v):
    return np.maximum(np.abs(u) - half_u, np.abs(v) - half_v)


def _circle(u, v, cu, cv, radius):
    return np.hypot(u - cu, v - cv) - radius


def _sdf(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (negative inside) of a unit-radius shape in local coordinates."""
    r = np.hypot(u, v)
    if name == "disk":
        return r - 1.0
    if name == "ring":
        return np.abs(r - 0.75) - 0.25
    if name == "square":
        return _box(u, v, 0.75, 0.75)
    if name == "hollow_square":
        return np.maximum(_box(u, v, 0.8, 0.8), -_box(u, v, 0.42, 0.42))
    if name == "triangle":
        sector = 2 * np.pi / 3
        theta = np.mod(np.arctan2(v, u), sector) - sector / 2
        return r * np.cos(theta) - 0.5
    if name == "plus":
        return np.minimum(_box(u, v, 1.0, 0.3), _box(u, v, 0.3, 1.0))
    if name == "star":
        spikes = 0.5 * (1 + np.cos(5 * np.arctan2(v, u)))
        return (r - (0.42 + 0.58 * spikes**2)) * 0.7
    if name == "crescent":
        return np.maximum(r - 1.0, -_circle(u, v, 0.5, 0.0, 0.8))
    if name == "bar":
        return _box(u, v, 1.0, 0.28)
    if name == "two_dots":
        return np.minimum(_circle(u, v, 0.6, 0.0, 0.4), _circle(u, v, -0.6, 0.0, 0.4))
    if name == "semicircle":
        return np.maximum(_circle(u, v, 0.0, -0.4, 1.0), -(v + 0.4))
    if name == "three_dots":
        angles = (0.0, 2 * np.pi / 3, 4 * np.pi / 3)
        return np.minimum.reduce([_circle(u, v, 0.62 * np.cos(a), 0.62 * np.sin(a), 0.36) for a in angles])
    raise ConfigError(f"unknown shape {name!r}; known: {SHAPE_CLASSES}")


# ----------------------------------------------------------------------------- parameters and rendering
def _colours(rng: np.random.Generator, luminance: np.ndarray) -> np.ndarray:
    """Random RGB colours scattered around grey levels ``luminance`` (n,) -> (n, 3) in [0, 1]."""
    chroma = rng.uniform(0.0, 0.7, size=(len(luminance), 1))
    return np.clip(luminance[:, None] + chroma * (rng.random((len(luminance), 3)) - 0.5), 0.0, 1.0)


def sample_shape_params(num: int, num_classes: int, seed: int, split: str) -> dict[str, np.ndarray]:
    """Per-image drawing parameters of one split (balanced labels), deterministic from ``seed``.

    Sizes and positions are fractions of the image side, so every image size shows the same scenes.
    """
    rng = np.random.default_rng([seed, _SPLITS[split], 7919])
    labels = rng.permutation(np.arange(num) % num_classes)
    radius = rng.uniform(0.25, 0.42, num)
    jitter = np.minimum(0.15, 0.48 - radius)  # centre within +-0.15 of the middle, shape inside the frame
    fg_lum = rng.uniform(0.0, 1.0, num)
    # background grey level at least 0.3 away from the foreground's (wrapping inside [0, 1])
    bg_lum = np.mod(fg_lum + rng.uniform(0.3, 0.7, num), 1.0)
    return {
        "labels": labels,
        "radius": radius,
        "cx": 0.5 + rng.uniform(-jitter, jitter),
        "cy": 0.5 + rng.uniform(-jitter, jitter),
        "angle": rng.uniform(0, 2 * np.pi, num),
        "fg": _colours(rng, fg_lum),
        "bg0": _colours(rng, np.clip(bg_lum + rng.uniform(-0.12, 0.12, num), 0, 1)),
        "bg1": _colours(rng, np.clip(bg_lum + rng.uniform(-0.12, 0.12, num), 0, 1)),
        "grad_angle": rng.uniform(0, 2 * np.pi, num),
        "tex_amp": rng.uniform(0.0, 0.06, num),
        "tex_freq": rng.uniform(1.5, 6.0, num),
        "tex_angle": rng.uniform(0, 2 * np.pi, num),
        "tex_phase": rng.uniform(0, 2 * np.pi, num),
        "noise": rng.uniform(0.0, 0.03, num),
        "noise_seed": rng.integers(0, 2**31, num),
    }


def render_shapes(params: dict[str, np.ndarray], indices: np.ndarray, size: int) -> np.ndarray:
    """Draw images ``indices`` of a split described by ``params`` -> uint8 ``[n, size, size, 3]``."""
    indices = np.asarray(indices)
    p = {key: np.float32(value[indices])[:, None, None] for key, value in params.items() if value.dtype.kind == "f"}
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = coords[None, None, :], coords[None, :, None]
    # background: gradient between two colours along a random direction + a sinusoidal texture
    t = np.clip(0.5 + (x - 0.5) * np.cos(p["grad_angle"]) + (y - 0.5) * np.sin(p["grad_angle"]), 0, 1)
    image = p["bg0"] * (1 - t[..., None]) + p["bg1"] * t[..., None]  # colours are (n, 1, 1, 3)
    wave = np.sin(2 * np.pi * p["tex_freq"] * (x * np.cos(p["tex_angle"]) + y * np.sin(p["tex_angle"])) + p["tex_phase"])
    image = image + (p["tex_amp"] * wave)[..., None]
    # the shape, in coordinates of its own frame (units of its radius)
    dx, dy = x - p["cx"], y - p["cy"]
    cos, sin = np.cos(p["angle"]), np.sin(p["angle"])
    u, v = (dx * cos + dy * sin) / p["radius"], (-dx * sin + dy * cos) / p["radius"]
    distance = np.empty(u.shape, dtype=np.float32)
    labels = params["labels"][indices]
    for label in np.unique(labels):
        rows = labels == label
        distance[rows] = _sdf(SHAPE_CLASSES[label], u[rows], v[rows])
    alpha = np.clip(0.5 - distance * p["radius"] * size, 0.0, 1.0)[..., None]  # anti-aliased edge (pixels)
    image = image * (1 - alpha) + p["fg"] * alpha
    for row, index in enumerate(indices):
        noise_rng = np.random.default_rng(int(params["noise_seed"][index]))
        image[row] += params["noise"][index] * noise_rng.standard_normal((size, size, 3), dtype=np.float32)
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


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
    ) -> None:
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
        return (self.transform(image) if self.transform else image), self.targets[index]


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
        **kwargs,
    ) -> None:
        if not 2 <= num_classes <= len(SHAPE_CLASSES):
            raise ConfigError(f"num_classes={num_classes} must be in 2..{len(SHAPE_CLASSES)} (data.init_args.num_classes)")
        if num_train < 1 or num_val < 1:
            raise ConfigError(f"num_train={num_train} and num_val={num_val} must be >= 1 (data.init_args)")
        super().__init__(data_dir, **kwargs)
        self.num_train, self.num_val, self.image_size = num_train, num_val, image_size
        self._num_classes, self.padding = num_classes, padding

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
                num, self.resolved_image_size, self._num_classes, self.seed, name, transform, self.data_dir
            )

        val = split("val", self.num_val, val_transform)
        return (split("train", self.num_train, train_transform) if stage in (None, "fit") else None), val

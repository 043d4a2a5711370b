"""Procedural shapes: the ONE renderer of neuroalign's drawn images (a plain component, no Lightning).

Each image shows one shape class (disk, ring, square, hollow square, triangle, plus, star, crescent,
bar, two dots, semicircle, three dots) at a random position, scale and orientation, in a random
colour, on a random background (colour gradient + sinusoidal texture + pixel noise). The foreground
always differs in brightness from the background, so the class survives hard rotation, greyscale and
colour changes. Rendering is vectorised numpy (signed distances, anti-aliased edges).

:func:`sample_shape_params` draws the parameters of a set of images, :func:`render_shapes` draws them.
Users: the shapes DataModule (:mod:`datamodules.procedural`) and the synthetic Brain-Score benchmark's
stimuli (:mod:`callbacks.brainscore.benchmarks.synthetic`).
"""

from __future__ import annotations

import numpy as np

from neuroalign.core.errors import ConfigError

__all__ = ["SHAPE_CLASSES", "SPLITS", "sample_shape_params", "render_shapes"]

SHAPE_CLASSES = (
    "disk", "ring", "square", "hollow_square", "triangle", "plus",
    "star", "crescent", "bar", "two_dots", "semicircle", "three_dots",
)  # fmt: skip

#: split name -> the stream of random numbers its parameters are drawn from
SPLITS: dict[str, int] = {"train": 0, "val": 1}


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


def sample_shape_params(
    num: int, num_classes: int, seed: int, split: str | int, labels: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-image drawing parameters of one split (balanced labels), deterministic from ``seed``.

    Sizes and positions are fractions of the image side, so every image size shows the same scenes.

    Args:
        num: number of images.
        num_classes: shape classes used (the first of :data:`SHAPE_CLASSES`).
        seed: seed of the whole image collection.
        split: a name of :data:`SPLITS` or the number of a stream of its own (sets of one seed differ by it).
        labels: the class index of every image (default: balanced, in random order); the other
            parameters are drawn the same either way.
    """
    stream = SPLITS[split] if isinstance(split, str) else int(split)
    rng = np.random.default_rng([seed, stream, 7919])
    balanced = rng.permutation(np.arange(num) % num_classes)
    labels = balanced if labels is None else np.asarray(labels)
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

"""Image files: list them, decode them as RGB and turn them into [0, 1] tensors, with one-line errors.

Every room reads image files through this module: the DataModules' image folders, stimulus sets of
Brain-Score benchmarks, the attack figure and the evolution analyses. What each caller then does with
the geometry (resize and crop, place on the model's screen) is its own business.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from neuroalign.core.errors import ConfigError, MissingFileError

__all__ = ["IMG_EXTENSIONS", "CorruptImageError", "is_image_file", "list_images", "read_rgb", "to_unit_tensor", "load_image_tensor"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")


class CorruptImageError(ConfigError):
    """An image file cannot be decoded; the message names the file and what to do about it."""


def is_image_file(name: str | Path) -> bool:
    """Whether ``name`` has an image extension (case-insensitive) and is not a hidden file."""
    name = Path(name).name
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def list_images(folder: str | Path, config_key: str = "images") -> list[Path]:
    """Sorted image files under ``folder`` (recursive, so flat and ``<class>/<image>`` trees both work).

    Raises:
        MissingFileError: ``folder`` is not a directory.
        ConfigError: it holds no images.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise MissingFileError("image folder", root, config_key)
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p))
    if not files:
        raise ConfigError(f"image folder {root} holds no images ({', '.join(IMG_EXTENSIONS)}); set `{config_key}` to a folder with images")
    return files


def read_rgb(path: str | Path, config_key: str = "images", hint: str = "") -> Image.Image:
    """Decode ``path`` fully and return a 3-channel RGB PIL image.

    Greyscale, CMYK, palette and RGBA files are converted; palette images with transparency go
    through RGBA first, as PIL recommends, and alpha is dropped.

    Raises:
        MissingFileError: ``path`` does not exist (names ``config_key``).
        CorruptImageError: the file is truncated, not an image or otherwise unreadable; the message
            names the file and ends with ``hint`` (default: fix it or leave it out of ``config_key``).
    """
    if not Path(path).is_file():
        raise MissingFileError("image", path, config_key)
    try:
        with Image.open(path) as img:
            img.load()  # decode now: truncated files fail here, not later in a transform
            if img.mode == "P" and "transparency" in img.info:
                img = img.convert("RGBA")
            return img.convert("RGB") if img.mode != "RGB" else img.copy()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        why = " ".join(str(err).split())[:160]
        raise CorruptImageError(f"image {path} cannot be decoded ({type(err).__name__}: {why}); {hint or f'fix it or leave it out of `{config_key}`'}") from None


def to_unit_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a float32 ``(3, H, W)`` tensor in [0, 1]."""
    w, h = image.size
    arr = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return arr.view(h, w, 3).permute(2, 0, 1).float().div_(255)


def load_image_tensor(path: str | Path, config_key: str = "images", hint: str = "") -> torch.Tensor:
    """``path`` as a float32 ``(3, H, W)`` RGB tensor in [0, 1] (errors as in :func:`read_rgb`)."""
    return to_unit_tensor(read_rgb(path, config_key, hint))

"""Stimuli on the model's screen, in memory, exactly as brainscore-vision shows them to a model.

brainscore-vision 2.4.2 shows a stimulus in two steps, and every scoring path of neuroalign (local
benchmarks, the fast engine on brainscore-vision benchmarks, and the ``PytorchWrapper`` preprocessing of
the brainscore-vision engine) uses the same two functions, so their features agree to the last bit:

1. :func:`place_on_screen` -- brainscore-vision's ``place_on_screen`` / ``ImageConverter`` for one image:
   with ``ratio = model degrees / stimulus degrees``, a stimulus spanning fewer degrees than the model
   (``ratio > 1``) is pasted, at its own pixel size, in the middle of a PIL ``'gray'`` (128, 128, 128)
   canvas ``round(ratio * size)`` pixels wide; one spanning more (``ratio < 1``) is centre-cropped to
   ``round(ratio * size)``. brainscore-vision writes the result to a file; here it stays in memory (the
   same pixels for PNG stimuli; brainscore-vision's re-encoding of a JPEG stimulus is the only difference).
2. :func:`to_model_input` -- the wrapper's preprocessing: the RGB image as an 8-bit tensor, resized to
   the model's input size with antialiasing, then divided by 255 (no ImageNet normalisation: neuroalign
   models normalise inside).

A stimulus file that cannot be read fails in one line naming the file (:func:`neuroalign.core.images.read_rgb`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neuroalign.core.images import read_rgb

__all__ = ["GREY", "place_on_screen", "to_model_pixels", "to_model_input", "load_stimulus"]

#: the canvas colour brainscore-vision uses (PIL's ``'gray'``)
GREY: tuple[int, int, int] = (128, 128, 128)


def place_on_screen(image: Image.Image, stimulus_degrees: float, model_degrees: float) -> Image.Image:
    """``image`` (spanning ``stimulus_degrees``) as it appears on a screen spanning ``model_degrees``."""
    if float(stimulus_degrees) == float(model_degrees):
        return image
    ratio = float(model_degrees) / float(stimulus_degrees)
    size = np.array(image.size)
    target = (ratio * size).round().astype(int)
    if ratio >= 1:  # the stimulus covers part of the screen: grey around it
        canvas = Image.new("RGB", tuple(int(v) for v in target), GREY)
        top_left = ((target - size) / 2).round().astype(int)
        canvas.paste(image, tuple(int(v) for v in top_left))
        return canvas
    left, upper = ((size - target) / 2).round().astype(int)
    right, lower = np.array([left, upper]) + target
    return image.crop((int(left), int(upper), int(right), int(lower)))


def to_model_pixels(image: Image.Image, hw: tuple[int, int]) -> torch.Tensor:
    """A ``(3, H, W)`` uint8 tensor of an RGB image resized (as 8 bits, antialiased) to ``hw``."""
    from torchvision.transforms.functional import pil_to_tensor, resize

    return resize(pil_to_tensor(image.convert("RGB")), list(hw), antialias=True)


def to_model_input(image: Image.Image, hw: tuple[int, int]) -> torch.Tensor:
    """:func:`to_model_pixels` as a ``(3, H, W)`` float32 [0, 1] tensor (divided by 255)."""
    return to_model_pixels(image, hw).float().div_(255.0)


def load_stimulus(
    path: str | Path,
    hw: tuple[int, int],
    stimulus_degrees: float = 8.0,
    model_degrees: float = 8.0,
    config_key: str = "stimulus images",
    hint: str = "",
) -> torch.Tensor:
    """Read one stimulus file, place it on the model's screen and return the model's ``(3, H, W)`` uint8 pixels.

    Args:
        path: the image file.
        hw: the model's input size.
        stimulus_degrees: the field of view the stimulus spans.
        model_degrees: the model's field of view.
        config_key: what the file belongs to, named when it cannot be read.
        hint: how to fix an unreadable file (default: leave it out of ``config_key``).
    """
    image = read_rgb(path, config_key, hint)
    return to_model_pixels(place_on_screen(image, stimulus_degrees, model_degrees), hw)

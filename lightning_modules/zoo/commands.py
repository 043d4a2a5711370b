"""The zoo's ``neuroalign`` command: ``neuroalign list-layers``."""

from __future__ import annotations

import fnmatch
from typing import Any

import torch

from lightning_modules.zoo.wrapper import ZooModel
from neuroalign.core.layers import LayerCapture, list_layers
from neuroalign.core.modules import input_hw

__all__ = ["list_layers_command"]


def list_layers_command(model: str, pattern: str = "*", shapes: bool = False, image_size: int | None = None, model_kwargs: dict[str, Any] | None = None) -> None:
    """Print the layer names of a zoo model (random weights), optionally with output shapes.

    Args:
        model: zoo model name.
        pattern: glob pattern the names must match.
        shapes: run one forward pass on a blank image and print each layer's output shape.
        image_size: side of that image (default: the model's input size).
        model_kwargs: extra network constructor arguments.
    """
    net = ZooModel(model, model_kwargs=model_kwargs).eval()
    names = [n for n in list_layers(net) if fnmatch.fnmatch(n, pattern)]
    if not shapes:
        print("\n".join(names))
        return
    height, width = (image_size, image_size) if image_size else input_hw(net)
    with torch.no_grad(), LayerCapture(net, names) as cap:
        outputs = cap.run(torch.zeros(1, 3, height, width))
    for n in names:
        print(f"{n:60s} {tuple(outputs[n].shape)}")

"""Facts about a network that several rooms need: where its tensors live and what input size it expects."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

__all__ = ["reference_tensor", "module_device", "input_hw"]


def reference_tensor(module: nn.Module) -> torch.Tensor | None:
    """The first floating parameter or buffer of ``module`` (it gives device and dtype), ``None`` if there is none."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if tensor.is_floating_point():
            return tensor
    return None


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer; CPU for a module without tensors."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


def input_hw(model: Any) -> tuple[int, int] | None:
    """``(H, W)`` of the images ``model`` expects, or ``None`` when it does not say.

    Reads ``input_size`` (an int side or a ``(C, H, W)`` / ``(H, W)`` sequence) on ``model``, then on its
    ``model`` attribute (a LightningModule wrapping a zoo model).
    """
    for owner in (model, getattr(model, "model", None)):
        size = getattr(owner, "input_size", None)
        if size is None:
            continue
        if isinstance(size, int):
            return size, size
        if len(size) >= 2:
            return int(size[-2]), int(size[-1])
    return None

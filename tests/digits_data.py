"""sklearn's handwritten digits (8x8, shipped with sklearn) as [0,1] image tensors, and the zoo's MLP for them."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn

from datamodules.class_patterns import add_class_pattern, class_patterns
from lightning_modules.zoo.mlp import MLP


def digits(channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as (N, channels, 8, 8) float images in [0,1] and int64 labels."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return x.repeat(1, channels, 1, 1), torch.tensor(data.target, dtype=torch.int64)


def with_class_patterns(x: torch.Tensor, y: torch.Tensor, beta: float, seed: int = 7) -> torch.Tensor:
    """Add a class-dependent pattern of L-infinity norm ``beta`` to every image, staying in [0,1].

    ``x' = (1 - 2 beta) x + beta + beta v_y`` with ``v_y`` a fixed random +-1 image per class (drawn with
    ``seed``): an easy, discriminative but non-robust feature when ``beta`` is below the training eps
    (the injected features of Ortiz-Jimenez et al. 2023; :mod:`datamodules.class_patterns`).
    """
    return add_class_pattern(x, y, beta, class_patterns(int(y.max()) + 1, tuple(x.shape[1:]), seed))


def mlp(width: int = 256, channels: int = 1, seed: int = 0) -> nn.Module:
    """The zoo's two-hidden-layer ReLU :class:`~lightning_modules.zoo.mlp.MLP` on 8x8 images, 10 classes, seeded."""
    torch.manual_seed(seed)
    return MLP(img_size=8, in_chans=channels, num_classes=10, width=width, depth=2)

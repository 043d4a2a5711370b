"""sklearn's handwritten digits (8x8, shipped with sklearn) as [0,1] image tensors, and a tiny MLP for them."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn


def digits(channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as (N, channels, 8, 8) float images in [0,1] and int64 labels."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return x.repeat(1, channels, 1, 1), torch.tensor(data.target, dtype=torch.int64)


def with_class_patterns(x: torch.Tensor, y: torch.Tensor, beta: float, seed: int = 7) -> torch.Tensor:
    """Add a class-dependent pattern of L-infinity norm ``beta`` to every image, staying in [0,1].

    ``x' = (1 - 2 beta) x + beta + beta v_y`` with ``v_y`` a fixed random +-1 image per class (drawn with
    ``seed``): an easy, discriminative but non-robust feature when ``beta`` is below the training eps
    (the injected features of Ortiz-Jimenez et al. 2023).
    """
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.randint(0, 2, (int(y.max()) + 1, *x.shape[1:]), generator=generator).float() * 2 - 1
    return (1 - 2 * beta) * x + beta + beta * patterns[y]


def mlp(width: int = 256, channels: int = 1, seed: int = 0) -> nn.Module:
    """A two-hidden-layer ReLU MLP on 8x8 images, 10 classes, seeded."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(channels * 64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)
    )
    net.num_classes = 10
    return net

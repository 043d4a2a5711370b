"""Raw-pixel parametrisation: the code is the image (weight-free, any size, works offline)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from neuroalign.core.errors import ConfigError
from lightning_modules.evolution.generators.base import Generator

__all__ = ["PixelGenerator"]


class PixelGenerator(Generator):
    """Codes of length ``3 * image_size**2`` reshaped to ``(3, H, W)`` and mapped into [0, 1].

    Args:
        image_size: height and width of the images.
        activation: ``"sigmoid"`` (codes are logits; the zero code is mid-grey) or ``"clamp"``
            (codes are pixel values clamped to [0, 1]; the start code is 0.5 everywhere).
    """

    def __init__(self, image_size: int = 32, activation: Literal["sigmoid", "clamp"] = "sigmoid") -> None:
        super().__init__()
        if image_size < 1:
            raise ConfigError(f"image_size must be >= 1, got {image_size}")
        if activation not in ("sigmoid", "clamp"):
            raise ConfigError(f"activation must be 'sigmoid' or 'clamp', got {activation!r}")
        self.image_size = int(image_size)
        self.code_dim = 3 * self.image_size**2
        self.activation = activation

    def forward(self, codes: Tensor) -> Tensor:
        """``(N, 3 H W)`` codes -> ``(N, 3, H, W)`` images in [0, 1]."""
        x = self._as_input(codes).reshape(-1, 3, self.image_size, self.image_size)
        return torch.sigmoid(x) if self.activation == "sigmoid" else x.clamp(0.0, 1.0)

    def init_codes(self, n: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """Mid-grey start: zeros (sigmoid) or 0.5 (clamp)."""
        codes = super().init_codes(n, generator)
        return codes if self.activation == "sigmoid" else codes + 0.5

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation!r}"

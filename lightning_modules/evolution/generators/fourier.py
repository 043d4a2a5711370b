"""Fourier parametrisation with colour decorrelation (Lucid-style), weight-free and offline.

The code holds the real and imaginary parts of a 2-D real FFT per decorrelated colour channel,
layout ``(3, H, W // 2 + 1, 2)``, so ``code_dim = 2 * 3 * H * (W // 2 + 1)``. Each coefficient is
scaled by ``1 / max(f, 1 / size) ** decay`` (f = spatial frequency in cycles per pixel), which
gives natural-image-like 1/f spectra and makes the search landscape better conditioned. The
inverse FFT is normalised so that a standard-normal code gives pixels of unit standard deviation;
the three channels are then mixed by the square root of ImageNet's colour correlation and
squashed by a sigmoid into [0, 1] RGB.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroalign.core.errors import ConfigError
from lightning_modules.evolution.generators.base import Generator

__all__ = ["FourierGenerator", "COLOR_CORRELATION_SQRT"]

#: square root of the colour correlation of ImageNet pixels (the values Lucid published)
COLOR_CORRELATION_SQRT = ((0.26, 0.09, 0.02), (0.27, 0.00, -0.05), (0.27, -0.09, 0.03))


class FourierGenerator(Generator):
    """Decorrelated Fourier image parametrisation: codes -> ``(N, 3, S, S)`` RGB in [0, 1].

    Args:
        image_size: height and width S of the images (code size ``6 * S * (S // 2 + 1)``).
        decay: exponent of the 1/frequency scaling of the coefficients (0 = white noise).
        decorrelate: mix channels with :data:`COLOR_CORRELATION_SQRT` (else channels are RGB).
    """

    def __init__(self, image_size: int = 64, decay: float = 1.0, decorrelate: bool = True) -> None:
        super().__init__()
        if image_size < 2:
            raise ConfigError(f"image_size must be >= 2, got {image_size}")
        if decay < 0:
            raise ConfigError(f"decay must be >= 0, got {decay}")
        self.image_size = int(image_size)
        self.decay = float(decay)
        self.decorrelate = bool(decorrelate)
        size = self.image_size
        self._spectrum = (3, size, size // 2 + 1)
        self.code_dim = 2 * 3 * size * (size // 2 + 1)
        fy = torch.fft.fftfreq(size).reshape(-1, 1)
        fx = torch.fft.rfftfreq(size).reshape(1, -1)
        scale = 1.0 / torch.sqrt(fy**2 + fx**2).clamp_min(1.0 / size) ** self.decay
        self.register_buffer("scale", scale, persistent=False)
        self.scale = self.scale / self._pixel_std()
        color = torch.tensor(COLOR_CORRELATION_SQRT)
        color = color / color.norm(dim=0).max() if self.decorrelate else torch.eye(3)
        self.register_buffer("color", color, persistent=False)

    def _pixel_std(self) -> Tensor:
        """Exact pixel standard deviation of the scaled inverse FFT for a standard-normal code."""
        with torch.enable_grad():
            code = torch.zeros(1, self.code_dim, requires_grad=True)
            self._spatial(code)[0, 0, 0, 0].backward()
        return code.grad.norm()

    def _spatial(self, codes: Tensor) -> Tensor:
        """Scaled inverse FFT of the codes: ``(N, 3, S, S)`` pre-activation channels."""
        spectrum = torch.view_as_complex(codes.reshape(-1, *self._spectrum, 2).contiguous())
        return torch.fft.irfft2(spectrum * self.scale, s=(self.image_size, self.image_size), norm="ortho")

    def forward(self, codes: Tensor) -> Tensor:
        """``(N, code_dim)`` codes -> ``(N, 3, S, S)`` RGB images in [0, 1]."""
        channels = self._spatial(self._as_input(codes))
        return torch.sigmoid(torch.einsum("ij,njhw->nihw", self.color, channels))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, decay={self.decay}, decorrelate={self.decorrelate}"

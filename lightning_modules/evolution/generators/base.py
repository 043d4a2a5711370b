"""Generator base class: a map from latent codes to [0, 1] RGB images."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuroalign.core.modules import reference_tensor

__all__ = ["Generator"]


class Generator(nn.Module):
    """Base class of every image generator (parametrisation) used by prototype evolution.

    A generator maps codes ``(N, code_dim)`` to images ``(N, 3, image_size, image_size)`` with
    values in ``[0, 1]``, RGB, so that any model of the zoo (which normalises inside) can score them.
    Subclasses set :attr:`code_dim` and :attr:`image_size` in ``__init__`` and implement
    :meth:`forward`; they may override :meth:`init_codes` (the default start is the zero code).
    The evolution starts from :meth:`init_codes`: :func:`~lightning_modules.evolution.loop.evolve` and
    the ``EvolutionModule`` give ``init_codes(1)[0]`` to the optimiser as its ``init_code``.

    Attributes:
        code_dim: length of one code.
        image_size: height and width of the generated images in pixels.
    """

    code_dim: int
    image_size: int

    def forward(self, codes: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Generate images.

        Args:
            codes: ``(N, code_dim)`` latent codes (any float dtype, any device; moved to the
                generator's device and dtype).

        Returns:
            ``(N, 3, image_size, image_size)`` RGB images in ``[0, 1]``.
        """
        raise NotImplementedError

    def init_codes(self, n: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """Return ``n`` starting codes ``(n, code_dim)`` on the generator's device (zeros here).

        Args:
            n: number of codes.
            generator: torch RNG for subclasses whose start is random (unused by the default).
        """
        ref = reference_tensor(self)
        return torch.zeros(n, self.code_dim, device=ref.device if ref is not None else None)

    def _as_input(self, codes: Tensor) -> Tensor:
        """Check the shape of ``codes`` and move them to the generator's device and dtype (a generator
        without tensors keeps the codes' device, as float32)."""
        if codes.ndim != 2 or codes.shape[1] != self.code_dim:
            raise ValueError(f"{type(self).__name__} expects codes of shape (N, {self.code_dim}), got {tuple(codes.shape)}")
        ref = reference_tensor(self)
        if ref is None:
            return codes.float()
        return codes.to(device=ref.device, dtype=ref.dtype)

    def extra_repr(self) -> str:
        return f"code_dim={self.code_dim}, image_size={self.image_size}"

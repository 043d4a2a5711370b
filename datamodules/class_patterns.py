"""Class patterns: an injected feature that is discriminative but not robust (a plain component, no Lightning).

Ortiz-Jimenez et al. 2023, "Catastrophic overfitting can be induced with discriminative non-robust
features" (ICLR 2023), add to every image a fixed pattern ``v_y`` of its class ``y``. When its L-infinity
size ``beta`` is just under the training eps, single-step (FGSM) adversarial training learns the pattern
and overfits catastrophically, while multi-step attacks erase it. Here the images are first shrunk
towards grey so that the result stays in [0, 1] with no clipping, so the pattern has size ``beta``
exactly everywhere::

    x' = (1 - 2 beta) x + beta + beta v_y,     v_y in {-1, +1}^(C x H x W)

Users: :class:`~datamodules.procedural.ShapesDataModule` (``class_pattern``), the catastrophic-overfitting
demo ``configs/robust/quickstart_co_demo.yaml`` and the digits collapse test.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroalign.core.errors import ConfigError

__all__ = ["DEFAULT_CLASS_PATTERN_SEED", "check_class_pattern", "class_patterns", "add_class_pattern"]

#: default seed of the patterns (independent of the data seed, so they stay put when it changes)
DEFAULT_CLASS_PATTERN_SEED = 7


def check_class_pattern(beta: float, key: str = "data.init_args.class_pattern") -> None:
    """Raise ConfigError naming ``key`` unless ``0 <= beta < 0.5`` (at 0.5 the image would vanish)."""
    if not 0.0 <= beta < 0.5:
        raise ConfigError(f"class_pattern={beta} must be in [0, 0.5) ({key})")


def class_patterns(num_classes: int, shape: tuple[int, ...], seed: int = DEFAULT_CLASS_PATTERN_SEED) -> Tensor:
    """One fixed random +-1 image of ``shape`` per class: float32 ``(num_classes, *shape)``, from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (num_classes, *shape), generator=generator).float() * 2 - 1


def add_class_pattern(x: Tensor, labels: Tensor | int, beta: float, patterns: Tensor) -> Tensor:
    """``(1 - 2 beta) x + beta + beta patterns[labels]`` for [0,1] images ``x`` (one image or a batch).

    Args:
        x: ``(C, H, W)`` with an int label, or ``(N, C, H, W)`` with ``(N,)`` labels; values in [0, 1].
        labels: the class of each image.
        beta: L-infinity size of the pattern, in [0, 0.5).
        patterns: :func:`class_patterns` of the images' shape.
    """
    check_class_pattern(beta, "beta")
    return (1 - 2 * beta) * x + beta + beta * patterns[labels]

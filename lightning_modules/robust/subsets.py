"""A fixed, seeded subset of a DataLoader's dataset, drawn without touching the global random state.

The catastrophic-overfitting monitor measures on such a subset of the training data and AutoAttack
runs on one of the test data: the same images every time for a given seed, and the training run's
own shuffling and augmentation stay what they would have been without it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from neuroalign.core.errors import ConfigError

__all__ = ["seeded_subset"]


def seeded_subset(loader: DataLoader | Any, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` (image, label) pairs of ``loader``'s data, drawn with ``seed``; fewer if the data is smaller.

    A map-style dataset gives ``n`` indices of a seeded permutation, collated with the loader's
    ``collate_fn`` (its transforms run once, under the seed). An iterable dataset gives its first
    batches under the seed. The global torch random state is restored afterwards.

    Args:
        loader: a DataLoader whose batches are ``(images, labels, ...)``.
        n: number of samples (>= 1).
        seed: seed of the choice (and of random transforms).

    Returns:
        ``(images, labels)`` on the CPU, detached.

    Raises:
        ConfigError: ``n < 1`` or a loader without data.
    """
    if n < 1:
        raise ConfigError(f"a seeded subset needs n >= 1, got {n!r}")
    dataset = getattr(loader, "dataset", None)
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
        torch.manual_seed(seed)
        if dataset is not None and hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__"):
            generator = torch.Generator().manual_seed(seed)
            indices = torch.randperm(len(dataset), generator=generator)[:n].tolist()
            collate = getattr(loader, "collate_fn", None) or torch.utils.data.default_collate
            batch = collate([dataset[i] for i in indices]) if indices else None
            images, labels = (batch[0], batch[1]) if batch is not None else (None, None)
        else:
            xs, ys, seen = [], [], 0
            for batch in loader:
                xs.append(batch[0][: n - seen])
                ys.append(batch[1][: n - seen])
                seen += xs[-1].shape[0]
                if seen >= n:
                    break
            images, labels = (torch.cat(xs), torch.cat(ys)) if xs else (None, None)
    if images is None or images.shape[0] == 0:
        raise ConfigError("cannot draw a subset from an empty data loader")
    return images.detach().clone(), labels.detach().clone()

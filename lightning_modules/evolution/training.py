"""How an evolution fits Lightning's training loop: the generations are the data, the tell is the optimiser step.

* :class:`Generations` -- the training data of an evolution: item ``g`` is generation number ``g``, so one
  epoch of ``n_generations`` items is the whole run and ``trainer.global_step`` counts generations
  (``max_steps``, ``ModelCheckpoint(every_n_train_steps=...)`` work in generations). The evolution loop
  counts the generations it has done itself and that count is what a resumed run continues from: the
  loader has no state to restore and starts its items again, and the generations past ``n_generations``
  are skipped by the module.
* :class:`TellOptimizer` -- the ``torch.optim.Optimizer`` Lightning steps once per training step: its
  :meth:`~TellOptimizer.step` runs the closure (the ``training_step`` that asked and evaluated the
  population) and then tells the evolution optimiser the scores. Its one parameter is the module's
  one-element anchor that DDP needs to wrap a module whose networks are all frozen; it is never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["Generations", "GenerationLoader", "EveryRankAllGenerations", "TellOptimizer"]


class Generations(Dataset):
    """The generation numbers ``0 .. n - 1``: one item per training step, each the generation it runs."""

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __getitem__(self, index: int) -> int:
        return index

    def __len__(self) -> int:
        return self.n


class GenerationLoader(DataLoader):
    """The loader of :class:`Generations`. It has no state of its own to restore -- the evolution loop
    counts generations and the module skips those already done -- so it tells Lightning it resumes as it is."""

    def state_dict(self) -> dict[str, Any]:
        """Nothing to save."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore."""


class EveryRankAllGenerations(DistributedSampler):
    """Every generation on every rank, in order: each rank evolves its own shard of units, so the
    generations must not be split. Being a ``DistributedSampler``, Lightning leaves it in place under DDP."""

    def __init__(self, n: int) -> None:
        super().__init__(Generations(n), num_replicas=1, rank=0, shuffle=False)


class TellOptimizer(torch.optim.Optimizer):
    """The Lightning optimiser of an evolution: :meth:`step` is the evolution optimiser's ``tell``.

    Args:
        anchor: the module's never-changed parameter (DDP and ``torch.optim`` need one).
        tell: called after the closure, once per step: tells the evolution optimiser the scores of the
            population the closure's ``training_step`` evaluated.
    """

    def __init__(self, anchor: nn.Parameter, tell: Callable[[], None]) -> None:
        super().__init__([anchor], {})
        self._tell = tell

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Run ``closure`` (training step and backward of the zero loss), then tell; return the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._tell()
        return loss

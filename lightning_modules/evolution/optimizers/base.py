"""Ask/tell interface shared by every evolution optimiser (maximises scores).

Shapes. With ``num_units=None`` an optimiser evolves one code:
``ask() -> (n, dim)`` and ``tell(codes (n, dim), scores (n,))``.
With ``num_units=K`` it keeps K independent states (one per unit) and evolves them at once:
``ask() -> (K, n, dim)`` and ``tell(codes (K, n, dim), scores (K, n))``; ``sigma`` and
``best_score`` are then ``(K,)`` and ``mean`` / ``best_code`` ``(K, dim)``.
``n`` is ``population_size`` except for generation 0 of optimisers that start from a single
initial code (``CholeskyCMAES``: n = 1 at generation 0).

Subclasses implement the batched hooks ``_ask``, ``_tell``, ``_sigma``, ``_mean`` and their part of
the state; this class handles shapes, best-so-far tracking, the generation counter and devices.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
from torch import Tensor

from neuroalign.core.errors import ConfigError

__all__ = ["EvolutionOptimizer", "default_population_size", "draw_seed"]


def default_population_size(dim: int) -> int:
    """``4 + floor(3 log2 dim)``: the Ponce-lab population size (40 at dim 4096)."""
    return 4 + math.floor(3 * math.log2(dim))


def draw_seed(seed: int | None) -> int:
    """Return ``seed`` or, when ``None``, a seed drawn from torch's global RNG (so that
    ``lightning.seed_everything`` makes runs reproducible)."""
    if seed is not None:
        return int(seed)
    return int(torch.randint(0, 2**62, (1,)).item())


class EvolutionOptimizer(abc.ABC):
    """Base class of the evolution optimisers: ``ask`` codes, ``tell`` their scores (higher is better).

    Args:
        dim: code length.
        population_size: codes per generation (per unit).
        num_units: number of independent optimiser states evolved together, or ``None`` for one
            state without the leading unit dimension.
        device: device of the returned codes and of the state (default CPU).
    """

    def __init__(self, dim: int, population_size: int, num_units: int | None = None, device: str | torch.device | None = None) -> None:
        if dim < 1:
            raise ConfigError(f"optimiser dim must be >= 1, got {dim}")
        if population_size < 2:
            raise ConfigError(f"population_size must be >= 2, got {population_size}")
        if num_units is not None and num_units < 1:
            raise ConfigError(f"num_units must be >= 1 or None, got {num_units}")
        self.dim = int(dim)
        self.population_size = int(population_size)
        self.num_units = num_units
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.generation = 0
        k = self._k
        self._best_score = torch.full((k,), float("-inf"), device=self.device)
        self._best_code = torch.zeros(k, self.dim, device=self.device)

    # ------------------------------------------------------------------ public interface
    @property
    def _k(self) -> int:
        return 1 if self.num_units is None else self.num_units

    def ask(self) -> Tensor:
        """Return the codes to evaluate this generation: ``(n, dim)`` or ``(K, n, dim)``, float32."""
        return self._unbatch(self._ask())

    def tell(self, codes: Tensor, scores: Tensor, active: Tensor | None = None) -> None:
        """Update the search distribution with the scores of ``codes`` (higher is better).

        NaN scores rank last. ``codes`` are normally the tensor returned by the last :meth:`ask`.

        Args:
            codes: ``(n, dim)`` or ``(K, n, dim)``.
            scores: ``(n,)`` or ``(K, n)``.
            active: ``(K,)`` bool mask of the units whose state is updated; the state and best-so-far of
                the others stay exactly as they are (a retired unit of ``EvolutionModule``). Default: all.
        """
        codes = torch.as_tensor(codes).to(device=self.device, dtype=torch.float32)
        scores = torch.as_tensor(scores).to(device=self.device, dtype=torch.float32)
        if self.num_units is None:
            codes, scores = codes.unsqueeze(0), scores.reshape(1, -1)
        if codes.ndim != 3 or codes.shape[0] != self._k or codes.shape[2] != self.dim or scores.shape != codes.shape[:2]:
            raise ValueError(
                f"tell() expects codes {self._shape_doc('n, dim')} and scores {self._shape_doc('n')}; "
                f"got codes {tuple(codes.shape)} and scores {tuple(scores.shape)}"
            )
        if active is None:
            active = torch.ones(self._k, dtype=torch.bool, device=self.device)
        else:
            active = torch.as_tensor(active, dtype=torch.bool).to(self.device).reshape(self._k)
        scores = torch.nan_to_num(scores, nan=float("-inf"))
        top, where = scores.max(dim=1)
        better = (top > self._best_score) & active
        self._best_score = torch.where(better, top, self._best_score)
        chosen = codes[torch.arange(self._k, device=self.device), where]
        self._best_code = torch.where(better[:, None], chosen, self._best_code)
        self._tell(codes, scores, active)
        self.generation += 1

    @property
    def sigma(self) -> Tensor:
        """Current step size: 0-d tensor, or ``(K,)`` with units."""
        return self._unbatch(self._sigma())

    @property
    def mean(self) -> Tensor:
        """Current mean code: ``(dim,)`` or ``(K, dim)``."""
        return self._unbatch(self._mean())

    @property
    def best_code(self) -> Tensor:
        """Best code told so far: ``(dim,)`` or ``(K, dim)`` (zeros before the first tell)."""
        return self._unbatch(self._best_code)

    @property
    def best_score(self) -> Tensor:
        """Best score told so far: 0-d or ``(K,)`` (``-inf`` before the first tell)."""
        return self._unbatch(self._best_score)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run bit for bit, RNG state included (CPU tensors and
        Python scalars only, so it fits a Lightning checkpoint)."""
        state = {
            "class": type(self).__name__,
            "dim": self.dim,
            "population_size": self.population_size,
            "num_units": self.num_units,
            "generation": self.generation,
            "best_score": self._best_score.cpu(),
            "best_code": self._best_code.cpu(),
        }
        state.update(self._state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the optimiser must have the same class, dim, population
        size and number of units."""
        for key, mine in (("class", type(self).__name__), ("dim", self.dim), ("population_size", self.population_size), ("num_units", self.num_units)):
            if state.get(key) != mine:
                raise ConfigError(f"optimiser state has {key}={state.get(key)!r} but this optimiser has {key}={mine!r}")
        self.generation = int(state["generation"])
        self._best_score = state["best_score"].to(self.device)
        self._best_code = state["best_code"].to(self.device)
        self._load_state_dict(state)

    def to(self, device: str | torch.device) -> "EvolutionOptimizer":
        """Move the state to ``device`` (in place) and return ``self``."""
        self.device = torch.device(device)
        self._best_score = self._best_score.to(self.device)
        self._best_code = self._best_code.to(self.device)
        self._to(self.device)
        return self

    # ------------------------------------------------------------------ subclass hooks (batched)
    @abc.abstractmethod
    def _ask(self) -> Tensor:
        """Return ``(K, n, dim)`` float32 codes on :attr:`device`."""

    @abc.abstractmethod
    def _tell(self, codes: Tensor, scores: Tensor, active: Tensor) -> None:
        """Update from ``codes (K, n, dim)`` and finite-or-``-inf`` ``scores (K, n)``; units where the
        ``(K,)`` bool mask ``active`` is False keep their state unchanged."""

    @abc.abstractmethod
    def _sigma(self) -> Tensor:
        """Return the step sizes ``(K,)``."""

    @abc.abstractmethod
    def _mean(self) -> Tensor:
        """Return the mean codes ``(K, dim)``."""

    @abc.abstractmethod
    def _state_dict(self) -> dict[str, Any]:
        """Subclass part of :meth:`state_dict`."""

    @abc.abstractmethod
    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Subclass part of :meth:`load_state_dict`."""

    def _to(self, device: torch.device) -> None:
        """Move subclass tensors to ``device`` (nothing by default)."""

    # ------------------------------------------------------------------ helpers
    def _unbatch(self, tensor: Tensor) -> Tensor:
        return tensor[0] if self.num_units is None else tensor

    def _shape_doc(self, tail: str) -> str:
        return f"({tail})" if self.num_units is None else f"({self._k}, {tail})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, population_size={self.population_size}, num_units={self.num_units}, generation={self.generation})"

"""``cma.CMAEvolutionStrategy`` behind the ask/tell interface (maximising, seeded, writing no files).

By default pycma draws from numpy's *global* RNG (seeded by its ``seed`` option). Here each wrapped
strategy gets its own ``numpy.random.RandomState(seed)`` as pycma's ``randn`` option: the same
stream as ``{"seed": seed}`` gives, but several strategies (one per unit) and the rest of the
program do not disturb one another, and the pickled strategy (RNG included) restores bit for bit.
pycma is not batched: K units are K strategies stepped one after the other.
"""

from __future__ import annotations

import pickle
from typing import Any

import cma
import numpy as np
import torch
from torch import Tensor

from neuroalign.core.errors import ConfigError
from lightning_modules.evolution.optimizers.base import EvolutionOptimizer, default_population_size, draw_seed

__all__ = ["PyCMA"]


class PyCMA(EvolutionOptimizer):
    """pycma CMA-ES (full or diagonal covariance) maximising scores.

    Unlike :class:`CholeskyCMAES` there is no single-code generation 0: every ``ask`` returns
    ``population_size`` codes sampled around the current mean (``init_code`` at the start).

    Args:
        dim: code length.
        population_size: lambda; default ``4 + floor(3 log2 dim)`` like :class:`CholeskyCMAES`.
        init_sigma: pycma's ``sigma0``.
        init_code: start mean ``(dim,)`` (or ``(K, dim)``); default zeros.
        diagonal: use pycma's ``CMA_diagonal`` (separable CMA-ES, O(dim) per sample).
        seed: pycma seed (unit k uses ``seed + k``); ``None`` draws one from torch's global RNG.
        device: device of the returned codes.
        num_units: K independent strategies, or ``None`` for one (no unit dimension).
        options: extra ``cma`` options (e.g. ``{"CMA_active": False}``); ``seed``, ``popsize``,
            ``verbose`` and ``verb_log`` are set by this class.
    """

    def __init__(
        self,
        dim: int,
        population_size: int | None = None,
        init_sigma: float = 2.0,
        init_code: Tensor | None = None,
        diagonal: bool = False,
        seed: int | None = None,
        device: str | torch.device | None = None,
        num_units: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(dim, population_size or default_population_size(dim), num_units, device)
        if init_sigma <= 0:
            raise ConfigError(f"init_sigma must be > 0, got {init_sigma}")
        self.seed = draw_seed(seed) % (2**31 - 1)
        self.diagonal = bool(diagonal)
        start = np.zeros((self._k, self.dim)) if init_code is None else (
            np.broadcast_to(torch.as_tensor(init_code, dtype=torch.float64).reshape(-1, self.dim).numpy(), (self._k, self.dim))
        )
        opts = dict(options or {})
        opts.update(popsize=self.population_size, verbose=-9, verb_log=0, verb_disp=0, CMA_diagonal=self.diagonal)
        self._es: list[cma.CMAEvolutionStrategy] = []
        for k in range(self._k):
            randn = np.random.RandomState(self.seed + k).randn  # pycma's seed= stream, private
            self._es.append(cma.CMAEvolutionStrategy(start[k].copy(), float(init_sigma), {**opts, "seed": float("nan"), "randn": randn}))
        self._asked_np: list[list[np.ndarray]] | None = None
        self._asked: Tensor | None = None

    def _ask(self) -> Tensor:
        self._asked_np = [es.ask() for es in self._es]
        self._asked = torch.from_numpy(np.asarray(self._asked_np, dtype=np.float32)).to(self.device)
        return self._asked

    def _tell(self, codes: Tensor, scores: Tensor, active: Tensor) -> None:
        same = self._asked_np is not None and self._asked is not None and torch.equal(codes, self._asked)
        solutions = self._asked_np if same else list(codes.double().cpu().numpy())
        losses = (-scores.double()).nan_to_num(posinf=np.finfo(np.float64).max).cpu().numpy()
        for k, (es, on) in enumerate(zip(self._es, active.tolist())):
            if on:  # an inactive strategy is not told: its next ask samples the same distribution again
                es.tell(list(solutions[k]), losses[k].tolist())
        self._asked_np = self._asked = None

    def _sigma(self) -> Tensor:
        return torch.tensor([float(es.sigma) for es in self._es], device=self.device)

    def _mean(self) -> Tensor:
        return torch.from_numpy(np.asarray([es.mean for es in self._es], dtype=np.float32)).to(self.device)

    def _state_dict(self) -> dict[str, Any]:
        blob = pickle.dumps((self._es, self._asked_np))
        return {
            "seed": self.seed,
            "diagonal": self.diagonal,
            "pickled": torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone(),
            "asked": None if self._asked is None else self._asked.cpu(),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed, self.diagonal = int(state["seed"]), bool(state["diagonal"])
        self._es, self._asked_np = pickle.loads(state["pickled"].numpy().tobytes())
        self._asked = None if state["asked"] is None else state["asked"].to(self.device)

    def _to(self, device: torch.device) -> None:
        if self._asked is not None:
            self._asked = self._asked.to(device)

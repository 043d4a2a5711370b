"""Cholesky CMA-ES, the Ponce-lab variant (docs/recipes.md section 3), torch-native and batched over units.

The whole CMA-ES update lives in this file. The search distribution of each unit is
``N(mean, sigma^2 A^T A)`` (row-vector convention: a code is ``mean + sigma * z @ A`` with
``z ~ N(0, I)``). Per generation ``g >= 1``:

* the ``mu = floor(lambda / 2)`` best codes are recombined with log weights into the new mean;
* the sigma path ``ps`` and the covariance path ``pc`` accumulate the weighted ``z`` of the parents;
* ``sigma *= exp(cs / damps * (|ps| / chiN - 1))``;
* every ``a_update_freq`` generations ``A`` and ``A^-1`` get the rank-1 update that turns
  ``C = A^T A`` into ``(1 - c1) C + c1 pc^T pc`` (no matrix inverse or decomposition).

Generation 0 is the single initial code (zeros by default): ``ask()`` returns it alone and
``tell()`` makes it the mean. All state is float32 on the optimiser's device; a population is one
batched matrix product ``z @ A`` for all units at once.

Compact state. ``A`` and ``A^-1`` start as the identity and change only by the rank-1 updates, so
:meth:`~CholeskyCMAES.state_dict` stores the operands of each update (four ``(K, N)`` vectors and a
scale) instead of the two ``N x N`` matrices, and ``load_state_dict`` replays them with the same
in-place operations: the matrices come back bit for bit. Only a long run stores the matrices (the
log is dropped past ``N / 8`` updates, a quarter of their size). The draws of a pending ``ask`` are
not stored either: the RNG state before that ``ask`` is, and the draws are made again on load.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from neuroalign.core.errors import ConfigError
from lightning_modules.evolution.optimizers.base import EvolutionOptimizer, default_population_size, draw_seed

__all__ = ["CholeskyCMAES"]


class CholeskyCMAES(EvolutionOptimizer):
    """Torch Cholesky CMA-ES maximising scores (Ponce-lab constants), one state per unit.

    Example::

        es = CholeskyCMAES(4096, seed=0)          # lambda 40, mu 20, sigma0 3
        for _ in range(100):
            codes = es.ask()                      # (1, 4096) at generation 0, then (40, 4096)
            es.tell(codes, score(codes))          # higher is better

    With ``num_units=K`` every tensor gains a leading unit dimension: ``ask() -> (K, n, dim)``,
    ``tell(codes (K, n, dim), scores (K, n))``; the K states evolve independently (each its own
    mean, sigma, paths, A and A^-1) but are sampled and updated in single batched operations.
    Memory: two ``dim x dim`` float32 matrices per unit (128 MB per unit at dim 4096); its
    :meth:`state_dict` holds the few rank-1 updates instead (see the module docstring).

    Args:
        dim: code length N.
        population_size: lambda; default ``4 + floor(3 log2 N)`` (40 at N = 4096).
        init_sigma: initial step size sigma0.
        init_code: initial code ``(dim,)`` (or ``(K, dim)``); default zeros.
        a_update_freq: generations between rank-1 updates of A and A^-1.
        seed: seed of the optimiser's own torch RNG; ``None`` draws one from torch's global RNG.
        device: device of the state and of the returned codes.
        num_units: K independent states evolved at once, or ``None`` for one (no unit dimension).
    """

    def __init__(
        self,
        dim: int,
        population_size: int | None = None,
        init_sigma: float = 3.0,
        init_code: Tensor | None = None,
        a_update_freq: int = 10,
        seed: int | None = None,
        device: str | torch.device | None = None,
        num_units: int | None = None,
    ) -> None:
        super().__init__(dim, population_size or default_population_size(dim), num_units, device)
        if init_sigma <= 0:
            raise ConfigError(f"init_sigma must be > 0, got {init_sigma}")
        if a_update_freq < 1:
            raise ConfigError(f"a_update_freq must be >= 1, got {a_update_freq}")
        n, lam, k = self.dim, self.population_size, self._k
        self.a_update_freq = int(a_update_freq)
        self.init_sigma = float(init_sigma)
        # selection and recombination
        self.mu = lam // 2
        raw = math.log(lam / 2 + 0.5) - torch.log(torch.arange(1, self.mu + 1, dtype=torch.float64))
        weights = raw / raw.sum()
        self.mueff = float(1.0 / (weights**2).sum())
        self.weights = weights.to(torch.float32)
        # adaptation constants (docs/recipes.md section 3)
        self.cc = 4.0 / (n + 4.0)
        self.cs = math.sqrt(self.mueff) / (math.sqrt(self.mueff) + math.sqrt(n))
        self.c1 = 2.0 / (n + math.sqrt(2.0)) ** 2
        self.damps = 1.0 + self.cs + 2.0 * max(0.0, math.sqrt((self.mueff - 1.0) / (n + 1.0)) - 1.0)
        self.chi_n = math.sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n**2))
        # dynamic state
        if init_code is None:
            start = torch.zeros(k, n)
        else:
            start = torch.as_tensor(init_code, dtype=torch.float32).reshape(-1, n).expand(k, n).clone()
        self._init_code = start
        self._xmean = start.clone()
        self._sig = torch.full((k,), self.init_sigma)
        self._ps = torch.zeros(k, n)
        self._pc = torch.zeros(k, n)
        self._a = torch.eye(n).expand(k, n, n).clone()
        self._ainv = self._a.clone()
        self._z: Tensor | None = None  # standard-normal draws of the last ask (K, lambda, N)
        self._asked: Tensor | None = None  # codes of the last ask
        self._ask_rng: Tensor | None = None  # RNG state before the last ask (redraws it on load)
        #: operands of every rank-1 update of A and A^-1 so far (the compact state), None once
        #: they outgrow the matrices themselves
        self._updates: list[tuple[Tensor, Tensor, Tensor, Tensor, Tensor]] | None = []
        self._last_a_update = 0
        self.seed = draw_seed(seed)
        self._rng = torch.Generator(device=self.device)
        self._rng.manual_seed(self.seed)
        self._to(self.device)

    # ------------------------------------------------------------------ ask / tell
    def _ask(self) -> Tensor:
        self._ask_rng = self._rng.get_state()
        if self.generation == 0:
            self._z = None
            self._asked = self._init_code.unsqueeze(1).clone()
            return self._asked
        z = torch.randn(self._k, self.population_size, self.dim, generator=self._rng, device=self.device)
        self._z = z
        self._asked = self._xmean.unsqueeze(1) + self._sig[:, None, None] * torch.bmm(z, self._a)
        return self._asked

    def _tell(self, codes: Tensor, scores: Tensor, active: Tensor) -> None:
        if self.generation == 0:
            self._xmean = self._init_code.clone()
            return
        if codes.shape[1] < self.mu:
            raise ValueError(f"tell() needs at least mu={self.mu} codes per unit, got {codes.shape[1]}")
        z = self._z if self._asked is not None and self._z is not None and torch.equal(codes, self._asked) else self._recover_z(codes)
        order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, : self.mu]
        index = order.unsqueeze(-1).expand(-1, -1, self.dim)
        w = self.weights
        keep = lambda new, old: torch.where(active.view(-1, *([1] * (new.ndim - 1))), new, old)  # noqa: E731
        self._xmean = keep(torch.einsum("m,kmd->kd", w, torch.gather(codes, 1, index)), self._xmean)
        zw = torch.einsum("m,kmd->kd", w, torch.gather(z, 1, index))
        cs, cc = self.cs, self.cc
        self._ps = keep((1 - cs) * self._ps + math.sqrt(cs * (2 - cs) * self.mueff) * zw, self._ps)
        pc = (1 - cc) * self._pc + math.sqrt(cc * (2 - cc) * self.mueff) * torch.bmm(zw.unsqueeze(1), self._a).squeeze(1)
        self._pc = keep(pc, self._pc)
        self._sig = keep(self._sig * torch.exp((cs / self.damps) * (self._ps.norm(dim=1) / self.chi_n - 1)), self._sig)
        if self.generation - self._last_a_update >= self.a_update_freq:
            self._rank_one_update(active)
            self._last_a_update = self.generation
        self._z = self._asked = self._ask_rng = None

    def _rank_one_update(self, active: Tensor) -> None:
        """``A <- a A + b v^T pc`` and ``A^-1 <- A^-1 / a - d (A^-1 v^T) v`` with ``v = pc A^-1``, so
        that ``A^T A`` becomes ``(1 - c1) A^T A + c1 pc^T pc`` and the two stay exact inverses.
        Inactive units get ``a = 1, b = d = 0``: their A and A^-1 are left bit for bit as they were."""
        c1 = self.c1
        v = torch.bmm(self._pc.unsqueeze(1), self._ainv).squeeze(1)  # (K, N)
        nv = (v * v).sum(dim=1).clamp_min(1e-30)  # (K,)
        s = torch.sqrt(1 + nv * c1 / (1 - c1))
        a = torch.where(active, math.sqrt(1 - c1), 1.0)
        b = torch.where(active, (a / nv) * (s - 1), 0.0)
        d = torch.where(active, (1 - 1 / s) / (a * nv), 0.0)
        ainv_vt = torch.bmm(self._ainv, v.unsqueeze(-1))  # (K, N, 1), from the old A^-1
        update = (a, b[:, None] * v, self._pc, (ainv_vt * -d[:, None, None]).squeeze(-1), v)
        self._apply_update(*update)
        if self._updates is not None:
            self._updates.append(update)
            if len(self._updates) > self.dim // 8:  # the log would pass a quarter of A and A^-1
                self._updates = None

    def _apply_update(self, a: Tensor, bv: Tensor, pc: Tensor, ainv_vt_d: Tensor, v: Tensor) -> None:
        """``A <- a A + (b v)^T pc`` and ``A^-1 <- A^-1 / a + (-d A^-1 v^T) v`` from their operands;
        in place: no N x N temporaries (each would be 64 MB at N = 4096). Replaying the same operands
        on the same matrices gives the same bits (each element is one multiply-add, no reduction)."""
        self._a.mul_(a[:, None, None]).baddbmm_(bv.unsqueeze(-1), pc.unsqueeze(1))
        self._ainv.div_(a[:, None, None]).baddbmm_(ainv_vt_d.unsqueeze(-1), v.unsqueeze(1))

    def _recover_z(self, codes: Tensor) -> Tensor:
        """Standard-normal coordinates of codes that did not come from the last ``ask``."""
        return torch.bmm((codes - self._xmean.unsqueeze(1)) / self._sig[:, None, None], self._ainv)

    # ------------------------------------------------------------------ accessors and state
    def _sigma(self) -> Tensor:
        return self._sig

    def _mean(self) -> Tensor:
        return self._xmean

    _TENSORS = ("_init_code", "_xmean", "_sig", "_ps", "_pc")
    _UPDATE_KEYS = ("scale", "bv", "pc", "ainv_vt_d", "v")

    def _state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name.lstrip("_"): getattr(self, name).detach().to("cpu", copy=True) for name in self._TENSORS}
        if self._updates is not None:  # the compact form: the operands of every rank-1 update
            state["a_updates"] = {
                key: torch.stack([u[i] for u in self._updates]).cpu() if self._updates else torch.zeros(0, self._k, *([self.dim] if i else []))
                for i, key in enumerate(self._UPDATE_KEYS)
            }
        else:  # copies: A and A^-1 are updated in place later
            state.update(a=self._a.detach().to("cpu", copy=True), ainv=self._ainv.detach().to("cpu", copy=True))
        state.update(
            ask_rng_state=None if self._asked is None or self._ask_rng is None else self._ask_rng.clone(),
            last_a_update=self._last_a_update,
            seed=self.seed,
            rng_state=self._rng.get_state(),
            rng_device=self._rng.device.type,
        )
        return state

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._TENSORS:
            setattr(self, name, state[name.lstrip("_")].to(self.device, torch.float32, copy=True))
        if "a_updates" in state:
            logged = [state["a_updates"][key].to(self.device, torch.float32) for key in self._UPDATE_KEYS]
            self._updates = [tuple(t[i] for t in logged) for i in range(len(logged[0]))]
            self._a = torch.eye(self.dim, device=self.device).expand(self._k, self.dim, self.dim).clone()
            self._ainv = self._a.clone()
            for update in self._updates:
                self._apply_update(*update)
        else:  # the matrices themselves (a long run, or a checkpoint of an earlier release)
            self._a = state["a"].to(self.device, torch.float32, copy=True)
            self._ainv = state["ainv"].to(self.device, torch.float32, copy=True)
            self._updates = None
        self._z = self._asked = self._ask_rng = None
        self._last_a_update = int(state["last_a_update"])
        self.seed = int(state["seed"])
        same_device = state["rng_device"] == self._rng.device.type
        if same_device and state.get("ask_rng_state") is not None:  # interrupted between ask and tell
            self._rng.set_state(state["ask_rng_state"])
            self._ask()  # the same draws again; leaves the RNG where it was saved
        elif same_device:
            if state.get("asked") is not None:  # earlier releases stored the pending draws
                self._z = None if state["z"] is None else state["z"].to(self.device)
                self._asked = state["asked"].to(self.device)
            self._rng.set_state(state["rng_state"])
        else:  # a CPU state cannot drive a CUDA generator: continue from a derived seed
            cpu = torch.Generator().set_state(state["rng_state"]) if state["rng_device"] == "cpu" else None
            seed = int(torch.randint(0, 2**62, (1,), generator=cpu).item()) if cpu is not None else self.seed + self.generation
            self._rng.manual_seed(seed)

    def _to(self, device: torch.device) -> None:
        for name in (*self._TENSORS, "_a", "_ainv"):
            setattr(self, name, getattr(self, name).to(device))
        if self._updates:
            self._updates = [tuple(t.to(device) for t in u) for u in self._updates]
        self.weights = self.weights.to(device)
        if self._z is not None:
            self._z = self._z.to(device)
        if self._asked is not None:
            self._asked = self._asked.to(device)
        if getattr(self, "_rng", None) is not None and self._rng.device.type != device.type:
            seed = int(torch.randint(0, 2**62, (1,), generator=self._rng, device=self._rng.device).item())
            self._rng = torch.Generator(device=device)
            self._rng.manual_seed(seed)
            self._ask_rng = None  # a state of the old generator

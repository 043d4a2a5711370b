"""The evolution loop as plain code: ask -> render -> evaluate -> tell -> stop, for K units at once.

:func:`evolve` runs a whole evolution without a Trainer::

    from lightning_modules.evolution.loop import evolve

    result = evolve(PixelGenerator(16), None, UnitSet(net, [Unit("4", 0), Unit("0", 1)]), generations=30)
    result.best_scores, result.best_images, result.history  # (K,), (K, 3, H, W), (G, K, 4)

One generation is :meth:`EvolutionLoop.step` = :meth:`~EvolutionLoop.propose` (the optimiser asks
``(K, n, D)`` codes, the generator renders them and the units score them, all K x n images in one batch)
followed by :meth:`~EvolutionLoop.tell` (the optimiser is told the scores, the statistics of the
generation are recorded and the unit-health policy of :mod:`lightning_modules.evolution.health`
retires dead units). The ``EvolutionModule`` drives the same two methods, one generation per training
step: ``propose`` in its ``training_step`` and ``tell`` in its optimiser step.

The statistics per generation and unit are :data:`STATS` (the last four columns of ``scores.csv``).
Under DDP each rank evolves a shard of the units (``local``) and ``merge`` gathers the per-unit rows of
every rank, so :class:`EvolutionState` always covers all K units. Plain torch (no Lightning).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from neuroalign.core.errors import ConfigError
from lightning_modules.evolution.generators.base import Generator
from lightning_modules.evolution.health import OnDeadUnit, Retirement, UnitHealth, health_flags
from lightning_modules.evolution.optimizers.base import EvolutionOptimizer
from lightning_modules.evolution.optimizers.cholesky_cmaes import CholeskyCMAES

__all__ = [
    "STATS", "Scorer", "FunctionScorer", "Population", "GenerationReport", "EvolutionState", "EvolutionLoop",
    "EvolutionResult", "build_optimizer", "render", "evolve",
]  # fmt: skip

#: statistics kept per generation and unit (the last four columns of ``scores.csv``)
STATS = ("mean", "max", "best_so_far", "sigma")

OptimizerFactory = Callable[..., EvolutionOptimizer]


@runtime_checkable
class Scorer(Protocol):
    """What the loop scores images with: K labelled units (a :class:`~lightning_modules.evolution.units.UnitSet`)."""

    @property
    def labels(self) -> list[str]:
        """One label per unit."""

    def score(self, images: Tensor, unit_index: Tensor) -> Tensor:
        """Score image ``i`` of ``images (N, 3, H, W)`` on unit ``unit_index[i]``: ``(N,)``."""


class FunctionScorer:
    """One unit given as a function ``score_fn(images (N, 3, H, W)) -> (N,)`` (higher is better).

    Args:
        score_fn: the function.
        label: the unit's label in the history and result.
    """

    def __init__(self, score_fn: Callable[[Tensor], Tensor], label: str = "score") -> None:
        self.score_fn = score_fn
        self._labels = [label]

    @property
    def labels(self) -> list[str]:
        """``[label]``."""
        return list(self._labels)

    def score(self, images: Tensor, unit_index: Tensor) -> Tensor:
        """``score_fn(images)`` as float32 ``(N,)`` (``unit_index`` is all zeros: there is one unit)."""
        return torch.as_tensor(self.score_fn(images)).reshape(images.shape[0]).float()


class _Rows:
    """The units ``rows`` of a scorer without ``subset``: indices into ``rows`` map back to the scorer's."""

    def __init__(self, scorer: Scorer, rows: Sequence[int]) -> None:
        self.scorer, self.rows = scorer, torch.as_tensor(list(rows), dtype=torch.long)

    def score(self, images: Tensor, unit_index: Tensor) -> Tensor:
        return self.scorer.score(images, self.rows.to(unit_index.device)[unit_index])


@dataclass
class Population:
    """One generation asked and evaluated (this rank's units), waiting to be told.

    Attributes:
        generation: its number (0 = the start codes).
        codes: ``(K_local, n, D)`` the optimiser's codes.
        scores: ``(K_local, n)`` their scores; NaN for retired units (not evaluated).
        active: ``(K_local,)`` bool, the units evaluated.
    """

    generation: int
    codes: Tensor
    scores: Tensor
    active: Tensor


@dataclass
class GenerationReport:
    """What one told generation gave, over all K units.

    Attributes:
        generation: its number.
        stats: ``(K, 4)`` :data:`STATS` of the generation.
        retired: the units retired by it.
        stop_message: why the run must stop now (``None``: it goes on).
    """

    generation: int
    stats: Tensor
    retired: list[Retirement] = field(default_factory=list)
    stop_message: str | None = None


class EvolutionState:
    """Everything an evolution has recorded about its K units (what a checkpoint keeps, besides the optimiser).

    Args:
        labels: the K unit labels.
        code_dim: code length D.
        dead_patience, on_dead_unit, config_prefix: the unit-health policy (:class:`UnitHealth`).
    """

    def __init__(
        self,
        labels: Sequence[str],
        code_dim: int,
        dead_patience: int = 10,
        on_dead_unit: OnDeadUnit = "retire",
        config_prefix: str | None = None,
    ) -> None:
        self.labels = list(labels)
        k = len(self.labels)
        self.health = UnitHealth(self.labels, dead_patience, on_dead_unit, config_prefix)
        #: generations done
        self.generation = 0
        #: ``(G, K, 4)`` :data:`STATS` per generation and unit
        self.history = torch.zeros(0, k, len(STATS))
        #: ``(K, D)`` best code so far of every unit, and its score ``(K,)``
        self.best_codes = torch.zeros(k, code_dim)
        self.best_scores = torch.full((k,), float("-inf"))
        #: ``(K, D)`` best codes every ``snapshot_every`` generations (and at the last), and those generations
        self.snapshots: list[Tensor] = []
        self.snapshot_generations: list[int] = []

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and lists (``torch.load(weights_only=True)`` reads them)."""
        return {
            "generation": self.generation,
            "history": self.history.clone(),
            "best_codes": self.best_codes.clone(),
            "best_scores": self.best_scores.clone(),
            "snapshots": [s.clone() for s in self.snapshots],
            "snapshot_generations": list(self.snapshot_generations),
            **self.health.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.generation = int(state["generation"])
        self.history = state["history"].clone()
        self.best_codes = state["best_codes"].clone()
        self.best_scores = state["best_scores"].clone()
        self.snapshots = [s.clone() for s in state["snapshots"]]
        self.snapshot_generations = list(state["snapshot_generations"])
        self.health.load_state_dict(state)


def build_optimizer(
    factory: OptimizerFactory | None,
    generator: Generator,
    num_units: int | None,
    seed: int,
    device: str | torch.device | None = None,
) -> EvolutionOptimizer:
    """The evolution optimiser of ``num_units`` units, started at the generator's :meth:`~Generator.init_codes`.

    ``factory`` is called as ``factory(code_dim, num_units=..., seed=..., init_code=..., device=...)``
    (default :class:`~lightning_modules.evolution.optimizers.cholesky_cmaes.CholeskyCMAES`).
    """
    factory = factory or CholeskyCMAES
    init_code = generator.init_codes(1)[0].detach().float().cpu()
    return factory(generator.code_dim, num_units=num_units, seed=seed, init_code=init_code, device=device)


@torch.no_grad()
def render(generator: Generator, codes: Tensor) -> Tensor:
    """``(N, D)`` codes -> float32 CPU images ``(N, 3, H, W)`` (the files and the result hold these)."""
    return generator(codes).float().cpu()


class EvolutionLoop:
    """One generation at a time for K units: :meth:`propose` (ask, render, evaluate) then :meth:`tell`.

    Args:
        generator: codes -> [0, 1] images.
        scorer: this rank's units (:class:`Scorer`); all K units outside DDP.
        optimizer: the evolution optimiser of this rank's units (``num_units`` = their number).
        state: the record of all K units (updated in place).
        n_generations: generations of the run (the last one is snapshotted).
        snapshot_every: keep the best codes every this many generations.
        max_batch_size: images per generator / model forward (default: all K x n at once).
        local: indices of this rank's units among the K (default: all).
        merge: gathers per-unit rows ``(K_local, F)`` of every rank into ``(K, F)`` (default: identity).
    """

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer,
        optimizer: EvolutionOptimizer,
        state: EvolutionState,
        n_generations: int,
        snapshot_every: int = 10,
        max_batch_size: int | None = None,
        local: Tensor | None = None,
        merge: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.generator = generator
        self.scorer = scorer
        self.optimizer = optimizer
        self.state = state
        self.n_generations = int(n_generations)
        self.snapshot_every = int(snapshot_every)
        self.max_batch_size = max_batch_size
        self.local = local if local is not None else torch.arange(len(state.labels))
        self.merge = merge or (lambda rows: rows)
        self._subsets: dict[tuple[int, ...], Any] = {}
        #: the report of the last told generation
        self.report: GenerationReport | None = None

    @property
    def done(self) -> bool:
        """All generations run, or the health policy stopped the run."""
        return self.state.generation >= self.n_generations or self.state.health.stop_message is not None

    # ------------------------------------------------------------------ one generation
    @torch.no_grad()
    def evaluate(self, codes: Tensor, scorer: Any = None) -> tuple[Tensor, Tensor]:
        """Images ``(K, n, 3, H, W)`` and scores ``(K, n)`` of ``codes (K, n, D)`` for the K units of ``scorer``.

        All K x n images go through the generator and the model together (in chunks of
        ``max_batch_size`` when set). ``scorer`` defaults to this rank's units.
        """
        scorer = scorer if scorer is not None else self.scorer
        k, n, _ = codes.shape
        flat = codes.reshape(k * n, -1)
        owner = torch.arange(k, device=codes.device).repeat_interleave(n)
        size = self.max_batch_size or flat.shape[0]
        images, scores = [], []
        for chunk, who in zip(flat.split(size), owner.split(size)):
            img = self.generator(chunk)
            images.append(img)
            scores.append(scorer.score(img, who))
        images_t = torch.cat(images)
        return images_t.view(k, n, *images_t.shape[1:]), torch.cat(scores).view(k, n)

    @torch.no_grad()
    def propose(self) -> Population:
        """Ask this rank's codes and score those of the active units (retired units are not evaluated)."""
        codes = self.optimizer.ask()
        active = self.state.health.active[self.local].to(codes.device)
        scores = torch.full(codes.shape[:2], float("nan"), device=codes.device)
        if active.any():
            rows = active.nonzero().flatten()
            _, scores[rows] = self.evaluate(codes[rows], self._scorer_of(tuple(rows.tolist())))
        return Population(self.state.generation, codes, scores, active)

    @torch.no_grad()
    def tell(self, population: Population) -> GenerationReport:
        """Tell the optimiser, record the statistics merged over ranks, apply the health policy."""
        if population.generation != self.state.generation:
            raise RuntimeError(f"population of generation {population.generation} told at generation {self.state.generation}")
        opt, scores, active = self.optimizer, population.scores, population.active
        opt.tell(population.codes, scores, active=active)
        flags = health_flags(scores, active)
        local = torch.stack([scores.mean(1), scores.amax(1), opt.best_score, opt.sigma.expand(scores.shape[0])], 1)
        merged = self.merge(torch.cat([local.float(), flags.float(), opt.best_code.float()], 1)).cpu()
        stats, flags, best_codes = merged[:, :4], merged[:, 4:7].bool(), merged[:, 7:]
        state = self.state
        state.history = torch.cat([state.history, stats[None]])
        state.best_codes = best_codes
        state.best_scores = stats[:, 2].clone()
        gen = state.generation
        state.generation += 1
        if state.generation % self.snapshot_every == 0 or state.generation == self.n_generations:
            state.snapshots.append(state.best_codes.clone())
            state.snapshot_generations.append(gen)
        retired = state.health.update(gen, stats, flags)
        self.report = GenerationReport(gen, stats, retired, state.health.stop_message)
        return self.report

    def step(self) -> GenerationReport:
        """One whole generation: :meth:`propose` then :meth:`tell`."""
        return self.tell(self.propose())

    def _scorer_of(self, rows: tuple[int, ...]) -> Any:
        """The scorer of this rank's units at ``rows`` (the whole scorer while none is retired)."""
        if len(rows) == len(self.local):
            return self.scorer
        if rows not in self._subsets:
            subset = getattr(self.scorer, "subset", None)
            self._subsets[rows] = subset(list(rows)) if subset is not None else _Rows(self.scorer, rows)
        return self._subsets[rows]


@dataclass
class EvolutionResult:
    """What :func:`evolve` returns.

    Attributes:
        labels: the K unit labels.
        best_codes: ``(K, D)`` best code of every unit; ``best_images`` ``(K, 3, H, W)`` and
            ``best_scores`` ``(K,)`` go with them.
        history: ``(G, K, 4)`` :data:`STATS` per generation and unit.
        generations: generations run.
        retired: ``{label: (generation, reason)}`` of the retired units.
        stop_message: why the run stopped early (every unit retired, ``on_dead_unit: stop``), else ``None``.
    """

    labels: list[str]
    best_codes: Tensor
    best_images: Tensor
    best_scores: Tensor
    history: Tensor
    generations: int
    retired: dict[str, tuple[int, str]]
    stop_message: str | None


def evolve(
    generator: Generator,
    optimizer: OptimizerFactory | EvolutionOptimizer | None,
    units_or_score_fn: Scorer | Callable[[Tensor], Tensor],
    generations: int,
    *,
    seed: int = 0,
    callback: Callable[[EvolutionLoop], bool | None] | None = None,
    snapshot_every: int = 10,
    max_batch_size: int | None = None,
    dead_patience: int = 10,
    on_dead_unit: OnDeadUnit = "retire",
    device: str | torch.device | None = None,
) -> EvolutionResult:
    """Evolve prototypes for K units: ask -> render -> evaluate -> tell, ``generations`` times, without a Trainer.

    Args:
        generator: codes -> [0, 1] images; the optimiser starts from its :meth:`~Generator.init_codes`.
        optimizer: an optimiser factory called as in :func:`build_optimizer` (default ``CholeskyCMAES``),
            or a built :class:`EvolutionOptimizer` with ``num_units`` = K.
        units_or_score_fn: the units (a :class:`~lightning_modules.evolution.units.UnitSet`, or any
            :class:`Scorer`), or one unit as a function ``images -> (N,)`` scores.
        generations: generations to run (generation 0 included).
        seed: seed of the optimiser built from a factory.
        callback: called as ``callback(loop)`` after every generation (``loop.report`` holds its
            statistics, ``loop.state`` the record, ``loop.optimizer`` the optimiser); returning ``True``
            stops the run.
        snapshot_every, max_batch_size: as for the ``EvolutionModule``.
        dead_patience, on_dead_unit: the unit-health policy (:class:`~lightning_modules.evolution.health.UnitHealth`).
        device: device of an optimiser built from a factory (codes are moved to the generator's device).

    Returns:
        the :class:`EvolutionResult`; a run stopped by the health policy returns too (``stop_message`` says why).
    """
    if generations < 1:
        raise ConfigError(f"generations must be >= 1, got {generations}")
    if snapshot_every < 1:
        raise ConfigError(f"snapshot_every must be >= 1, got {snapshot_every}")
    scorer = units_or_score_fn if isinstance(units_or_score_fn, Scorer) else FunctionScorer(units_or_score_fn)
    labels = scorer.labels
    if isinstance(optimizer, EvolutionOptimizer):
        if optimizer.num_units != len(labels) or optimizer.dim != generator.code_dim:
            raise ConfigError(
                f"the optimiser has num_units={optimizer.num_units}, dim={optimizer.dim}; "
                f"these units need num_units={len(labels)}, dim={generator.code_dim}"
            )
        evolver = optimizer
    else:
        evolver = build_optimizer(optimizer, generator, len(labels), seed, device)
    state = EvolutionState(labels, generator.code_dim, dead_patience, on_dead_unit)
    loop = EvolutionLoop(generator, scorer, evolver, state, generations, snapshot_every, max_batch_size)
    while not loop.done:
        loop.step()
        if callback is not None and callback(loop) is True:
            break
    health = state.health
    return EvolutionResult(
        labels=list(labels),
        best_codes=state.best_codes.clone(),
        best_images=render(generator, state.best_codes),
        best_scores=state.best_scores.clone(),
        history=state.history.clone(),
        generations=state.generation,
        retired={labels[i]: (int(health.retired_at[i]), str(health.reasons[i])) for i in range(len(labels)) if health.retired_at[i] >= 0},
        stop_message=health.stop_message,
    )

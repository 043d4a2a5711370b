"""EvolutionModule: evolve prototype images for units of a network with a generator and CMA-ES.

One training step is one generation for every unit at once::

    codes (K, n, D) = optimiser.ask()            # one optimiser state per unit, batched
    images          = generator(codes.flatten)   # K x n images in one batch
    scores (K, n)   = units.score(images)        # one forward pass of the target model
    optimiser.tell(codes, scores)                # higher is better

Run it with ``neuroalign fit -c configs/evolution/<x>.yaml``; the module provides its own (dummy)
train dataloader of ``n_generations`` steps, so no datamodule is needed. Under DDP the units are
sharded across ranks and every rank holds the merged scores; rank 0 writes the files of
:mod:`lightning_modules.evolution.outputs` under ``<log_dir>/evolution``. Checkpoints hold the
optimiser states, the score history and the RNG states, so an interrupted run resumed with
``--ckpt_path`` reproduces the uninterrupted ``scores.csv`` (CPU, fixed seed).

Unit health. A unit whose activation is the same for a whole population (a silent ReLU channel) keeps
evolving for ``dead_patience`` generations -- the CMA-ES still samples on under ties -- and is then
*retired*: its optimiser state is frozen (kept in checkpoints), it is no longer evaluated, and the
generation and the reason go to ``summary.csv``, the loggers (``evolution/<unit>/retired``) and the
console, while the other units go on. NaN or inf activations retire a unit at once, reported as such.
The run fails (:class:`EvolutionStopped`, state saved to ``stopped.ckpt``) only when every unit is
retired, or at the first retirement with ``on_dead_unit: stop``. Every decision is taken from the
statistics merged over all ranks, so under DDP every rank retires the same units at the same generation.
``channel: auto`` units (:func:`~lightning_modules.evolution.units.resolve_auto_units`) are chosen
once, on a probe population drawn from the optimiser's start distribution; the choice is printed,
written to ``summary.csv`` and ``prototypes.pt`` and stored in checkpoints, so a resumed run keeps it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from neuroalign.core.errors import ConfigError, MissingFileError, NeuroAlignError
from lightning_modules.hparams import save_plain_hyperparameters
from lightning_modules.zoo.checkpoint import load_checkpoint_into
from lightning_modules.evolution.generators.base import Generator
from lightning_modules.evolution.optimizers.base import EvolutionOptimizer
from lightning_modules.evolution.outputs import EvolutionOutputs, enlarge, to_uint8
from lightning_modules.evolution.units import Unit, UnitSet, resolve_auto_units

__all__ = ["EvolutionModule", "EvolutionStopped"]

#: statistics kept per generation and unit (the last four columns of scores.csv)
_STATS = ("mean", "max", "best_so_far", "sigma")
#: per-unit health flags merged over ranks each generation
_FLAGS = ("nan", "inf", "constant")


class EvolutionStopped(NeuroAlignError):
    """Every unit was retired (or one was, with ``on_dead_unit: stop``): the run stopped, state saved."""


class _Generations(Dataset):
    """``n`` dummy items (the generation numbers)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __getitem__(self, index: int) -> int:
        return index

    def __len__(self) -> int:
        return self.n


class _GenerationLoader(DataLoader):
    """The loader of the dummy generation items. It has no state of its own to restore -- the module
    counts generations and skips those already done -- so it tells Lightning it resumes as it is."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass


class _EveryRankAllGenerations(DistributedSampler):
    """Every generation on every rank, in order: each rank evolves its own shard of units, so the
    generations must not be split. Being a ``DistributedSampler``, Lightning leaves it in place under DDP."""

    def __init__(self, n: int) -> None:
        super().__init__(_Generations(n), num_replicas=1, rank=0, shuffle=False)


def _rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class EvolutionModule(LightningModule):
    """Evolve prototypes for K units at once: codes -> generator -> [0,1] images -> model -> unit -> optimiser.

    Args:
        model: the target network taking [0,1] RGB images (e.g. ``lightning_modules.zoo.ZooModel``);
            images are resized to its ``input_size`` when it has one.
        units: the units to evolve (see :class:`~lightning_modules.evolution.units.Unit`).
        generator: the image parametrisation (``DeepSimGenerator``, ``FourierGenerator``, ...).
        optimizer: optimiser factory called as ``optimizer(dim, num_units=K, seed=..., device=...)``
            (a ``class_path`` without ``dim`` in YAML); default ``CholeskyCMAES`` with its defaults.
        n_generations: generations to run (generation 0 included). A run resumed with more continues
            from its checkpoint up to the new number; fewer than it has done is an error.
        seed: seed of the optimiser (rank r of a DDP run uses ``seed + r``).
        checkpoint: a neuroalign Lightning checkpoint (e.g. of ``RobustFinetuneModule``) whose network
            weights are loaded into ``model``, or ``latest:<save_dir>/<name>`` for the newest run of a
            config (e.g. ``latest:runs/quickstart``); the file loaded is printed and kept in this run's
            checkpoints, and a resume that would load other weights is refused.
        snapshot_every: keep the best image every this many generations (montage, best PNGs, W&B).
        max_batch_size: images per generator / model forward (default: all K x n at once).
        resize_mode: interpolation used to fit the images to the model's input size.
        output_dir: folder of the evolution files; default ``<trainer.log_dir>/evolution``.
        save_weights_in_checkpoint: also store the (frozen) model and generator weights in
            checkpoints; by default they are rebuilt from the config on resume.
        dead_patience: generations a unit may give one constant score to a whole population before
            it is retired (NaN / inf activations retire it at once).
        on_dead_unit: ``retire`` the unit and go on with the others (default), or ``stop`` the run.
        probe_images: size of the probe population that ``channel: auto`` units are chosen on.

    The target model and the generator are frozen and held outside the module tree (not trained, not
    in ``state_dict``, always in eval mode); the module moves them with itself (``.to(device)``).
    """

    #: init arguments a run resumed with ``--ckpt_path`` may change (``NeuroAlignCLI`` refuses other changes)
    resumable_hparams: tuple[str, ...] = (
        "n_generations", "checkpoint", "snapshot_every", "max_batch_size", "output_dir",
        "save_weights_in_checkpoint", "dead_patience", "on_dead_unit",
    )

    def __init__(
        self,
        model: nn.Module,
        units: list[Unit],
        generator: Generator,
        optimizer: Callable[[int], EvolutionOptimizer] | None = None,
        n_generations: int = 100,
        seed: int = 0,
        checkpoint: str | None = None,
        snapshot_every: int = 10,
        max_batch_size: int | None = None,
        resize_mode: str = "bilinear",
        output_dir: str | None = None,
        save_weights_in_checkpoint: bool = False,
        dead_patience: int = 10,
        on_dead_unit: Literal["retire", "stop"] = "retire",
        probe_images: int = 64,
    ) -> None:
        super().__init__()
        units = [Unit(**u) if isinstance(u, dict) else u for u in units]
        # plain data only in the checkpoint (torch.load(weights_only=True) must read it)
        # under LightningCLI the target model, generator and optimiser are recorded as their config, so a
        # resume that changes them is refused (neuroalign.resume); objects from Python are dropped
        save_plain_hyperparameters(self, ("model", "generator", "optimizer", "units"), logger=False)
        self.hparams["units"] = [u.to_dict() for u in units]
        if dead_patience < 1:
            raise ConfigError(f"dead_patience must be >= 1, got {dead_patience} (set `model.init_args.dead_patience`)")
        if on_dead_unit not in ("retire", "stop"):
            raise ConfigError(f"on_dead_unit {on_dead_unit!r} is invalid; valid: retire, stop (set `model.init_args.on_dead_unit`)")
        if probe_images < 2:
            raise ConfigError(f"probe_images must be >= 2, got {probe_images} (set `model.init_args.probe_images`)")
        if n_generations < 1:
            raise ConfigError(f"n_generations must be >= 1, got {n_generations} (set `model.init_args.n_generations`)")
        if snapshot_every < 1:
            raise ConfigError(f"snapshot_every must be >= 1, got {snapshot_every} (set `model.init_args.snapshot_every`)")
        if max_batch_size is not None and max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size} (set `model.init_args.max_batch_size`)")
        #: the network-weights checkpoint loaded (path, global step, epoch); a resume must load the same
        self.source_checkpoint = None
        if checkpoint:
            loaded = load_checkpoint_into(model, checkpoint, "model.init_args.checkpoint")
            _say(f"loaded the network weights of {loaded.pop('description')}")
            self.source_checkpoint = loaded
        # frozen networks live outside the module tree (see the class docstring and `_apply`)
        self.__dict__["model"] = model.eval().requires_grad_(False)
        self.__dict__["generator"] = generator.eval().requires_grad_(False)
        self.optimizer_factory = optimizer
        self.n_generations = n_generations
        self.seed = seed
        self.snapshot_every = snapshot_every
        self.max_batch_size = max_batch_size
        self.output_dir = output_dir
        self.save_weights_in_checkpoint = save_weights_in_checkpoint
        self.dead_patience = dead_patience
        self.on_dead_unit = on_dead_unit
        self.resize_mode = resize_mode
        #: the units as configured (``channel: auto`` unresolved)
        self.requested_units = list(units)
        self.units, self.unit_choices = self._resolve_units(self.requested_units, probe_images)
        self._set_units(self.units)
        #: progress bars print a line every this many generations where there is no terminal
        self.progress_every_n_steps = snapshot_every
        # a never-updated parameter with a no-op torch optimiser: each generation returns a zero loss on
        # it, so Lightning makes one optimiser step per generation and trainer.global_step counts
        # generations (max_steps, every_n_train_steps work), and DDP finds a trainable parameter
        self._step_anchor = nn.Parameter(torch.zeros(1))
        self._local = torch.arange(len(self.units))
        self._local_units = self.unit_set
        self._active_cache: dict[tuple[int, ...], UnitSet] = {}
        self.evolver: EvolutionOptimizer | None = None
        self._reset_state()

    # ------------------------------------------------------------------ frozen networks
    def _apply(self, fn, recurse: bool = True):
        """Device / dtype moves (``.to``, ``.cuda``, ``.half``) apply to the frozen networks too."""
        super()._apply(fn, recurse)
        for name in ("model", "generator"):
            self.__dict__[name]._apply(fn)
        return self

    # ------------------------------------------------------------------ units
    def _resolve_units(self, units: list[Unit], probe_images: int) -> tuple[list[Unit], list[str]]:
        """Choose the ``channel: auto`` units on a probe population of the optimiser's start distribution."""
        if not any(u.is_auto for u in units):
            return list(units), []
        factory = self.optimizer_factory or _default_optimizer()
        start = factory(self.generator.code_dim, num_units=None, seed=self.seed)
        rng = torch.Generator().manual_seed(self.seed)
        codes = start.mean.cpu() + start.sigma.cpu() * torch.randn(probe_images, self.generator.code_dim, generator=rng)
        del start
        images = self.generator(codes).float()  # the generator moves codes to its device
        resolved, lines = resolve_auto_units(self.model, units, images, self.resize_mode)
        for line in lines:
            _say(line)
        return resolved, lines

    def _set_units(self, units: list[Unit]) -> None:
        """Validate ``units`` against the model (one probe forward) and derive labels and shards."""
        self.units = list(units)
        side = self.generator.image_size
        self.unit_set = UnitSet(self.model, self.units, probe_size=(side, side), resize_mode=self.resize_mode)
        self.labels = self.unit_set.labels
        if self._trainer is not None:
            self._shard()

    def _shard(self) -> None:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        if world > len(self.units):
            raise ConfigError(f"{world} processes for {len(self.units)} units: use at most as many devices as units (trainer.devices)")
        self._local = torch.arange(len(self.units)).tensor_split(world)[rank]
        self._local_units = self.unit_set.subset(self._local.tolist())
        self._active_cache: dict[tuple[int, ...], UnitSet] = {}

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        k, d = len(self.units), self.generator.code_dim
        self.generation = 0
        #: consecutive generations with one constant score over the whole population, per unit
        self.dead_streak = torch.zeros(k, dtype=torch.long)
        #: generation at which each unit was retired (-1: active) and why
        self.retired_at = torch.full((k,), -1, dtype=torch.long)
        self.retire_reasons: list[str | None] = [None] * k
        self.history = torch.zeros(0, k, len(_STATS))
        self.best_codes = torch.zeros(k, d)
        self.best_scores = torch.full((k,), float("-inf"))
        self.snapshots: list[torch.Tensor] = []  # (K, D) best codes every snapshot_every generations
        self._snapshot_images: list[torch.Tensor] = []  # their images, generated once (not checkpointed)
        self.snapshot_generations: list[int] = []
        self.stop_message: str | None = None
        self._pending: dict[str, Any] | None = None

    def train(self, mode: bool = True) -> "EvolutionModule":
        """Keep the frozen target model and generator in eval mode (no dropout, fixed norm statistics)."""
        super().train(mode)
        self.model.eval()
        self.generator.eval()
        return self

    def setup(self, stage: str) -> None:
        """Shard the units across ranks (contiguous blocks; every rank needs at least one unit)."""
        self._shard()

    def _build_optimizer(self) -> EvolutionOptimizer:
        factory = self.optimizer_factory or _default_optimizer()
        seed = self.seed + (self.trainer.global_rank if self._trainer is not None else 0)
        return factory(self.generator.code_dim, num_units=len(self._local), seed=seed, device=self.device)

    # ------------------------------------------------------------------ data / optimiser hooks
    def train_dataloader(self) -> DataLoader:
        """``n_generations`` dummy steps, all of them on every rank (no RNG is drawn)."""
        return _GenerationLoader(_Generations(self.n_generations), batch_size=None, sampler=_EveryRankAllGenerations(self.n_generations))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """A no-op SGD on the step anchor (the evolution optimiser is driven in :meth:`training_step`)."""
        return torch.optim.SGD([self._step_anchor], lr=0.0)

    def on_train_start(self) -> None:
        """Build the evolution optimiser on the module's device and apply a restored checkpoint state."""
        self.evolver = self._build_optimizer()
        if self._pending is not None:
            world = self.trainer.world_size
            states = self._pending["optimizer_states"]
            if len(states) != world:
                raise ConfigError(f"checkpoint was written by {len(states)} processes, this run has {world}; resume with the same trainer.devices")
            self.evolver.load_state_dict(states[self.trainer.global_rank])
            _set_rng_state(self._pending["rng"][min(self.trainer.global_rank, len(self._pending["rng"]) - 1)])
            self._pending = None

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        """Skip the rest of the epoch once ``n_generations`` are done (e.g. after a resume)."""
        if self.generation >= self.n_generations or self.stop_message:
            self.trainer.should_stop = True
            return -1
        return None

    # ------------------------------------------------------------------ one generation
    @torch.no_grad()
    def evaluate(self, codes: torch.Tensor, unit_set: UnitSet | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and scores of ``codes (K, n, D)`` for the K units of ``unit_set`` (default: this rank's).

        All K x n images go through the generator and the model together (in chunks of
        ``max_batch_size`` when set). Returns images ``(K, n, 3, H, W)`` and scores ``(K, n)``.
        """
        unit_set = unit_set or self._local_units
        k, n, _ = codes.shape
        flat = codes.reshape(k * n, -1)
        owner = torch.arange(k, device=codes.device).repeat_interleave(n)
        size = self.max_batch_size or flat.shape[0]
        images, scores = [], []
        for chunk, who in zip(flat.split(size), owner.split(size)):
            img = self.generator(chunk)
            images.append(img)
            scores.append(unit_set.score(img, who))
        images_t = torch.cat(images)
        return images_t.view(k, n, *images_t.shape[1:]), torch.cat(scores).view(k, n)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Run one generation for the active units of this rank, merge the statistics over ranks, log them.

        Retired units are neither generated nor scored; their optimiser state stays as it was.
        """
        codes = self.evolver.ask()
        active = (self.retired_at[self._local] < 0).to(codes.device)
        scores = torch.full(codes.shape[:2], float("nan"), device=codes.device)
        if active.any():
            rows = active.nonzero().flatten()
            _, scores[rows] = self.evaluate(codes[rows], self._active_units(tuple(rows.tolist())))
        self.evolver.tell(codes, scores, active=active)
        n = scores.shape[1]
        flags = torch.stack(
            [scores.isnan().any(1), scores.isinf().any(1), (scores.amax(1) == scores.amin(1)) & (n > 1)], 1
        ) & active[:, None]
        local = torch.stack([scores.mean(1), scores.amax(1), self.evolver.best_score, self.evolver.sigma.expand(scores.shape[0])], 1)
        merged = self._merge(torch.cat([local.float(), flags.float(), self.evolver.best_code.float()], 1)).cpu()
        stats, flags, best_codes = merged[:, :4], merged[:, 4:7].bool(), merged[:, 7:]
        self.history = torch.cat([self.history, stats[None]])
        self.best_codes = best_codes
        self.best_scores = stats[:, 2].clone()
        gen = self.generation
        self.generation += 1
        if (self.generation % self.snapshot_every == 0) or self.generation == self.n_generations:
            self.snapshots.append(self.best_codes.clone())
            self.snapshot_generations.append(gen)
        self._log_generation(gen, stats)
        self._check_health(gen, stats, flags)
        if self.generation >= self.n_generations:
            self.trainer.should_stop = True
        self._write_outputs(final=False)
        return self._step_anchor.sum() * 0.0  # the no-op optimiser step that advances trainer.global_step

    def _active_units(self, rows: tuple[int, ...]) -> UnitSet:
        """The UnitSet of this rank's units at ``rows`` (all of them while none is retired)."""
        if len(rows) == len(self._local):
            return self._local_units
        if rows not in self._active_cache:
            self._active_cache[rows] = self._local_units.subset(list(rows))
        return self._active_cache[rows]

    def _merge(self, local: torch.Tensor) -> torch.Tensor:
        """Gather per-unit rows ``(K_local, F)`` of every rank into ``(K, F)`` in unit order."""
        world = self.trainer.world_size if self._trainer is not None else 1
        if world == 1:
            return local
        sizes = [len(c) for c in torch.arange(len(self.units)).tensor_split(world)]
        padded = local.new_zeros(max(sizes), local.shape[1])
        padded[: local.shape[0]] = local
        gathered = self.all_gather(padded)  # (world, P, F)
        return torch.cat([gathered[r, : sizes[r]] for r in range(world)])

    def _check_health(self, gen: int, stats: torch.Tensor, flags: torch.Tensor) -> None:
        """Retire units that gave NaN / inf, or one constant score for ``dead_patience`` generations.

        ``flags`` are the merged ``(K, 3)`` NaN / inf / constant flags, the same on every rank, so
        every rank takes the same decisions.
        """
        constant = flags[:, 2]
        self.dead_streak = torch.where(constant, self.dead_streak + 1, torch.zeros_like(self.dead_streak))
        newly = []
        for i in range(len(self.units)):
            if self.retired_at[i] >= 0:
                continue
            if flags[i, 0] or flags[i, 1]:
                reason = f"{'NaN' if flags[i, 0] else 'inf'} activation from the model"
            elif self.dead_streak[i] >= self.dead_patience:
                first = gen - int(self.dead_streak[i]) + 1
                reason = f"constant activation {stats[i, 0].item():.6g} over every population for {int(self.dead_streak[i])} generations ({first}-{gen}, dead_patience {self.dead_patience})"
            else:
                continue
            self.retired_at[i] = gen
            self.retire_reasons[i] = reason
            newly.append(i)
        for i in newly:
            self._log_metrics({f"evolution/{self.labels[i]}/retired": 1.0}, gen)
            left = int((self.retired_at < 0).sum())
            _say(f"unit {self.labels[i]} retired at generation {gen}: {self.retire_reasons[i]}; {left} of {len(self.units)} units go on")
        retired = [i for i in range(len(self.units)) if self.retired_at[i] >= 0]
        what = "; ".join(f"{self.labels[i]} at generation {int(self.retired_at[i])}: {self.retire_reasons[i]}" for i in retired)
        hint = "choose other units or `channel: auto` (`model.init_args.units`)"
        if newly and self.on_dead_unit == "stop":
            self.stop_message = f"unit retired and on_dead_unit is 'stop' ({what}); {hint}, or set `model.init_args.on_dead_unit: retire`"
        elif len(retired) == len(self.units):
            self.stop_message = f"every unit is retired ({what}); {hint}"
        if self.stop_message:
            self.trainer.should_stop = True

    # ------------------------------------------------------------------ logging and files
    def _log_generation(self, gen: int, stats: torch.Tensor) -> None:
        metrics = {
            f"evolution/{label}/{name}": float(stats[i, j])
            for i, label in enumerate(self.labels)
            for j, name in enumerate(_STATS)
            if self.retired_at[i] < 0 or name in ("best_so_far", "sigma")
        }
        self._log_metrics(metrics, gen)
        # the progress bar shows the best score so far of every unit (nothing goes to the loggers)
        for i, label in enumerate(self.labels):
            self.log(f"best/{label}", float(stats[i, 2]), prog_bar=True, logger=False, on_step=True, on_epoch=False, sync_dist=False)

    @rank_zero_only
    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step=step)

    def _evolution_dir(self) -> Path:
        if self.output_dir:
            return Path(self.output_dir)
        if self._trainer is None:
            return Path("evolution")
        return Path(getattr(self, "_log_dir", None) or self.trainer.default_root_dir) / "evolution"

    def on_fit_start(self) -> None:
        """Resolve the output folder on every rank (``trainer.log_dir`` is a collective under DDP)."""
        self._log_dir = self.trainer.log_dir or self.trainer.default_root_dir

    @torch.no_grad()
    def _images(self, codes: torch.Tensor) -> torch.Tensor:
        return self.generator(codes.to(self.device)).float().cpu()

    @rank_zero_only
    def _write_outputs(self, final: bool) -> None:
        out = EvolutionOutputs(self._evolution_dir())
        out.write_scores(self.labels, self.history, last_generation=[int(g) if g >= 0 else None for g in self.retired_at])
        out.write_summary(self._summary_rows())
        snapshot_now = self.snapshot_generations and self.snapshot_generations[-1] == self.generation - 1
        if not (final or snapshot_now):
            return
        best_images = self._images(self.best_codes)
        out.write_best(self.labels, best_images)
        for codes in self.snapshots[len(self._snapshot_images):]:
            self._snapshot_images.append(self._images(codes))
        snaps = torch.stack(self._snapshot_images) if self.snapshots else best_images[None]
        generations = self.snapshot_generations if self.snapshots else [self.generation - 1]
        _, montage = out.write_montage(snaps, self.labels, generations, self.best_scores.tolist())
        wandb = [lg for lg in self.loggers if isinstance(lg, WandbLogger)]
        if wandb and snapshot_now and not final:  # the last snapshot was logged by its step
            # uint8 pictures (wandb turns float tensors black), one per unit, captioned with unit and score
            pictures = list(to_uint8(enlarge(best_images)))
            captions = [f"{label}: best {float(s):.4g} (generation {self.generation - 1})" for label, s in zip(self.labels, self.best_scores)]
            for logger in wandb:
                logger.log_image("evolution/best", images=pictures, caption=captions, step=self.generation - 1)
        if final:
            out.write_prototypes([u.to_dict() for u in self.units], self.labels, self.best_codes, best_images, self.best_scores, self.generation)
            caption = f"rows: units ({', '.join(self.labels)}); columns: generations {generations}"
            for logger in wandb:
                logger.log_image("evolution/montage", images=[montage], caption=[caption])

    def _summary_rows(self) -> list[dict[str, Any]]:
        rows = []
        for i, (unit, requested) in enumerate(zip(self.units, self.requested_units)):
            retired = int(self.retired_at[i]) >= 0
            rows.append(
                {
                    "unit": self.labels[i],
                    "layer": unit.layer,
                    "channel": unit.channel,
                    "position": list(unit.position) if unit.position is not None else None,
                    "token": unit.token,
                    "chosen": "auto" if requested.is_auto else "config",
                    "status": "retired" if retired else "active",
                    "best_score": float(self.best_scores[i]),
                    "generations": int(self.retired_at[i]) + 1 if retired else self.generation,
                    "retired_generation": int(self.retired_at[i]) if retired else None,
                    "reason": self.retire_reasons[i],
                }
            )
        return rows

    def on_train_end(self) -> None:
        """Write the final files; when the run was stopped, save the state and raise :class:`EvolutionStopped`."""
        self._write_outputs(final=True)
        if self.trainer.is_global_zero:
            active = int((self.retired_at < 0).sum())
            _say(f"evolution: {self.generation} generations, {active} of {len(self.units)} units active; {self._evolution_dir()}")
        if self.stop_message:
            path = self._evolution_dir() / "stopped.ckpt"
            self.trainer.save_checkpoint(path, weights_only=False)
            raise EvolutionStopped(f"{self.stop_message}; state saved to {path}")

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store optimiser states (all ranks), score history, best codes, snapshots and RNG states."""
        local = {"optimizer": self.evolver.state_dict() if self.evolver is not None else None, "rng": _rng_state()}
        world = self.trainer.world_size if self._trainer is not None else 1
        if world > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, local)
        else:
            gathered = [local]
        checkpoint["evolution"] = {
            "generation": self.generation,
            "history": self.history.clone(),
            "best_codes": self.best_codes.clone(),
            "best_scores": self.best_scores.clone(),
            "snapshots": [s.clone() for s in self.snapshots],
            "snapshot_generations": list(self.snapshot_generations),
            "labels": list(self.labels),
            "units": [u.to_dict() for u in self.units],
            "requested_units": [u.to_dict() for u in self.requested_units],
            "dead_streak": self.dead_streak.clone(),
            "retired_at": self.retired_at.clone(),
            "retire_reasons": list(self.retire_reasons),
            "optimizer_states": [g["optimizer"] for g in gathered],
            "rng": [g["rng"] for g in gathered],
        }
        if self.save_weights_in_checkpoint:
            checkpoint["frozen_weights"] = {name: self.__dict__[name].state_dict() for name in ("model", "generator")}
        checkpoint["evolution"]["source_checkpoint"] = self.source_checkpoint  # the network's weights (resume check)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the evolution state; the optimiser state and RNG are applied in :meth:`on_train_start`."""
        state = checkpoint.get("evolution")
        if state is None:
            raise ConfigError("checkpoint holds no evolution state (not written by EvolutionModule); check `--ckpt_path`")
        requested = [u.to_dict() for u in self.requested_units]
        if state.get("requested_units") == requested and state.get("units") != [u.to_dict() for u in self.units]:
            # the same `channel: auto` request: keep the checkpoint's choice, not a fresh one
            self._set_units([Unit(**{**u, "position": tuple(u["position"]) if u["position"] else None}) for u in state["units"]])
            _say(f"resumed units (chosen when the run started): {', '.join(self.labels)}")
        if list(state["labels"]) != list(self.labels):
            raise ConfigError(f"checkpoint units {state['labels']} differ from the configured units {self.labels} (`model.init_args.units`)")
        if any(s is None for s in state["optimizer_states"]):
            raise ConfigError("checkpoint was saved before the first generation; start the run afresh")
        self._check_resume(checkpoint, state)
        self.generation = int(state["generation"])
        self.history = state["history"].clone()
        self.best_codes = state["best_codes"].clone()
        self.best_scores = state["best_scores"].clone()
        self.snapshots = [s.clone() for s in state["snapshots"]]
        self._snapshot_images = []
        self.snapshot_generations = list(state["snapshot_generations"])
        k = len(self.units)
        self.dead_streak = state.get("dead_streak", torch.zeros(k, dtype=torch.long)).clone()
        self.retired_at = state.get("retired_at", torch.full((k,), -1, dtype=torch.long)).clone()
        self.retire_reasons = list(state.get("retire_reasons", [None] * k))
        frozen = checkpoint.setdefault("frozen_weights", {})
        for name in ("model", "generator"):  # checkpoints of earlier releases kept them in the state dict
            moved = {k[len(name) + 1 :]: checkpoint["state_dict"].pop(k) for k in list(checkpoint["state_dict"]) if k.startswith(f"{name}.")}
            if moved:
                frozen[name] = moved
        if frozen:
            for name, weights in checkpoint["frozen_weights"].items():
                self.__dict__[name].load_state_dict(weights, strict=True)
        self._pending = {"optimizer_states": state["optimizer_states"], "rng": state["rng"]}

    def _check_resume(self, checkpoint: dict[str, Any], state: dict[str, Any]) -> None:
        """Refuse a resume that cannot continue this run as configured; let more generations continue it.

        ``n_generations`` may grow (the run goes on from the checkpoint's generation); fewer than the
        checkpoint has done is an error, as is a ``checkpoint`` whose network weights differ from those
        the run evolved on (e.g. ``latest:`` now names a re-trained network).
        """
        done = int(state["generation"])
        if self.n_generations < done:
            raise ConfigError(
                f"n_generations {self.n_generations} is fewer than the {done} generations the checkpoint has done; "
                f"set `model.init_args.n_generations` to {done} or more, or start a new run without --ckpt_path"
            )
        then, now = state.get("source_checkpoint"), self.source_checkpoint
        if then and now and not math.isclose(then.get("fingerprint", 0.0), now["fingerprint"], rel_tol=1e-9, abs_tol=1e-9):
            raise ConfigError(
                f"the run evolved on the network weights of {then['path']} (global step {then['global_step']}), the config now loads "
                f"other weights from {now['path']} (global step {now['global_step']}); set `model.init_args.checkpoint: {then['path']}` "
                "to resume, or start a new run without --ckpt_path"
            )
        if done >= self.n_generations:
            _say(f"the checkpoint has done all {done} generations; set a larger `model.init_args.n_generations` to evolve further")
            return
        _say(f"resuming at generation {done} of {self.n_generations}")
        if self._trainer is not None:
            loops = checkpoint.get("loops", {}).get("fit_loop", {})
            epochs = loops.get("epoch_progress", {}).get("current", {}).get("processed", 0)
            epochs += bool(loops.get("epoch_loop.batch_progress", {}).get("is_last_batch"))  # saved at its last batch
            fit_loop = self.trainer.fit_loop
            if isinstance(fit_loop.max_epochs, int) and 0 <= fit_loop.max_epochs <= epochs:
                fit_loop.max_epochs = epochs + 1  # the checkpoint ended its epoch: the remaining generations run in one more


def _default_optimizer() -> Callable[..., EvolutionOptimizer]:
    from lightning_modules.evolution.optimizers.cholesky_cmaes import CholeskyCMAES

    return CholeskyCMAES


def _say(message: str) -> None:
    """One console line on rank zero."""
    rank_zero_info(f"[neuroalign] {message}")

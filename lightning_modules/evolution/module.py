"""EvolutionModule: evolve prototype images for units of a network with a generator and CMA-ES.

A thin Lightning adapter over the plain loop of :mod:`lightning_modules.evolution.loop` (the same
code :func:`~lightning_modules.evolution.loop.evolve` runs without a Trainer). One training step is
one generation for every unit at once::

    training_step:   codes (K, n, D) = optimiser.ask()            # EvolutionLoop.propose
                     images          = generator(codes.flatten)   # K x n images in one batch
                     scores (K, n)   = units.score(images)        # one forward pass of the target model
    optimiser step:  optimiser.tell(codes, scores)                # EvolutionLoop.tell (higher is better)

Run it with ``neuroalign fit -c configs/evolution/<x>.yaml``; the generations are the data (see
:mod:`lightning_modules.evolution.training`), so no datamodule is needed. Under DDP the units are
sharded across ranks and every rank holds the merged scores; rank 0 writes the files of
:mod:`lightning_modules.evolution.outputs` under ``<log_dir>/evolution``. Checkpoints hold the
optimiser states, the score history and the RNG states, so an interrupted run resumed with
``--ckpt_path`` reproduces the uninterrupted ``scores.csv`` (CPU, fixed seed).

Unit health (the policy of :mod:`lightning_modules.evolution.health`, applied by the loop). A unit
whose activation is the same for a whole population (a silent ReLU channel) keeps evolving for
``dead_patience`` generations and is then *retired*: its optimiser state is frozen (kept in
checkpoints), it is no longer evaluated, and the generation and the reason go to ``summary.csv``, the
loggers (``evolution/<unit>/retired``) and the console, while the other units go on. NaN or inf
activations retire a unit at once, reported as such. The run fails (:class:`EvolutionStopped`, state
saved to ``stopped.ckpt``) only when every unit is retired, or at the first retirement with
``on_dead_unit: stop``. Every decision is taken from the statistics merged over all ranks, so under
DDP every rank retires the same units at the same generation.
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
import torch.distributed as dist
from lightning.pytorch import LightningModule
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch import nn
from torch.utils.data import DataLoader

from neuroalign.core.errors import ConfigError, NeuroAlignError
from lightning_modules.hparams import save_plain_hyperparameters
from lightning_modules.zoo.checkpoint import load_checkpoint_into
from lightning_modules.evolution.generators.base import Generator
from lightning_modules.evolution.health import UnitHealth
from lightning_modules.evolution.loop import STATS, EvolutionLoop, EvolutionState, GenerationReport, Population, build_optimizer, render
from lightning_modules.evolution.optimizers.base import EvolutionOptimizer
from lightning_modules.evolution.outputs import EvolutionOutputs, enlarge, summary_rows, to_uint8
from lightning_modules.evolution.training import EveryRankAllGenerations, GenerationLoader, Generations, TellOptimizer
from lightning_modules.evolution.units import Unit, UnitSet, resolve_auto_units

__all__ = ["EvolutionModule", "EvolutionStopped"]

#: where the module's settings live in a config (named in error messages)
_CONFIG_PREFIX = "model.init_args"


class EvolutionStopped(NeuroAlignError):
    """Every unit was retired (or one was, with ``on_dead_unit: stop``): the run stopped, state saved."""


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
        optimizer: optimiser factory called as ``optimizer(dim, num_units=K, seed=..., init_code=..., device=...)``
            (a ``class_path`` without ``dim`` in YAML; ``init_code`` is the generator's ``init_codes(1)[0]``);
            default ``CholeskyCMAES`` with its defaults.
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
        UnitHealth([], dead_patience, on_dead_unit, _CONFIG_PREFIX)  # checks the policy before the probe passes
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
        # the one parameter of the TellOptimizer (never changed): each training step returns a zero loss
        # on it, Lightning makes one optimiser step per generation -- the tell -- so trainer.global_step
        # counts generations (max_steps, every_n_train_steps work), and DDP finds a trainable parameter
        self._step_anchor = nn.Parameter(torch.zeros(1))
        self._local = torch.arange(len(self.units))
        self._local_units = self.unit_set
        self.evolver: EvolutionOptimizer | None = None
        #: the plain evolution loop over this rank's units (built when training starts)
        self.loop: EvolutionLoop | None = None
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
        start = build_optimizer(self.optimizer_factory, self.generator, None, self.seed)
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

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        #: the record of all K units: generations done, history, best codes, snapshots, unit health
        self.state = EvolutionState(self.labels, self.generator.code_dim, self.dead_patience, self.on_dead_unit, _CONFIG_PREFIX)
        self._snapshot_images: list[torch.Tensor] = []  # images of state.snapshots, generated once (not checkpointed)
        self._population: Population | None = None  # asked and evaluated by training_step, told by the optimiser step
        self._pending: dict[str, Any] | None = None

    @property
    def generation(self) -> int:
        """Generations done."""
        return self.state.generation

    @property
    def history(self) -> torch.Tensor:
        """``(G, K, 4)`` mean, max, best_so_far and sigma per generation and unit (merged over ranks)."""
        return self.state.history

    @property
    def best_codes(self) -> torch.Tensor:
        """``(K, D)`` best code so far of every unit."""
        return self.state.best_codes

    @property
    def best_scores(self) -> torch.Tensor:
        """``(K,)`` best score so far of every unit."""
        return self.state.best_scores

    @property
    def retired_at(self) -> torch.Tensor:
        """``(K,)`` generation at which each unit was retired (-1: active)."""
        return self.state.health.retired_at

    @property
    def stop_message(self) -> str | None:
        """Why the run stops early (every unit retired, or ``on_dead_unit: stop``), else ``None``."""
        return self.state.health.stop_message

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
        seed = self.seed + (self.trainer.global_rank if self._trainer is not None else 0)
        return build_optimizer(self.optimizer_factory, self.generator, len(self._local), seed, self.device)

    # ------------------------------------------------------------------ data / optimiser hooks
    def train_dataloader(self) -> DataLoader:
        """The generations are the data: items ``0 .. n_generations - 1``, all of them on every rank (no RNG drawn)."""
        return GenerationLoader(Generations(self.n_generations), batch_size=None, sampler=EveryRankAllGenerations(self.n_generations))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The :class:`~lightning_modules.evolution.training.TellOptimizer`: each optimiser step is the evolution tell."""
        return TellOptimizer(self._step_anchor, self._tell)

    def on_train_start(self) -> None:
        """Build the evolution optimiser on the module's device, apply a restored checkpoint state, build the loop."""
        if self.trainer.accumulate_grad_batches != 1:
            raise ConfigError("an evolution tells its optimiser at every step; remove `trainer.accumulate_grad_batches`")
        self.evolver = self._build_optimizer()
        if self._pending is not None:
            world = self.trainer.world_size
            states = self._pending["optimizer_states"]
            if len(states) != world:
                raise ConfigError(f"checkpoint was written by {len(states)} processes, this run has {world}; resume with the same trainer.devices")
            self.evolver.load_state_dict(states[self.trainer.global_rank])
            _set_rng_state(self._pending["rng"][min(self.trainer.global_rank, len(self._pending["rng"]) - 1)])
            self._pending = None
        self.loop = EvolutionLoop(
            self.generator, self._local_units, self.evolver, self.state, self.n_generations,
            self.snapshot_every, self.max_batch_size, local=self._local, merge=self._merge,
        )  # fmt: skip

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        """Skip the rest of the epoch once ``n_generations`` are done (e.g. after a resume)."""
        if self.generation >= self.n_generations or self.stop_message:
            self.trainer.should_stop = True
            return -1
        return None

    # ------------------------------------------------------------------ one generation
    def training_step(self, batch: int, batch_idx: int) -> torch.Tensor:
        """Ask and evaluate this rank's population (:meth:`EvolutionLoop.propose`); the optimiser step tells it.

        Retired units are neither generated nor scored. Returns the zero loss on the step anchor whose
        backward and optimiser step make Lightning count the generation.
        """
        self._population = self.loop.propose()
        return self._step_anchor.sum() * 0.0

    def _tell(self) -> None:
        """The :class:`TellOptimizer` step: tell the population (:meth:`EvolutionLoop.tell`), log, write, stop."""
        population, self._population = self._population, None
        if population is None:
            return
        report = self.loop.tell(population)
        self._log_generation(report)
        for retirement in report.retired:
            self._log_metrics({f"evolution/{self.labels[retirement.unit]}/retired": 1.0}, report.generation)
            _say(self.state.health.retirement_line(retirement))
        if report.stop_message or self.generation >= self.n_generations:
            self.trainer.should_stop = True
        self._write_outputs(final=False)

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

    # ------------------------------------------------------------------ logging and files
    def _log_generation(self, report: GenerationReport) -> None:
        """Statistics to the loggers (a unit retired before this generation logs only best_so_far and sigma)."""
        gen, stats = report.generation, report.stats
        metrics = {
            f"evolution/{label}/{name}": float(stats[i, j])
            for i, label in enumerate(self.labels)
            for j, name in enumerate(STATS)
            if not 0 <= self.retired_at[i] < gen or name in ("best_so_far", "sigma")
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

    @rank_zero_only
    def _write_outputs(self, final: bool) -> None:
        out = EvolutionOutputs(self._evolution_dir())
        out.write_scores(self.labels, self.history, last_generation=[int(g) if g >= 0 else None for g in self.retired_at])
        out.write_summary(self._summary_rows())
        state = self.state
        snapshot_now = state.snapshot_generations and state.snapshot_generations[-1] == self.generation - 1
        if not (final or snapshot_now):
            return
        best_images = render(self.generator, self.best_codes)
        out.write_best(self.labels, best_images)
        for codes in state.snapshots[len(self._snapshot_images):]:
            self._snapshot_images.append(render(self.generator, codes))
        snaps = torch.stack(self._snapshot_images) if state.snapshots else best_images[None]
        generations = state.snapshot_generations if state.snapshots else [self.generation - 1]
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
        health = self.state.health
        return summary_rows(self.units, self.requested_units, self.best_scores, health.retired_at, health.reasons, self.generation)

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
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, local)
        else:
            gathered = [local]
        checkpoint["evolution"] = {
            **self.state.state_dict(),  # generation, history, best codes and scores, snapshots, unit health
            "labels": list(self.labels),
            "units": [u.to_dict() for u in self.units],
            "requested_units": [u.to_dict() for u in self.requested_units],
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
        self._reset_state()  # the units' labels may have come from the checkpoint
        self.state.load_state_dict(state)
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


def _say(message: str) -> None:
    """One console line on rank zero."""
    rank_zero_info(f"[neuroalign] {message}")

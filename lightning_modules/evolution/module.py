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
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from ..errors import ConfigError, MissingFileError, NeuroAlignError
from .generators.base import Generator
from .optimizers.base import EvolutionOptimizer
from .outputs import EvolutionOutputs
from .units import Unit, UnitSet

__all__ = ["EvolutionModule", "EvolutionStopped", "load_checkpoint_weights"]

#: statistics kept per generation and unit (the last four columns of scores.csv)
_STATS = ("mean", "max", "best_so_far", "sigma")


class EvolutionStopped(NeuroAlignError):
    """A unit's activation was constant or NaN over a whole population: the run stopped, state saved."""


class _Generations(IterableDataset):
    """``n`` dummy items (the generation numbers); iterable so DDP adds no sampler."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


def load_checkpoint_weights(model: nn.Module, path: str | Path, config_key: str = "model.init_args.checkpoint") -> None:
    """Load the network weights of a neuroalign Lightning checkpoint (e.g. a ``RobustFinetuneModule``
    ``.ckpt``, whose ``model.*`` keys hold the network) into ``model``; the key prefix is found automatically.
    """
    from ..zoo import load_weights, read_state_dict

    load_weights(model, read_state_dict(path, config_key), source=f"checkpoint {path}")


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
        n_generations: generations to run (generation 0 included).
        seed: seed of the optimiser (rank r of a DDP run uses ``seed + r``).
        checkpoint: a neuroalign Lightning checkpoint (e.g. of ``RobustFinetuneModule``) whose network
            weights are loaded into ``model``.
        snapshot_every: keep the best image every this many generations (montage, best PNGs, W&B).
        max_batch_size: images per generator / model forward (default: all K x n at once).
        resize_mode: interpolation used to fit the images to the model's input size.
        output_dir: folder of the evolution files; default ``<trainer.log_dir>/evolution``.
        save_weights_in_checkpoint: also store the (frozen) model and generator weights in
            checkpoints; by default they are rebuilt from the config on resume.
    """

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
    ) -> None:
        super().__init__()
        units = [Unit(**u) if isinstance(u, dict) else u for u in units]
        # plain data only in the checkpoint (torch.load(weights_only=True) must read it)
        self.save_hyperparameters(ignore=["model", "generator", "optimizer", "units"], logger=False)
        self.hparams["units"] = [u.to_dict() for u in units]
        self.automatic_optimization = False
        self.strict_loading = save_weights_in_checkpoint
        if n_generations < 1:
            raise ConfigError(f"n_generations must be >= 1, got {n_generations} (set `model.init_args.n_generations`)")
        if snapshot_every < 1:
            raise ConfigError(f"snapshot_every must be >= 1, got {snapshot_every} (set `model.init_args.snapshot_every`)")
        if max_batch_size is not None and max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size} (set `model.init_args.max_batch_size`)")
        if checkpoint:
            load_checkpoint_weights(model, checkpoint)
        self.model = model.eval().requires_grad_(False)
        self.generator = generator.eval().requires_grad_(False)
        self.optimizer_factory = optimizer
        self.n_generations = n_generations
        self.seed = seed
        self.snapshot_every = snapshot_every
        self.max_batch_size = max_batch_size
        self.output_dir = output_dir
        self.save_weights_in_checkpoint = save_weights_in_checkpoint
        self.units = list(units)
        # validates every unit against the model (one probe forward on CPU)
        side = self.generator.image_size
        self.unit_set = UnitSet(self.model, self.units, probe_size=(side, side), resize_mode=resize_mode)
        self.labels = self.unit_set.labels
        # a never-updated parameter with a no-op torch optimiser: each generation makes one optimiser
        # step, so trainer.global_step counts generations (max_steps, every_n_train_steps work), and DDP
        # finds a trainable parameter
        self._step_anchor = nn.Parameter(torch.zeros(1))
        self._local = torch.arange(len(self.units))
        self._local_units = self.unit_set
        self.evolver: EvolutionOptimizer | None = None
        self._reset_state()

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        k, d = len(self.units), self.generator.code_dim
        self.generation = 0
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
        world, rank = self.trainer.world_size, self.trainer.global_rank
        if world > len(self.units):
            raise ConfigError(f"{world} processes for {len(self.units)} units: use at most as many devices as units (trainer.devices)")
        self._local = torch.arange(len(self.units)).tensor_split(world)[rank]
        self._local_units = self.unit_set.subset(self._local.tolist())

    def _build_optimizer(self) -> EvolutionOptimizer:
        factory = self.optimizer_factory
        if factory is None:
            from .optimizers.cholesky_cmaes import CholeskyCMAES

            factory = CholeskyCMAES
        seed = self.seed + (self.trainer.global_rank if self._trainer is not None else 0)
        return factory(self.generator.code_dim, num_units=len(self._local), seed=seed, device=self.device)

    # ------------------------------------------------------------------ data / optimiser hooks
    def train_dataloader(self) -> DataLoader:
        """``n_generations`` dummy steps; a private RNG so the loader never draws from the global one."""
        return DataLoader(_Generations(self.n_generations), batch_size=None, generator=torch.Generator())

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

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """Run one generation for all units of this rank, merge the statistics over ranks, log them."""
        codes = self.evolver.ask()
        _, scores = self.evaluate(codes)
        self.evolver.tell(codes, scores)
        self.optimizers().step()  # no-op (no gradient); advances trainer.global_step
        n = scores.shape[1]
        finite = torch.isfinite(scores)
        bad_nan = (~finite).any(1)
        bad_const = (scores.amax(1) == scores.amin(1)) & (n > 1)
        local = torch.stack(
            [scores.mean(1), scores.amax(1), self.evolver.best_score, self.evolver.sigma.expand(scores.shape[0]), bad_nan.float(), bad_const.float()],
            1,
        ).float()
        merged = self._merge(torch.cat([local, self.evolver.best_code.float()], 1))
        stats, flags, best_codes = merged[:, :4].cpu(), merged[:, 4:6].cpu(), merged[:, 6:].cpu()
        self.history = torch.cat([self.history, stats[None]])
        self.best_codes = best_codes
        self.best_scores = stats[:, 2].clone()
        gen = self.generation
        self.generation += 1
        if (self.generation % self.snapshot_every == 0) or self.generation == self.n_generations:
            self.snapshots.append(self.best_codes.clone())
            self.snapshot_generations.append(gen)
        self._log_generation(gen, stats)
        if flags.any():
            self._flag_stop(gen, stats, flags, scores)
        elif self.generation >= self.n_generations:
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

    def _flag_stop(self, gen: int, stats: torch.Tensor, flags: torch.Tensor, scores: torch.Tensor) -> None:
        bad = [i for i in range(len(self.units)) if flags[i].any()]
        what = ", ".join(
            f"{self.labels[i]} ({'NaN' if flags[i, 0] else f'constant {stats[i, 0].item():.6g}'})" for i in bad
        )
        self.stop_message = (
            f"unit activation is NaN or constant over the whole population at generation {gen}: {what}; "
            f"choose another unit (`model.init_args.units`: layer/channel/position/token)"
        )
        self.trainer.should_stop = True

    # ------------------------------------------------------------------ logging and files
    def _log_generation(self, gen: int, stats: torch.Tensor) -> None:
        metrics = {f"evolution/{label}/{name}": float(stats[i, j]) for i, label in enumerate(self.labels) for j, name in enumerate(_STATS)}
        self._log_metrics(metrics, gen)

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
        out.write_scores(self.labels, self.history)
        snapshot_now = self.snapshot_generations and self.snapshot_generations[-1] == self.generation - 1
        if not (final or snapshot_now):
            return
        best_images = self._images(self.best_codes)
        out.write_best(self.labels, best_images)
        for codes in self.snapshots[len(self._snapshot_images):]:
            self._snapshot_images.append(self._images(codes))
        snaps = torch.stack(self._snapshot_images) if self.snapshots else best_images[None]
        _, grid = out.write_montage(snaps)
        wandb = [lg for lg in self.loggers if isinstance(lg, WandbLogger)]
        for logger in wandb if snapshot_now and not final else []:  # the last snapshot was logged by its step
            logger.log_image("evolution/best", images=list(best_images), caption=self.labels, step=self.generation - 1)
        if final:
            out.write_prototypes([u.to_dict() for u in self.units], self.labels, self.best_codes, best_images, self.best_scores, self.generation)
            for logger in wandb:
                logger.log_image("evolution/montage", images=[grid], caption=[f"generations {self.snapshot_generations}"])

    def on_train_end(self) -> None:
        """Write the final files; after a NaN/constant unit save the state and raise :class:`EvolutionStopped`."""
        self._write_outputs(final=True)
        if self.stop_message:
            path = self._evolution_dir() / "stopped.ckpt"
            self.trainer.save_checkpoint(path)
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
            "optimizer_states": [g["optimizer"] for g in gathered],
            "rng": [g["rng"] for g in gathered],
        }
        if not self.save_weights_in_checkpoint:
            checkpoint["state_dict"] = {
                k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(("model.", "generator."))
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the evolution state; the optimiser state and RNG are applied in :meth:`on_train_start`."""
        state = checkpoint.get("evolution")
        if state is None:
            raise ConfigError("checkpoint holds no evolution state (not written by EvolutionModule); check `--ckpt_path`")
        if list(state["labels"]) != list(self.labels):
            raise ConfigError(f"checkpoint units {state['labels']} differ from the configured units {self.labels} (`model.init_args.units`)")
        if any(s is None for s in state["optimizer_states"]):
            raise ConfigError("checkpoint was saved before the first generation; start the run afresh")
        self.generation = int(state["generation"])
        self.history = state["history"].clone()
        self.best_codes = state["best_codes"].clone()
        self.best_scores = state["best_scores"].clone()
        self.snapshots = [s.clone() for s in state["snapshots"]]
        self._snapshot_images = []
        self.snapshot_generations = list(state["snapshot_generations"])
        self._pending = {"optimizer_states": state["optimizer_states"], "rng": state["rng"]}

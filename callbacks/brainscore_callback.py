"""``BrainScoreCallback``: Brain-Score the model during training, at validation epoch end.

YAML::

    trainer:
      callbacks:
        - class_path: callbacks.BrainScoreCallback
          init_args:
            benchmarks: [synthetic:data/brainscore/synthetic]
            region_layer_map: {V1: blocks.0, V2: blocks.1, V4: blocks.2, IT: blocks.3}
            behavioral_readout_layer: blocks.3

Every ``every_n_epochs`` validation epochs (never in the sanity check, only on rank zero) it scores the
LightningModule's network (attribute ``model_attr``, default ``model``; the module itself when it
has no such attribute) and

* logs ``brainscore/<key>`` for every key of :func:`callbacks.scoring.summarize_scores`
  (``V1`` .. ``IT``, ``behavior``, ``<region>_raw``, ``<region>_ceiling``, ``average``,
  ``rho_hierarchy``) through ``pl_module.log``, i.e. every logger of the Trainer;
* writes ``<log dir>/brainscore/epoch_<N>.json`` (scores, per-benchmark details, failures);
* logs a ``brainscore/table`` W&B table when a ``WandbLogger`` is attached.

The model identifier given to benchmarks contains the global step, so brainscore-vision's
activation cache never returns stale activations. A failing benchmark is logged as a warning and
its region left out; training continues unless ``fail_on_error``. The model's train/eval modes,
device and ``requires_grad`` flags are left as found.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only
from torch import nn

from lightning_modules.errors import ConfigError

from .benchmark import CEILING_FORMULAS, REGIONS, Benchmark, ScoringContext, check_region
from .features import DEFAULT_MAX_FEATURES
from .scoring import load_benchmarks, score_benchmarks, summarize_scores

__all__ = ["BrainScoreCallback"]

log = logging.getLogger(__name__)


class BrainScoreCallback(Callback):
    """Brain-Score the model every ``every_n_epochs`` validation epochs.

    Args:
        benchmarks: brainscore-vision ids (``MajajHong2015public.IT-pls``), local benchmark folders, or
            synthetic specs (``synthetic:<folder>[#V1,IT]``, written on first use).
        region_layer_map: ``{V1: layer, V2: layer, V4: layer, IT: layer}`` (layer names of the network).
        behavioral_readout_layer: the layer read out for behavioural benchmarks.
        every_n_epochs: score every this many epochs (1 = every epoch).
        ceiling_formula: ``r2_over_ceiling`` -- r^2/ceiling, brainscore-vision 2.4.2 (default) -- or
            ``squared_r_over_ceiling`` -- (r/ceiling)^2, earlier releases and the 2022 leaderboard.
        fail_on_error: raise when a benchmark fails (default: log a warning, keep training).
        model_attr: attribute of the LightningModule holding the network (fallback: the module itself).
        batch_size: images per forward pass while scoring.
        max_features: wider layers are randomly projected to this many features (``None``: never).
        model_visual_degrees: field of view of the model's input in degrees.
        run_name: prefix of the model identifier (default: the logger's name/version).
    """

    def __init__(
        self,
        benchmarks: list[str],
        region_layer_map: dict[str, str],
        behavioral_readout_layer: str | None = None,
        every_n_epochs: int = 1,
        ceiling_formula: Literal["r2_over_ceiling", "squared_r_over_ceiling"] = "r2_over_ceiling",
        fail_on_error: bool = False,
        model_attr: str = "model",
        batch_size: int = 64,
        max_features: int | None = DEFAULT_MAX_FEATURES,
        model_visual_degrees: float = 8.0,
        run_name: str | None = None,
    ) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ConfigError(f"every_n_epochs must be >= 1, got {every_n_epochs} (BrainScoreCallback `every_n_epochs`)")
        if ceiling_formula not in CEILING_FORMULAS:
            raise ConfigError(
                f"ceiling_formula {ceiling_formula!r} is invalid (BrainScoreCallback `ceiling_formula`); "
                f"valid: {', '.join(CEILING_FORMULAS)}"
            )
        if not benchmarks:
            raise ConfigError("BrainScoreCallback needs at least one benchmark (`benchmarks`)")
        for region in region_layer_map:
            check_region(region, "BrainScoreCallback `region_layer_map`", allow_behavior=False)
        self.benchmark_specs = list(benchmarks)
        self.region_layer_map = dict(region_layer_map)
        self.behavioral_readout_layer = behavioral_readout_layer
        self.every_n_epochs = every_n_epochs
        self.ceiling_formula = ceiling_formula
        self.fail_on_error = fail_on_error
        self.model_attr = model_attr
        self.batch_size = batch_size
        self.max_features = max_features
        self.model_visual_degrees = model_visual_degrees
        self.run_name = run_name
        self._benchmarks: list[Benchmark] | None = None
        #: {epoch: scores} of every scored epoch (restored on resume)
        self.history: dict[int, dict[str, float]] = {}

    @property
    def state_key(self) -> str:
        return self._generate_state_key(benchmarks=tuple(self.benchmark_specs), region_layer_map=tuple(sorted(self.region_layer_map.items())))

    # ------------------------------------------------------------------ helpers
    def benchmarks(self) -> list[Benchmark]:
        """The benchmark objects (loaded, and the synthetic benchmark written, on first use)."""
        if self._benchmarks is None:
            self._benchmarks = load_benchmarks(self.benchmark_specs)
        return self._benchmarks

    def _network(self, pl_module: LightningModule) -> nn.Module:
        net = getattr(pl_module, self.model_attr, None) if self.model_attr else None
        return net if isinstance(net, nn.Module) else pl_module

    def _identifier(self, trainer: Trainer) -> str:
        name = self.run_name
        if name is None and trainer.logger is not None:
            name = f"{trainer.logger.name}-{trainer.logger.version}"
        return f"{name or 'neuroalign'}-epoch{trainer.current_epoch}-step{trainer.global_step}"

    @staticmethod
    def _log_dir(trainer: Trainer) -> Path:
        return Path(trainer.log_dir or trainer.default_root_dir) / "brainscore"

    def _due(self, trainer: Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    # ------------------------------------------------------------------- hooks
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self.benchmarks()  # fail early on bad benchmark folders; write the synthetic benchmark

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._due(trainer) or not trainer.is_global_zero:
            return
        scores, details = self._score(trainer, pl_module)
        if scores:
            for key, value in scores.items():  # the average is also shown on the progress bar / per-epoch line
                pl_module.log(f"brainscore/{key}", value, prog_bar=key == "average", rank_zero_only=True, sync_dist=False)
        self.history[trainer.current_epoch] = scores
        self._write(trainer, scores, details)

    def _score(self, trainer: Trainer, pl_module: LightningModule) -> tuple[dict[str, float], dict[str, Any]]:
        context = ScoringContext(
            model_identifier=self._identifier(trainer),
            ceiling_formula=self.ceiling_formula,
            model_visual_degrees=self.model_visual_degrees,
            batch_size=self.batch_size,
        )
        start = time.perf_counter()
        try:
            region_scores, failures = score_benchmarks(
                self._network(pl_module),
                self.benchmarks(),
                self.region_layer_map,
                self.behavioral_readout_layer,
                context,
                self.max_features,
                fail_on_error=self.fail_on_error,
            )
        except Exception as err:  # noqa: BLE001 -- reported, training continues unless fail_on_error
            if self.fail_on_error:
                raise
            log.warning("Brain-Score scoring failed at epoch %d: %s", trainer.current_epoch, err)
            region_scores, failures = [], {"all": f"{type(err).__name__}: {err}"}
        scores = summarize_scores(region_scores)
        details = {
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "model_identifier": context.model_identifier,
            "ceiling_formula": self.ceiling_formula,
            "seconds": round(time.perf_counter() - start, 3),
            "benchmarks": [s.to_dict() for s in region_scores],
            "failures": failures,
        }
        return scores, details

    @rank_zero_only
    def _write(self, trainer: Trainer, scores: dict[str, float], details: dict[str, Any]) -> None:
        folder = self._log_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"epoch_{trainer.current_epoch}.json"
        path.write_text(json.dumps({"scores": scores, **details}, indent=2))
        try:
            from lightning.pytorch.loggers import WandbLogger
        except ImportError:  # pragma: no cover
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                keys = [*REGIONS, "behavior", "average", "rho_hierarchy"]
                logger.log_table(
                    key="brainscore/table",
                    columns=["epoch", "step", *keys],
                    data=[[trainer.current_epoch, trainer.global_step, *(scores.get(k) for k in keys)]],
                )

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {"history": {int(k): dict(v) for k, v in self.history.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = {int(k): dict(v) for k, v in state_dict.get("history", {}).items()}

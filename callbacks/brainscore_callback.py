"""``BrainScoreCallback``: Brain-Score the model during training, at validation epoch end.

YAML::

    trainer:
      callbacks:
        - class_path: callbacks.BrainScoreCallback
          init_args:
            benchmarks: [synthetic:data/brainscore/synthetic]
            region_layer_map: {V1: blocks.0, V2: blocks.1, V4: blocks.2, IT: blocks.3}
            behavioral_readout_layer: blocks.3

Before any training (``setup`` of ``fit`` / ``validate``) it loads the benchmarks (writing the
synthetic one on first use, loading brainscore-vision benchmarks with their data) and checks the
region names, every layer of ``region_layer_map`` and ``behavioral_readout_layer`` against the
network, that every benchmark's region is known (inferred, or set in ``benchmark_regions``) and has
its layer, and that brainscore-vision's data is there (missing files fail within seconds offline); a
problem stops the run there with a one-line error naming the key.

Every ``every_n_epochs`` validation epochs (never in the sanity check) it scores, on rank zero, the
LightningModule's network (attribute ``model_attr``, default ``model``; the module itself when it
has no such attribute) and

* logs ``brainscore/<key>`` for every key of :func:`callbacks.brainscore.engine.summarize_scores`
  (``V1`` .. ``IT``, ``behavior``, ``<region>_raw``, ``<region>_ceiling``, ``average``,
  ``rho_hierarchy``; several benchmarks of a region are averaged) and
  ``brainscore/<region>/<benchmark id>`` for each benchmark, through ``pl_module.log``, i.e. every
  logger of the Trainer;
* writes ``<log dir>/brainscore/epoch_<N>.json`` (scores, per-benchmark scores and details, failures);
* logs the ``brainscore/table`` W&B table when a ``WandbLogger`` is attached: one row per scored epoch
  so far (``epoch``, ``step``, the region scores, ``behavior``, ``average``, ``rho_hierarchy``).

Layer profiles (``profile_layers: [names or globs]``): at every scoring epoch each candidate layer is also
scored on every region's benchmarks, from the same forward pass as the mapped layers, and each region's best
layer is chosen on held-out CV splits (:mod:`callbacks.brainscore.profile`: the first
``profile_selection_splits`` of each benchmark's splits select, the rest report). Globs are expanded against
the network's module names at setup (one that matches nothing stops the run there, naming it and the nearest
layer names), and every benchmark must give per-split scores (a cross-validated metric). Per epoch:

* logged: ``brainscore/<region>_profile_selected`` (the best layer's selection-split score),
  ``brainscore/<region>_profile_reported`` (its report-split score, the one to quote) and
  ``brainscore/<region>_best_layer_index`` (the best layer's position among the candidates, model order);
* in ``epoch_<N>.json``: those keys and ``<region>_best_layer`` (the layer name) under ``scores``, and the whole
  profile (every layer's ``selected``, ``reported`` and all-split ``ceiled`` score) under ``profile``;
* ``<log dir>/brainscore/profile.png``: the region x layer x epoch heatmap of every scored epoch so far, and
  ``<log dir>/brainscore/profile_region_layer_map.yaml``: the latest epoch's best layers, ready to paste as
  ``region_layer_map`` / ``behavioral_readout_layer``;
* with a ``WandbLogger``: the heatmap as the ``brainscore/profile`` image and the ``brainscore/profile_table``
  table (one row per epoch, region and layer: :data:`callbacks.brainscore.profile.PROFILE_COLUMNS`).

Candidate layers a benchmark fails on are warned and left out of that region's ranking (listed under
``profile.failures`` in the epoch JSON); with ``fail_on_error: true`` they stop the run.

Under DDP, the other ranks wait for rank zero's scores outside any collective (polling the process
group's key-value store, :mod:`callbacks.brainscore.rank_zero`), so a scoring pass longer than the
process-group timeout does not kill the run, and every rank logs the same values.

The model identifier given to benchmarks contains the run name and the global step, and
brainscore-vision benchmarks add a hash of the weights and the input size, so brainscore-vision's
caches never return stale activations. The model's train/eval modes, device and
``requires_grad`` flags are left as found.

A benchmark that fails while scoring (``fail_on_error``):

* ``true``: the run stops at the first failure with a one-line error;
* ``null`` (default): each failure is warned at its epoch and training goes on; at the end of fit
  (or of ``validate``) a summary line lists every failure, and the run fails with a one-line error
  (exit status 2) when some benchmark never scored -- it failed at every scored epoch, e.g. every
  scoring failed;
* ``false`` (set explicitly): each failure is warned at its epoch, the summary line is a warning and
  the run ends normally even when nothing ever scored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only
from torch import nn

from neuroalign.core.errors import ConfigError, NeuroAlignError

from callbacks.brainscore.benchmarks.base import Benchmark
from callbacks.brainscore.benchmarks.local_neural import LocalNeuralBenchmark
from callbacks.brainscore.engine import (
    SCORING_ERRORS,
    benchmark_scores,
    check_benchmarks,
    check_feature_budget,
    check_layers,
    load_benchmarks,
    score_round,
    summarize_scores,
)
from callbacks.brainscore.features import DEFAULT_MAX_FEATURES
from callbacks.brainscore.profile import (
    DEFAULT_SELECTION_SPLITS,
    PROFILE_COLUMNS,
    best_layers,
    check_profile_benchmarks,
    check_selection_splits,
    plot_profiles,
    profile_rows,
    profile_scores,
    region_layer_map_text,
    region_profiles,
    resolve_profile_layers,
    selection_rule,
)
from callbacks.brainscore.rank_zero import share_from_rank_zero
from callbacks.brainscore.types import BEHAVIOR, REGIONS, Engine, ScoringContext, check_ceiling_formula, check_engine, check_region

__all__ = ["BrainScoreCallback", "TABLE_COLUMNS"]

log = logging.getLogger(__name__)

#: columns of the ``brainscore/table`` W&B table (one row per scored epoch)
TABLE_COLUMNS: tuple[str, ...] = ("epoch", "step", *REGIONS, BEHAVIOR, "average", "rho_hierarchy")
#: the config key named in this callback's messages
KEY = "BrainScoreCallback"


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
        fail_on_error: ``None`` (default): warn each failing benchmark, keep training, list the failures
            at the end of fit and fail the run (one-line error) if a benchmark never scored; ``True``:
            stop at the first failure; ``False``: only warn, at every epoch and in the end summary.
        model_attr: attribute of the LightningModule holding the network (fallback: the module itself).
        batch_size: images per forward pass while scoring.
        max_features: ``None`` (default) keeps layers whole (exact); an int projects wider layers to that many features (an approximation).
        model_visual_degrees: field of view of the model's input in degrees.
        run_name: prefix of the model identifier (default: the logger's name/version).
        benchmark_regions: ``{brainscore-vision id: region}`` for benchmarks whose region is not inferred
            (see :mod:`callbacks.brainscore.bsv_registry` for the inference order).
        engine: how brainscore-vision benchmarks are scored: ``fast`` (default) -- their own data, splits and
            ceiling, with the callback's one feature pass and torch fits, for the types the fast engine reads
            (:mod:`callbacks.brainscore.benchmarks.bsv_fast`; other types fall back with one log line) -- or
            ``brainscore-vision`` -- its own model interface and metrics for every id.
        metric: the metric of every local neural benchmark, replacing ``metric`` of its benchmark.yaml:
            ``pls``, ``ridge``, ``ridgecv``, ``linear``, ``neuron_to_neuron``, ``cka``, ``cka_cv``, ``rdm`` or
            ``rdm_cv`` (:mod:`callbacks.brainscore.metrics.neural_metric`: cross-validation, ceilings);
            brainscore-vision benchmarks keep their own metric, behavioural ones their i2n.
        metric_args: arguments of ``metric`` (e.g. ``{alphas: [0.1, 1, 10]}`` for ``ridgecv``).
        benchmark_metrics: ``{local benchmark id: metric}`` for single benchmarks (wins over ``metric``).
        profile_layers: candidate layer names or globs (``blocks.*.norm1``) profiled at every scoring epoch
            (see module doc); ``None`` (default): no profile.
        profile_selection_splits: fraction (strictly between 0 and 1) of each benchmark's CV splits, the first
            ones, that select each region's best layer; the other splits give its reported score.
    """

    def __init__(
        self,
        benchmarks: list[str],
        region_layer_map: dict[str, str],
        behavioral_readout_layer: str | None = None,
        every_n_epochs: int = 1,
        ceiling_formula: Literal["r2_over_ceiling", "squared_r_over_ceiling"] = "r2_over_ceiling",
        fail_on_error: bool | None = None,
        model_attr: str = "model",
        batch_size: int = 64,
        max_features: int | None = DEFAULT_MAX_FEATURES,
        model_visual_degrees: float = 8.0,
        run_name: str | None = None,
        benchmark_regions: dict[str, str] | None = None,
        engine: Engine = "fast",
        metric: str | None = None,
        metric_args: dict[str, Any] | None = None,
        benchmark_metrics: dict[str, str] | None = None,
        profile_layers: list[str] | None = None,
        profile_selection_splits: float = DEFAULT_SELECTION_SPLITS,
    ) -> None:
        super().__init__()
        check_engine(engine, f"{KEY} `engine`")
        if every_n_epochs < 1:
            raise ConfigError(f"every_n_epochs must be >= 1, got {every_n_epochs} (BrainScoreCallback `every_n_epochs`)")
        check_ceiling_formula(ceiling_formula, f"{KEY} `ceiling_formula`")
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
        self.benchmark_regions = dict(benchmark_regions or {})
        self.engine = engine
        self.metric = metric
        self.metric_args = dict(metric_args) if metric_args is not None else None
        self.benchmark_metrics = dict(benchmark_metrics or {})
        for bid, region in self.benchmark_regions.items():
            check_region(region, f"{KEY} `benchmark_regions.{bid}`")
        if profile_layers is not None and not profile_layers:
            raise ConfigError(f"{KEY} `profile_layers` is empty: list layer names or globs, or leave it null")
        self.profile_layers = list(profile_layers) if profile_layers else None
        self.profile_selection_splits = check_selection_splits(profile_selection_splits, f"{KEY} `profile_selection_splits`")
        self._profile_names: list[str] | None = None
        #: {epoch: profile} of every scored epoch (restored on resume; format: callbacks.brainscore.profile)
        self.profile_history: dict[int, dict[str, Any]] = {}
        #: {epoch: global step} of the profiled epochs (restored on resume)
        self.profile_steps: dict[int, int] = {}
        self._benchmarks: list[Benchmark] | None = None
        #: {epoch: scores} of every scored epoch (restored on resume)
        self.history: dict[int, dict[str, float]] = {}
        #: {epoch: {benchmark id: error}} of every scored epoch with failures (restored on resume)
        self.failures: dict[int, dict[str, str]] = {}
        #: rows of the ``brainscore/table`` W&B table, one per scored epoch (restored on resume)
        self.table_rows: list[list[Any]] = []
        self._rounds = 0

    @property
    def state_key(self) -> str:
        return self._generate_state_key(benchmarks=tuple(self.benchmark_specs), region_layer_map=tuple(sorted(self.region_layer_map.items())))

    # ------------------------------------------------------------------ helpers
    def benchmarks(self) -> list[Benchmark]:
        """The benchmark objects (loaded, and the synthetic benchmark written, on first use)."""
        if self._benchmarks is None:
            self._benchmarks = load_benchmarks(
                self.benchmark_specs, self.benchmark_regions, self.engine,
                self.metric, self.metric_args, self.benchmark_metrics, config_key=KEY,
            )
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

    def check(self, pl_module: LightningModule) -> list[Benchmark]:
        """Load the benchmarks and check them against the network: one-line ``ConfigError`` naming the key.

        Checks the layers of ``region_layer_map`` and ``behavioral_readout_layer`` (nearest names
        suggested) and that every benchmark's region is known and mapped. Loading reports unknown
        benchmarks (nearest registered ids), bad folders, bad region names and brainscore-vision data
        missing offline, and features that would not fit in memory.
        """
        check_layers(self._network(pl_module), self.region_layer_map, self.behavioral_readout_layer, config_key=KEY)
        names = self.profile_names(pl_module)
        benchmarks = self.benchmarks()
        check_benchmarks(benchmarks, self.region_layer_map, self.behavioral_readout_layer, config_key=KEY)
        if names:
            check_profile_benchmarks(benchmarks, f"{KEY} `profile_layers`")
        check_feature_budget(
            self._network(pl_module), benchmarks, self.region_layer_map, self.behavioral_readout_layer, self.max_features,
            config_key=KEY, profile_layers=names,
        )
        return benchmarks

    def profile_names(self, pl_module: LightningModule) -> list[str]:
        """The candidate layers of ``profile_layers``, globs expanded against the network, in model order ([] without)."""
        if not self.profile_layers:
            return []
        if self._profile_names is None:
            self._profile_names = resolve_profile_layers(self._network(pl_module), self.profile_layers, f"{KEY} `profile_layers`")
        return self._profile_names

    # ------------------------------------------------------------------- hooks
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage not in (TrainerFn.FITTING, TrainerFn.VALIDATING):
            return  # the callback scores nothing in test / predict

        def check() -> None:  # writes the synthetic benchmark and loads data: rank zero only
            self.check(pl_module)

        # the other ranks wait outside any collective (loading data may outlast the process-group timeout)
        # and stop together with rank zero when the check fails
        share_from_rank_zero(check, self._key("setup", trainer))
        if stage == TrainerFn.FITTING and trainer.max_epochs is not None and 0 <= trainer.max_epochs < self.every_n_epochs:
            log.warning(
                "BrainScoreCallback scores every %d epochs but the run has max_epochs=%d: it will score nothing "
                "(BrainScoreCallback `every_n_epochs`)", self.every_n_epochs, trainer.max_epochs,
            )

    def _key(self, what: str, trainer: Trainer) -> str:
        """A store key no earlier step of this callback used, the same on every rank."""
        self._rounds += 1
        name = hashlib.sha1(self.state_key.encode()).hexdigest()[:10]
        where = f"{trainer.state.fn}/{trainer.current_epoch}/{trainer.global_step}"
        return f"neuroalign/brainscore/{name}/{what}/{where}/{self._rounds}"

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._due(trainer):
            return
        # rank zero scores; the others wait outside any collective and log the same values
        scores, details = share_from_rank_zero(lambda: list(self._score(trainer, pl_module)), self._key("score", trainer))
        if scores:
            logged = {**scores, **details["benchmark_scores"]}
            for key, value in logged.items():  # the average is also shown on the progress bar / per-epoch line
                pl_module.log(f"brainscore/{key}", value, prog_bar=key == "average", sync_dist=False)
        self.history[trainer.current_epoch] = scores
        if details["failures"]:
            self.failures[trainer.current_epoch] = dict(details["failures"])
        self.table_rows.append([trainer.current_epoch, trainer.global_step, *(scores.get(k) for k in TABLE_COLUMNS[2:])])
        if details.get("profile") is not None and details["profile"]["regions"]:
            self.profile_history[trainer.current_epoch] = details["profile"]["regions"]
            self.profile_steps[trainer.current_epoch] = trainer.global_step
        folder = self._log_dir(trainer)  # on every rank: `trainer.log_dir` is a collective under DDP
        self._write(trainer, folder, scores, details)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING and not trainer.sanity_checking:
            self._finish(trainer)

    def _score(self, trainer: Trainer, pl_module: LightningModule) -> tuple[dict[str, float], dict[str, Any]]:
        names = self.profile_names(pl_module)
        context = ScoringContext(
            model_identifier=self._identifier(trainer),
            ceiling_formula=self.ceiling_formula,
            model_visual_degrees=self.model_visual_degrees,
            batch_size=self.batch_size,
        )
        start = time.perf_counter()
        layer_scores, layer_failures = {}, {}
        try:
            done = score_round(
                self._network(pl_module),
                self.benchmarks(),
                self.region_layer_map,
                self.behavioral_readout_layer,
                context,
                self.max_features,
                fail_on_error=bool(self.fail_on_error),
                profile_layers=names,
            )
            region_scores, failures = done.scores, done.failures
            layer_scores, layer_failures = done.layer_scores, done.layer_failures
        except Exception as err:  # noqa: BLE001 -- reported, training continues unless fail_on_error
            if self.fail_on_error:
                if isinstance(err, NeuroAlignError) or not isinstance(err, SCORING_ERRORS):
                    raise  # a user error is one line already; anything else is a bug: its traceback
                raise ConfigError(
                    f"Brain-Score scoring failed at epoch {trainer.current_epoch}: {type(err).__name__}: {err} "
                    f"({KEY} `fail_on_error: true` stops at the first failure)"
                ) from err
            log.warning("Brain-Score scoring failed at epoch %d: %s", trainer.current_epoch, err)
            ids = [b.identifier for b in self.benchmarks()]
            region_scores, failures = [], {bid: f"{type(err).__name__}: {err}" for bid in ids}
        scores = summarize_scores(region_scores)
        profile = None
        if names:
            try:
                regions = region_profiles(layer_scores, names, self.profile_selection_splits)
            except NeuroAlignError as err:  # e.g. a benchmark without per-split scores
                if self.fail_on_error:
                    raise
                log.warning("Brain-Score layer profile failed at epoch %d: %s", trainer.current_epoch, err)
                regions, layer_failures = {}, {**layer_failures, "profile": f"{type(err).__name__}: {err}"}
            scores.update(profile_scores(regions, names))
            profile = {"layers": names, "selection_splits": self.profile_selection_splits, "regions": regions, "failures": layer_failures}
        details = {
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "model_identifier": context.model_identifier,
            "ceiling_formula": self.ceiling_formula,
            "seconds": round(time.perf_counter() - start, 3),
            "benchmark_scores": benchmark_scores(region_scores),
            "benchmarks": [s.to_dict() for s in region_scores],
            "failures": failures,
            "profile": profile,
        }
        return scores, details

    # ----------------------------------------------------------------- summary
    def summary(self) -> tuple[str | None, list[str]]:
        """The end-of-run line listing every failure (``None`` without failures) and the benchmarks that never scored."""
        if not self.failures:
            return None, []
        by_bench: dict[str, list[int]] = {}
        last: dict[str, str] = {}
        for epoch in sorted(self.failures):
            for bench, error in self.failures[epoch].items():
                by_bench.setdefault(bench, []).append(epoch)
                last[bench] = error
        scored = sorted(self.history)
        never = [b for b, epochs in by_bench.items() if set(scored) <= set(epochs)]
        parts = [f"{b} failed at epoch(s) {', '.join(map(str, epochs))} (last: {last[b]})" for b, epochs in by_bench.items()]
        line = f"Brain-Score failures in {len(self.failures)} of {len(scored)} scored epoch(s): {'; '.join(parts)}"
        return line, never

    def _finish(self, trainer: Trainer) -> None:
        """End of fit / validate: the summary line; a one-line error when a benchmark never scored (``fail_on_error: null``)."""
        message = None
        if trainer.is_global_zero:
            line, never = self.summary()
            if not self.history and trainer.state.fn == TrainerFn.FITTING:
                log.warning("BrainScoreCallback scored no epoch (every_n_epochs=%d, %d epoch(s) ran)", self.every_n_epochs, trainer.current_epoch)
            if line is not None and never and self.fail_on_error is None:
                message = (
                    f"{line}. {', '.join(never)} never scored: fix the benchmark or the `region_layer_map`, "
                    f"or set {KEY} `fail_on_error: false` to end such a run without error"
                )
            elif line is not None:
                log.warning(line)
        message = trainer.strategy.broadcast(message, src=0)  # every rank fails together
        if message is not None:
            raise ConfigError(message)

    @rank_zero_only
    def _write(self, trainer: Trainer, folder: Path, scores: dict[str, float], details: dict[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"epoch_{trainer.current_epoch}.json"
        profile = details.get("profile")
        regions = profile["regions"] if profile else {}
        names = {f"{region}_best_layer": layer for region, layer in best_layers(regions).items()}
        path.write_text(json.dumps({"scores": {**scores, **names}, **details}, indent=2))
        figure = self._write_profile(trainer, folder, profile["layers"]) if regions else None
        try:
            from lightning.pytorch.loggers import WandbLogger
        except ImportError:  # pragma: no cover
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                # every scored epoch so far: W&B shows the latest version of the table
                logger.log_table(key="brainscore/table", columns=list(TABLE_COLUMNS), data=[list(row) for row in self.table_rows])
                if figure is not None:
                    logger.log_image(key="brainscore/profile", images=[str(figure)], caption=[f"epoch {trainer.current_epoch}"])
                    rows = profile_rows(self.profile_history, self.profile_steps, profile["layers"])
                    logger.log_table(key="brainscore/profile_table", columns=list(PROFILE_COLUMNS), data=rows)

    def _write_profile(self, trainer: Trainer, folder: Path, layers: list[str]) -> Path:
        """The heatmap of every profiled epoch and the latest epoch's ``region_layer_map`` YAML; returns the PNG."""
        epoch = trainer.current_epoch
        header = f"BrainScoreCallback layer profile, epoch {epoch} (step {trainer.global_step}); {selection_rule(self.profile_selection_splits)}"
        (folder / "profile_region_layer_map.yaml").write_text(region_layer_map_text(best_layers(self.profile_history[epoch]), header))
        return plot_profiles(self.profile_history, layers, folder / "profile.png")

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {
            "history": {int(k): dict(v) for k, v in self.history.items()},
            "failures": {int(k): dict(v) for k, v in self.failures.items()},
            "table_rows": [list(row) for row in self.table_rows],
            "profile_history": {int(k): v for k, v in self.profile_history.items()},
            "profile_steps": {int(k): int(v) for k, v in self.profile_steps.items()},
            "metrics": self._metrics(),
        }

    def _metrics(self) -> dict[str, dict[str, Any]]:
        """``{local neural benchmark id: its metric}`` of the loaded benchmarks (what the history was scored with)."""
        return {b.identifier: b.metric.describe() for b in self._benchmarks or [] if isinstance(b, LocalNeuralBenchmark)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the history; a resume that would score a local benchmark with another metric is refused."""
        saved, now = state_dict.get("metrics", {}), self._metrics()
        changed = [bid for bid in saved if bid in now and saved[bid] != now[bid]]
        if changed:
            bid = changed[0]
            raise ConfigError(
                f"the checkpoint's Brain-Score history of {bid} was scored with {saved[bid]}, this run asks for {now[bid]}; "
                f"resume with the same {KEY} `metric` / `benchmark_metrics` (or benchmark.yaml), or start a new run"
            )
        self.history = {int(k): dict(v) for k, v in state_dict.get("history", {}).items()}
        self.failures = {int(k): dict(v) for k, v in state_dict.get("failures", {}).items()}
        self.table_rows = [list(row) for row in state_dict.get("table_rows", [])]
        self.profile_history = {int(k): v for k, v in state_dict.get("profile_history", {}).items()}
        self.profile_steps = {int(k): int(v) for k, v in state_dict.get("profile_steps", {}).items()}

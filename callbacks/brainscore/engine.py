"""The scoring engine: score any [0,1]-input ``nn.Module`` on a mix of benchmarks, without a Trainer.

Benchmarks are :class:`~callbacks.brainscore.benchmarks.base.Benchmark` objects or strings (:func:`load_benchmark`):

* ``synthetic`` / ``synthetic:<folder>`` / ``synthetic:<folder>#V1,IT,behavior`` -- the synthetic
  benchmark of :mod:`callbacks.brainscore.benchmarks.synthetic` in ``<folder>`` (default ``data/brainscore/synthetic``
  under the working directory), written on first use with default parameters; ``#...`` picks
  regions (default: V1, V2, V4, IT and behavior);
* an existing folder -- a local benchmark (:func:`callbacks.brainscore.benchmarks.local.open_local_benchmark`);
* anything else -- any brainscore-vision benchmark id such as ``MajajHong2015public.IT-pls``
  (:class:`callbacks.brainscore.benchmarks.brainscore_vision.BrainScoreVisionBenchmark`; brainscore-vision
  itself is imported only when such a benchmark loads); its region is inferred from the benchmark
  unless ``benchmark_regions: {id: region}`` names it. With ``engine="fast"`` (the default) the types the
  fast engine reads (:mod:`callbacks.brainscore.benchmarks.bsv_fast`) become feature benchmarks like the
  local ones; ``engine="brainscore-vision"`` scores every such id through brainscore-vision's model interface.

Feature benchmarks (local, synthetic and fast brainscore-vision ones) showing the same images share one
feature-extraction pass
(:func:`callbacks.brainscore.features.extract_features`); every layer a stimulus set needs comes from the same
forward pass. Results: ``{region}`` (ceiled), ``{region}_raw``, ``{region}_ceiling`` for each scored
region, ``average`` (mean ceiled score of the scored regions among V1, V2, V4, IT, behavior) and
``rho_hierarchy`` (Spearman rank correlation of the V1, V2, V4, IT scores with 1..4; present when at
least two neural regions are scored and the correlation is defined). A region that was not scored is
absent -- never NaN. Several benchmarks of one region are averaged, as the Brain-Score leaderboard
does; :func:`benchmark_scores` keeps each benchmark's ceiled score as ``<region>/<benchmark id>``.

:func:`score_round` also scores every feature benchmark at extra candidate layers (``profile_layers``) from
the same forward pass -- what a region x layer profile (:mod:`callbacks.brainscore.profile`) and the layer
sweep read.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neuroalign.core.errors import ConfigError, NeuroAlignError
from neuroalign.core.layers import TokenReduction, get_layer
from neuroalign.core.modules import module_device
from neuroalign.core.output_paths import output_dir

from callbacks.brainscore.benchmarks.base import Benchmark, FeatureBenchmark
from callbacks.brainscore.benchmarks.brainscore_vision import BrainScoreVisionBenchmark
from callbacks.brainscore.benchmarks.local import open_local_benchmark
from callbacks.brainscore.benchmarks.local_neural import LocalNeuralBenchmark
from callbacks.brainscore.benchmarks.synthetic import make_synthetic_benchmark, synthetic_benchmark_dirs
from callbacks.brainscore.features import DEFAULT_MAX_FEATURES, check_feature_memory, extract_features
from callbacks.brainscore.types import (
    BEHAVIOR,
    REGIONS,
    Engine,
    RegionScore,
    ScoringContext,
    check_ceiling_formula,
    check_engine,
    check_region,
)

__all__ = [
    "DEFAULT_SYNTHETIC_DIR",
    "SCORING_ERRORS",
    "check_benchmarks",
    "check_layers",
    "load_benchmark",
    "load_benchmarks",
    "apply_metrics",
    "check_feature_budget",
    "benchmark_features",
    "ScoringRound",
    "score_round",
    "score_benchmarks",
    "summarize_scores",
    "benchmark_scores",
    "score_model",
]

log = logging.getLogger(__name__)

#: errors that count as one benchmark's failure (brainscore-vision reports bad data with assertions and key errors)
SCORING_ERRORS: tuple[type[Exception], ...] = (NeuroAlignError, ValueError, RuntimeError, ImportError, OSError, AssertionError, KeyError)

#: where ``synthetic`` (without a folder) writes the synthetic benchmark
DEFAULT_SYNTHETIC_DIR = "data/brainscore/synthetic"


def load_benchmark(
    spec: str | Benchmark, benchmark_regions: Mapping[str, str] | None = None, engine: Engine = "fast"
) -> list[Benchmark]:
    """Turn one benchmark spec (see module doc) into benchmark objects.

    Args:
        spec: a synthetic spec, a local benchmark folder, a brainscore-vision id or a benchmark object.
        benchmark_regions: ``{brainscore-vision id: region}`` for benchmarks whose region is not inferred.
        engine: how brainscore-vision benchmarks are scored (:data:`~callbacks.brainscore.types.ENGINES`);
            local and synthetic benchmarks are always scored by neuroalign's engine.
    """
    check_engine(engine)
    if isinstance(spec, Benchmark):
        return [spec]
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"benchmark {spec!r} must be a brainscore-vision id, a folder or a synthetic spec (`benchmarks`)")
    if spec == "synthetic" or spec.startswith("synthetic:"):
        body = spec.partition(":")[2]
        folder, _, regions = body.partition("#")
        folder = folder or DEFAULT_SYNTHETIC_DIR
        wanted = [r.strip() for r in regions.split(",") if r.strip()] or [*REGIONS, BEHAVIOR]
        for region in wanted:
            check_region(region, f"benchmarks: {spec}")
        if not (Path(folder) / "manifest.yaml").is_file():
            log.info("writing the synthetic benchmark to %s", folder)
            output_dir(folder, f"benchmarks: synthetic:{folder}")  # unwritable: one line naming the folder and the spec
            make_synthetic_benchmark(folder)
        dirs = synthetic_benchmark_dirs(folder)
        return [open_local_benchmark(dirs[region]) for region in wanted]
    if Path(spec).is_dir() or "/" in spec or spec.startswith("."):
        return [open_local_benchmark(spec)]
    return [BrainScoreVisionBenchmark(spec, region=(benchmark_regions or {}).get(spec), engine=engine)]


def load_benchmarks(
    specs: Sequence[str | Benchmark] | str | Benchmark,
    benchmark_regions: Mapping[str, str] | None = None,
    engine: Engine = "fast",
    metric: str | None = None,
    metric_args: Mapping[str, Any] | None = None,
    benchmark_metrics: Mapping[str, str] | None = None,
    config_key: str = "",
) -> list[Benchmark]:
    """:func:`load_benchmark` for each spec (``engine`` as there), flattened; metric overrides applied.

    Args:
        specs, benchmark_regions, engine: as :func:`load_benchmark`.
        metric, metric_args, benchmark_metrics: metric overrides of local neural benchmarks
            (:func:`apply_metrics`).
        config_key: prefix of the keys named in error lines (e.g. ``BrainScoreCallback``).

    Raises:
        ConfigError: ``benchmark_regions`` names a benchmark that is not in ``specs``, a bad region, or a
            bad metric override.
    """
    if isinstance(specs, (str, Benchmark)):
        specs = [specs]
    regions = dict(benchmark_regions or {})
    names = {spec if isinstance(spec, str) else spec.identifier for spec in specs}
    stray = [bid for bid in regions if bid not in names]
    if stray:
        raise ConfigError(f"`benchmark_regions` names {', '.join(stray)}, which `benchmarks` does not list")
    for bid, region in regions.items():
        check_region(region, f"benchmark_regions.{bid}")
    benchmarks = [bench for spec in specs for bench in load_benchmark(spec, regions, engine)]
    apply_metrics(benchmarks, metric, metric_args, benchmark_metrics, config_key)
    return benchmarks


def apply_metrics(
    benchmarks: Sequence[Benchmark],
    metric: str | None = None,
    metric_args: Mapping[str, Any] | None = None,
    benchmark_metrics: Mapping[str, str] | None = None,
    config_key: str = "",
) -> None:
    """Make local neural benchmarks score with the metric asked for, checked before any extraction.

    ``metric`` (with ``metric_args``) replaces the ``metric`` of every local neural benchmark's
    ``benchmark.yaml``; ``benchmark_metrics`` ``{identifier: metric}`` replaces it for the benchmarks it
    names (it wins over ``metric``). brainscore-vision benchmarks keep their own metric (their id names
    it) and behavioural benchmarks their i2n.

    Raises:
        ConfigError: an unknown metric or argument, ``benchmark_metrics`` naming a benchmark that is not
            loaded or is not a local neural one, or ``metric`` with no local neural benchmark to apply to.
    """
    prefix = f"{config_key} " if config_key else ""
    where = f" of {config_key}" if config_key else ""
    local = {b.identifier: b for b in benchmarks if isinstance(b, LocalNeuralBenchmark)}
    if metric_args is not None and metric is None:
        raise ConfigError(f"{prefix}`metric_args` is set without `metric`; set `metric` too (or put metric_args in benchmark.yaml)")
    if metric is not None:
        if not local:
            raise ConfigError(
                f"{prefix}`metric` applies to local neural benchmarks and `benchmarks` has none "
                "(brainscore-vision benchmarks keep their own metric: pick the id that names it, e.g. ...-pls)"
            )
        for bench in local.values():
            bench.use_metric(metric, metric_args, "metric", where)
    for bid, name in (benchmark_metrics or {}).items():
        if bid not in local:
            loaded = {b.identifier for b in benchmarks}
            why = "is not a local neural benchmark (brainscore-vision benchmarks keep their own metric, behaviour its i2n)" if bid in loaded else "is not loaded"
            raise ConfigError(
                f"{prefix}`benchmark_metrics` names {bid!r}, which {why}; local neural benchmarks: {', '.join(local) or 'none'}"
            )
        local[bid].use_metric(name, None, f"benchmark_metrics.{bid}", where)


def check_layers(
    model: nn.Module, region_layer_map: Mapping[str, str], behavioral_readout_layer: str | None, config_key: str = ""
) -> None:
    """Raise a one-line ``ConfigError`` for an unknown region or layer name (the nearest layer names listed).

    Args:
        model: the network scored (layer names as in :func:`neuroalign.core.layers.get_layer`).
        region_layer_map: ``{region: layer}``.
        behavioral_readout_layer: the behavioural readout layer, if any.
        config_key: prefix of the keys named in the message (e.g. ``BrainScoreCallback``).
    """
    prefix = f"{config_key} " if config_key else ""
    for region, layer in region_layer_map.items():
        check_region(region, f"{prefix}region_layer_map", allow_behavior=False)
        try:
            get_layer(model, layer)
        except ConfigError as err:
            raise ConfigError(f"{prefix}region_layer_map.{region}: {err}") from None
    if behavioral_readout_layer:
        try:
            get_layer(model, behavioral_readout_layer)
        except ConfigError as err:
            raise ConfigError(f"{prefix}behavioral_readout_layer: {err}") from None


def check_benchmarks(
    benchmarks: Sequence[Benchmark], region_layer_map: Mapping[str, str], behavioral_readout_layer: str | None, config_key: str = ""
) -> None:
    """Raise one ``ConfigError`` listing every benchmark without a layer to read.

    A neural benchmark needs its region in ``region_layer_map``; a behavioural one needs
    ``behavioral_readout_layer``. Checked before any scoring, so a run does not train first and find out later.
    """
    problems = []
    for bench in benchmarks:
        try:
            bench.layer_for(region_layer_map, behavioral_readout_layer)
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        prefix = f"{config_key}: " if config_key else ""
        raise ConfigError(prefix + "; ".join(problems))


def check_feature_budget(
    model: nn.Module,
    benchmarks: Sequence[Benchmark],
    region_layer_map: Mapping[str, str],
    behavioral_readout_layer: str | None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    token_reduction: TokenReduction = "flatten",
    config_key: str = "",
    profile_layers: Sequence[str] = (),
) -> None:
    """Before any scoring: the features every feature benchmark needs must fit in memory (one-line ``ConfigError``).

    See :func:`callbacks.brainscore.features.check_feature_memory`; benchmarks without a layer to read are
    left to :func:`check_benchmarks`. ``profile_layers``: layers every feature benchmark also reads
    (:func:`score_round`).
    """
    wanted: dict[str, list[str]] = defaultdict(list)
    sets = {}
    for bench in benchmarks:
        if not bench.needs_features:
            continue
        try:
            layer = bench.layer_for(region_layer_map, behavioral_readout_layer)
        except ConfigError:
            continue
        for s in bench.stimulus_sets().values():
            sets.setdefault(s.key, s)
            for name in (layer, *profile_layers):
                if name not in wanted[s.key]:
                    wanted[s.key].append(name)
    try:
        check_feature_memory(model, list(sets.values()), dict(wanted), max_features, token_reduction)
    except ConfigError as err:
        raise ConfigError(f"{config_key}: {err}" if config_key else str(err)) from None


def benchmark_features(
    model: nn.Module,
    layers_by_benchmark: Sequence[tuple[FeatureBenchmark, Sequence[str]]],
    context: ScoringContext,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    token_reduction: TokenReduction = "flatten",
) -> dict[str, dict[str, torch.Tensor]]:
    """Features of every feature benchmark's layers: one extraction pass per distinct stimulus set.

    Args:
        model: the network scored.
        layers_by_benchmark: ``(benchmark, layers it is scored on)`` pairs.
        context: batch size, visual degrees and seed of the extraction.
        max_features: ``None`` (default) keeps layers whole (exact); an int projects wider layers to that many features (an approximation).
        token_reduction: how ``(B, tokens, C)`` outputs become vectors.

    Returns:
        ``{stimulus_set.key: {layer: features}}`` (see :func:`callbacks.brainscore.features.extract_features`),
        ready for :meth:`~callbacks.brainscore.benchmarks.base.FeatureBenchmark.score_layer`.
    """
    wanted: dict[str, list[str]] = defaultdict(list)
    sets = {}
    for bench, layers in layers_by_benchmark:
        for s in bench.stimulus_sets().values():
            sets.setdefault(s.key, s)
            for layer in layers:
                if layer not in wanted[s.key]:
                    wanted[s.key].append(layer)
    if not sets:
        return {}
    check_feature_memory(model, list(sets.values()), dict(wanted), max_features, token_reduction)
    return extract_features(model, list(sets.values()), dict(wanted), context, max_features, token_reduction)


@dataclass
class ScoringRound:
    """What one :func:`score_round` gives.

    Attributes:
        scores: each benchmark's score at its mapped layer.
        failures: ``{benchmark id: error}`` of benchmarks that did not score at their mapped layer.
        layer_scores: ``{benchmark id: {candidate layer: score}}`` of every feature benchmark at each
            ``profile_layers`` entry (empty without them).
        layer_failures: ``{"<benchmark id> @ <layer>": error}`` of candidate layers a benchmark failed on.
    """

    scores: list[RegionScore] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    layer_scores: dict[str, dict[str, RegionScore]] = field(default_factory=dict)
    layer_failures: dict[str, str] = field(default_factory=dict)


def score_round(
    model: nn.Module,
    benchmarks: Sequence[Benchmark],
    region_layer_map: Mapping[str, str] | None,
    behavioral_readout_layer: str | None = None,
    context: ScoringContext | None = None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    token_reduction: TokenReduction = "flatten",
    fail_on_error: bool = True,
    profile_layers: Sequence[str] = (),
) -> ScoringRound:
    """Score every benchmark at its mapped layer and every feature benchmark at each of ``profile_layers``.

    Every layer a stimulus set needs (mapped and candidate) comes from ONE forward pass over it; a candidate
    that is also the mapped layer is scored once.

    Args:
        model: the network scored.
        benchmarks: the benchmark objects.
        region_layer_map: ``{region: layer}``; ``None`` scores only the candidate layers of the feature
            benchmarks (the layer sweep), and benchmarks that extract their own features not at all.
        behavioral_readout_layer: the behavioural readout layer, if any.
        context: as in :func:`score_model`.
        max_features: as in :func:`score_model`.
        token_reduction: as in :func:`score_model`.
        fail_on_error: raise on the first failure (else log it and report it in the result).
        profile_layers: candidate layer names (already resolved, see
            :func:`callbacks.brainscore.profile.resolve_profile_layers`).
    """
    context = context or ScoringContext()
    check_ceiling_formula(context.ceiling_formula)
    if context.device is None:
        context.device = module_device(model)
    if region_layer_map is not None:
        check_layers(model, region_layer_map, behavioral_readout_layer)
    result = ScoringRound()

    def fail(what: str, err: Exception, into: dict[str, str]) -> None:
        if fail_on_error:
            raise err
        into[what] = f"{type(err).__name__}: {err}"
        log.warning("Brain-Score benchmark %s failed: %s", what, err)

    # one extraction pass per distinct stimulus set, with every layer any benchmark needs from it
    mapped: dict[int, str] = {}
    wanted: list[tuple[FeatureBenchmark, list[str]]] = []
    for bench in benchmarks:
        if not bench.needs_features:
            continue
        layers = list(profile_layers)
        if region_layer_map is not None:
            try:
                mapped[id(bench)] = bench.layer_for(region_layer_map, behavioral_readout_layer)
                layers.insert(0, mapped[id(bench)])
            except NeuroAlignError as err:
                fail(bench.identifier, err, result.failures)
        if layers:
            wanted.append((bench, layers))
    features = benchmark_features(model, wanted, context, max_features, token_reduction)

    for bench in benchmarks:
        if region_layer_map is None:
            continue
        try:
            if bench.needs_features:
                if id(bench) not in mapped:
                    continue  # already reported
                score = bench.score_layer(features, mapped[id(bench)], context)
            else:
                score = bench.score_model(model, region_layer_map, behavioral_readout_layer, context)
            result.scores.append(score)
        except SCORING_ERRORS as err:
            fail(bench.identifier, err, result.failures)
    at_mapped = {(s.benchmark, s.layer): s for s in result.scores}
    for bench in benchmarks:
        if not bench.needs_features or not profile_layers:
            continue
        by_layer = result.layer_scores.setdefault(bench.identifier, {})
        for layer in profile_layers:
            try:
                by_layer[layer] = at_mapped.get((bench.identifier, layer)) or bench.score_layer(features, layer, context)
            except SCORING_ERRORS as err:
                fail(f"{bench.identifier} @ {layer}", err, result.layer_failures)
    return result


def score_benchmarks(
    model: nn.Module,
    benchmarks: Sequence[Benchmark],
    region_layer_map: Mapping[str, str],
    behavioral_readout_layer: str | None = None,
    context: ScoringContext | None = None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    token_reduction: TokenReduction = "flatten",
    fail_on_error: bool = True,
) -> tuple[list[RegionScore], dict[str, str]]:
    """Score every benchmark; returns the scores and ``{benchmark id: error message}`` of failures.

    With ``fail_on_error`` the first failure raises; otherwise it is logged and reported. (:func:`score_round`
    without candidate layers.)
    """
    done = score_round(model, benchmarks, region_layer_map, behavioral_readout_layer, context, max_features, token_reduction, fail_on_error)
    return done.scores, done.failures


def summarize_scores(scores: Sequence[RegionScore]) -> dict[str, float]:
    """The result dict (see module doc) from benchmark scores; several benchmarks of a region are averaged."""
    by_region: dict[str, list[RegionScore]] = defaultdict(list)
    for s in scores:
        by_region[s.region].append(s)
    out: dict[str, float] = {}
    for region in (*REGIONS, BEHAVIOR):
        if region not in by_region:
            continue
        group = by_region[region]
        out[region] = float(np.mean([s.ceiled for s in group]))
        out[f"{region}_raw"] = float(np.mean([s.raw for s in group]))
        out[f"{region}_ceiling"] = float(np.mean([s.ceiling for s in group]))
    scored = [out[r] for r in (*REGIONS, BEHAVIOR) if r in out]
    if scored:
        out["average"] = float(np.mean(scored))
    neural = [(i + 1, out[r]) for i, r in enumerate(REGIONS) if r in out]
    if len(neural) >= 2:
        from scipy.stats import spearmanr

        rho = spearmanr([p for p, _ in neural], [s for _, s in neural]).statistic
        if rho is not None and math.isfinite(float(rho)):
            out["rho_hierarchy"] = float(rho)
    return out


def benchmark_scores(scores: Sequence[RegionScore]) -> dict[str, float]:
    """Each benchmark's ceiled score as ``{"<region>/<benchmark id>": ceiled}`` (the callback logs them)."""
    return {f"{s.region}/{s.benchmark}": float(s.ceiled) for s in scores}


def score_model(
    model: nn.Module,
    benchmarks: Sequence[str | Benchmark] | str,
    region_layer_map: Mapping[str, str],
    behavioral_readout_layer: str | None = None,
    model_identifier: str = "model",
    ceiling_formula: str = "r2_over_ceiling",
    batch_size: int = 64,
    model_visual_degrees: float = 8.0,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    token_reduction: TokenReduction = "flatten",
    fail_on_error: bool = True,
    benchmark_regions: Mapping[str, str] | None = None,
    engine: Engine = "fast",
    metric: str | None = None,
    metric_args: Mapping[str, Any] | None = None,
    benchmark_metrics: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Brain-Score a model: ``{"V1": ..., "V1_raw": ..., "V1_ceiling": ..., ..., "average", "rho_hierarchy"}``.

    Args:
        model: any module taking [0,1] RGB images (e.g. a ``ZooModel``); its mode, device and
            gradient flags are left as found.
        benchmarks: brainscore-vision ids, local benchmark folders, synthetic specs or objects.
        region_layer_map: ``{"V1": layer, "V2": ..., "V4": ..., "IT": ...}`` (regions may be omitted).
        behavioral_readout_layer: the layer read out for behaviour (needed by behavioural benchmarks).
        model_identifier: unique name of these weights (brainscore-vision caches by it).
        ceiling_formula: ``r2_over_ceiling`` (2.4.2, default) or ``squared_r_over_ceiling`` (2022).
        batch_size: images per forward pass.
        model_visual_degrees: the model's field of view.
        max_features: ``None`` (default) keeps layers whole (exact); an int projects wider layers to that many features (an approximation).
        token_reduction: how ``(B, tokens, C)`` outputs become vectors (default ``flatten``).
        fail_on_error: raise on the first failing benchmark (else log it and leave its region out).
        benchmark_regions: ``{brainscore-vision id: region}`` for benchmarks whose region is not inferred.
        engine: ``fast`` (default) or ``brainscore-vision``: how brainscore-vision benchmarks are scored
            (see :func:`load_benchmark`).
        metric, metric_args, benchmark_metrics: the metric of local neural benchmarks (:func:`apply_metrics`).

    Returns:
        The summary of :func:`summarize_scores` plus each benchmark's score (:func:`benchmark_scores`).
    """
    context = ScoringContext(
        model_identifier=model_identifier,
        ceiling_formula=ceiling_formula,
        model_visual_degrees=model_visual_degrees,
        batch_size=batch_size,
    )
    scores, _ = score_benchmarks(
        model,
        load_benchmarks(benchmarks, benchmark_regions, engine, metric, metric_args, benchmark_metrics),
        region_layer_map,
        behavioral_readout_layer,
        context,
        max_features,
        token_reduction,
        fail_on_error,
    )
    return {**summarize_scores(scores), **benchmark_scores(scores)}

"""Region x layer profiles: every candidate layer scored on each region's benchmarks, the best one chosen on held-out splits.

A *profile* scores each candidate layer on every benchmark of a region (from one feature pass,
:func:`callbacks.brainscore.engine.score_round`) and picks the region's best layer without double dipping:

* **Splits.** Each benchmark's cross-validation splits (in the benchmark's own order) are divided in two:
  the first ``floor(selection_splits * n_splits)`` splits -- at least one, and at least one left over --
  *select*, the rest *report* (:func:`split_division`; default ``selection_splits=0.5``: 10 PLS splits give
  5 + 5, the 2 i2n halves 1 + 1).
* **Scores of a set of splits** (:func:`subset_score`): a benchmark's :class:`~callbacks.brainscore.types.RegionScore`
  carries its per-split scores in ``extra["per_split"]`` (the raw score of each split); the ceiled score of some
  splits is the benchmark's ceiling formula applied to their mean raw score (``ceiling_formula`` one of
  :data:`~callbacks.brainscore.types.CEILING_FORMULAS`), or, where the benchmark ceils every split itself
  (i2n: ``r / sqrt(ceiling)`` per split), the mean of ``extra["per_split_ceiled"]``.
* **Selection.** Per region and layer, the *selection score* is the mean over the region's benchmarks of the
  ceiled selection-split score, and the *report score* that of the report splits. The best layer is the argmax
  of the selection score (ties: the first in model order); what a profile reports for the region is the best
  layer's report score, computed from splits the choice never saw.

What "held out" means: the neural CV splits of Brain-Score's benchmarks are shuffle splits, so their *test*
stimuli may overlap between the selection and the report splits -- the two scores come from different fits
and held-out sets, not from disjoint stimuli. The i2n "splits" are two random halves of the human trials:
the model's readout is the same in both, only the human data differ. The splits being random, taking the
first ones to select is as good as any other choice.

A profile is plain data (JSON-ready, kept in a callback's state)::

    {region: {"best_layer": str, "selected": float, "reported": float,
              "layers": {layer: {"selected": float, "reported": float, "ceiled": float}}}}

(``ceiled``: the benchmark's usual score over all its splits). This module also writes what the profile
shows: the ``region_layer_map`` YAML text (:func:`region_layer_map_text`), the region x layer x epoch heatmap
(:func:`plot_profiles`) and the W&B table rows (:func:`profile_rows`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from torch import nn

from neuroalign.core.errors import ConfigError
from neuroalign.core.figures import save_figure
from neuroalign.core.layers import resolve_layers

from callbacks.brainscore.benchmarks.base import Benchmark
from callbacks.brainscore.metrics.ceiling import ceil_score
from callbacks.brainscore.types import BEHAVIOR, CEILING_FORMULAS, REGIONS, RegionScore

__all__ = [
    "DEFAULT_SELECTION_SPLITS",
    "PROFILE_COLUMNS",
    "check_selection_splits",
    "resolve_profile_layers",
    "check_profile_benchmarks",
    "split_division",
    "subset_score",
    "region_profiles",
    "profile_scores",
    "best_layers",
    "selection_rule",
    "region_layer_map_text",
    "profile_rows",
    "plot_profiles",
]

#: default fraction of each benchmark's CV splits that select the best layer (the rest report)
DEFAULT_SELECTION_SPLITS = 0.5
#: columns of :func:`profile_rows` (the ``brainscore/profile_table`` W&B table)
PROFILE_COLUMNS: tuple[str, ...] = ("epoch", "step", "region", "layer", "depth", "selected", "reported", "ceiled", "best")
#: the regions a profile covers, in this order
_ORDER: tuple[str, ...] = (*REGIONS, BEHAVIOR)


def check_selection_splits(fraction: float, config_key: str = "selection_splits") -> float:
    """``fraction`` if it lies strictly between 0 and 1, else a one-line ``ConfigError`` naming ``config_key``."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < float(fraction) < 1:
        raise ConfigError(
            f"{config_key} must be a fraction strictly between 0 and 1 (the share of each benchmark's CV splits "
            f"that select the best layer), got {fraction!r}"
        )
    return float(fraction)


def resolve_profile_layers(model: nn.Module, patterns: Sequence[str], config_key: str = "profile_layers") -> list[str]:
    """The layers named by ``patterns`` (names or globs), in model order; one ``ConfigError`` for any that matches nothing.

    The message names the glob (or name), ``config_key`` and the nearest layer names of ``model``.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise ConfigError(f"{config_key} is empty; list layer names or globs (e.g. blocks.*.norm1)")
    try:
        return resolve_layers(model, patterns)
    except ConfigError as err:
        raise ConfigError(f"{config_key}: {err}") from None


def check_profile_benchmarks(benchmarks: Sequence[Benchmark], config_key: str = "profile_layers") -> None:
    """One ``ConfigError`` listing every benchmark a profile cannot score: profiles need per-split scores.

    A benchmark must be scored from the engine's feature pass (``needs_features``; brainscore-vision's own path
    extracts its own layers) and cross-validated (``cross_validated``; a whole-set metric such as plain ``cka``
    or ``rdm`` gives one number, no splits to select on).
    """
    problems = []
    for bench in benchmarks:
        if not bench.needs_features:
            problems.append(f"{bench.identifier} is scored by brainscore-vision's own path, which reads only the mapped layers")
        elif not getattr(bench, "cross_validated", True):
            problems.append(
                f"{bench.identifier} gives one whole-set number, no per-split scores: profiles need a cross-validated "
                "metric (e.g. cka_cv, rdm_cv, pls)"
            )
    if problems:
        raise ConfigError(f"{config_key}: " + "; ".join(problems))


def split_division(n_splits: int, selection_splits: float = DEFAULT_SELECTION_SPLITS) -> tuple[list[int], list[int]]:
    """``(selection split indices, report split indices)`` of ``n_splits`` splits (see module doc).

    Raises:
        ConfigError: fewer than 2 splits (nothing left to report on).
    """
    check_selection_splits(selection_splits)
    if n_splits < 2:
        raise ConfigError(f"a profile needs at least 2 CV splits per benchmark (one selects, one reports), got {n_splits}")
    n_select = min(n_splits - 1, max(1, math.floor(selection_splits * n_splits)))
    return list(range(n_select)), list(range(n_select, n_splits))


def subset_score(score: RegionScore, splits: Sequence[int]) -> float:
    """The ceiled score of ``score``'s benchmark over the CV splits ``splits`` only (see module doc).

    Raises:
        ConfigError: the score has no per-split scores, or none that can be ceiled.
    """
    if not splits:
        raise ValueError("subset_score needs at least one split")
    ceiled = score.extra.get("per_split_ceiled")
    if ceiled is not None:
        return float(np.mean([ceiled[i] for i in splits]))
    raw = score.extra.get("per_split")
    if raw is None:
        raise ConfigError(
            f"benchmark {score.benchmark} gave no per-split scores (extra['per_split']): profiles need a cross-validated metric"
        )
    if score.ceiling_formula not in CEILING_FORMULAS:
        raise ConfigError(
            f"benchmark {score.benchmark}: its per-split raw scores cannot be ceiled with {score.ceiling_formula!r} "
            "(give extra['per_split_ceiled'])"
        )
    return float(ceil_score(float(np.mean([raw[i] for i in splits])), score.ceiling, score.ceiling_formula))


def region_profiles(
    layer_scores: Mapping[str, Mapping[str, RegionScore]],
    layers: Sequence[str],
    selection_splits: float = DEFAULT_SELECTION_SPLITS,
) -> dict[str, dict[str, Any]]:
    """The profile of every region (format: module doc) from each benchmark's score at each candidate layer.

    Args:
        layer_scores: ``{benchmark id: {layer: RegionScore}}`` (a layer a benchmark failed on may be missing).
        layers: the candidate layers, in model order (ties go to the first).
        selection_splits: fraction of each benchmark's splits that select (:func:`split_division`).

    A layer enters a region's ranking only where every benchmark of the region scored it; a region without
    such a layer is left out.
    """
    by_region: dict[str, list[Mapping[str, RegionScore]]] = defaultdict(list)
    for by_layer in layer_scores.values():
        if by_layer:
            by_region[next(iter(by_layer.values())).region].append(by_layer)
    profiles: dict[str, dict[str, Any]] = {}
    for region in [r for r in _ORDER if r in by_region]:
        benches = by_region[region]
        table: dict[str, dict[str, float]] = {}
        for layer in layers:
            if not all(layer in by_layer for by_layer in benches):
                continue
            parts = []
            for by_layer in benches:
                score = by_layer[layer]
                n = len(score.extra.get("per_split_ceiled", score.extra.get("per_split", ())))
                select, report = split_division(n, selection_splits)
                parts.append((subset_score(score, select), subset_score(score, report), score.ceiled))
            selected, reported, ceiled = (float(np.mean(v)) for v in zip(*parts))
            table[layer] = {"selected": selected, "reported": reported, "ceiled": ceiled}
        if not table:
            continue
        best = max(table, key=lambda layer: table[layer]["selected"])  # max keeps the first of equal scores
        profiles[region] = {"best_layer": best, "selected": table[best]["selected"], "reported": table[best]["reported"], "layers": table}
    return profiles


def profile_scores(profiles: Mapping[str, Mapping[str, Any]], layers: Sequence[str]) -> dict[str, float]:
    """The numbers a logger takes: ``<region>_profile_selected``, ``<region>_profile_reported`` and
    ``<region>_best_layer_index`` (position of the best layer in ``layers``, model order, from 0)."""
    out: dict[str, float] = {}
    for region, p in profiles.items():
        out[f"{region}_profile_selected"] = float(p["selected"])
        out[f"{region}_profile_reported"] = float(p["reported"])
        out[f"{region}_best_layer_index"] = float(list(layers).index(p["best_layer"]))
    return out


def best_layers(profiles: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{region: best layer}`` of a profile (``behavior`` included when profiled)."""
    return {region: str(p["best_layer"]) for region, p in profiles.items()}


def selection_rule(selection_splits: float) -> str:
    """One line saying how a profile picked its layers (the YAML header and figure use it)."""
    return (
        f"best layer per region: argmax of the mean ceiled score on the first {selection_splits:.0%} of each "
        "benchmark's CV splits; the score reported for it is that of the other splits"
    )


def region_layer_map_text(best: Mapping[str, str], header: str = "") -> str:
    """YAML ready to paste into a callback's init_args: ``region_layer_map`` (and ``behavioral_readout_layer``).

    Args:
        best: ``{region: layer}``; a ``behavior`` entry becomes ``behavioral_readout_layer``.
        header: comment lines put first (each prefixed with ``#``).
    """
    data: dict[str, Any] = {"region_layer_map": {r: best[r] for r in REGIONS if r in best}}
    if BEHAVIOR in best:
        data["behavioral_readout_layer"] = best[BEHAVIOR]
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.safe_dump(data, sort_keys=False)


def profile_rows(
    history: Mapping[int, Mapping[str, Mapping[str, Any]]], steps: Mapping[int, int], layers: Sequence[str]
) -> list[list[Any]]:
    """One row per epoch, region and layer (columns :data:`PROFILE_COLUMNS`; ``depth``: position in ``layers``).

    Args:
        history: ``{epoch: profile}``.
        steps: ``{epoch: global step}``.
        layers: the candidate layers, in model order.
    """
    depth = {name: i for i, name in enumerate(layers)}
    rows = []
    for epoch in sorted(history):
        for region, p in history[epoch].items():
            for layer, s in sorted(p["layers"].items(), key=lambda kv: depth.get(kv[0], len(depth))):
                rows.append([int(epoch), int(steps.get(epoch, -1)), region, layer, depth.get(layer, -1), s["selected"],
                             s["reported"], s["ceiled"], layer == p["best_layer"]])
    return rows


def plot_profiles(history: Mapping[int, Mapping[str, Mapping[str, Any]]], layers: Sequence[str], path: str | Path) -> Path:
    """The region x layer x epoch heatmap: one panel per region, layers (model order) down, epochs across.

    The colour is the selection-split score (what picks the layer; one colour scale for all panels); a
    white ring marks each epoch's best layer and the panel title gives the last epoch's best layer with its
    report-split score.

    Args:
        history: ``{epoch: profile}`` of every scored epoch.
        layers: the candidate layers, in model order.
        path: the PNG written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = sorted(history)
    regions = [r for r in _ORDER if any(r in history[e] for e in epochs)]
    if not regions:
        raise ValueError("plot_profiles: no region was profiled")
    row = {name: i for i, name in enumerate(layers)}
    grids = {}
    for region in regions:
        grid = np.full((len(layers), len(epochs)), np.nan)
        for j, epoch in enumerate(epochs):
            for layer, s in history[epoch].get(region, {}).get("layers", {}).items():
                if layer in row:
                    grid[row[layer], j] = s["selected"]
        grids[region] = grid
    values = np.concatenate([g[np.isfinite(g)] for g in grids.values()] or [np.zeros(1)])
    vmin, vmax = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    height = min(30.0, max(3.5, 0.22 * len(layers) + 1.5))
    width_each = min(6.0, max(2.2, 0.35 * len(epochs) + 1.2))
    label_room = min(4.0, 0.065 * max(len(n) for n in layers))
    n = len(regions)
    fig, axes = plt.subplots(
        1, n + 1, figsize=(label_room + width_each * n + 1.4, height), squeeze=False,
        gridspec_kw={"width_ratios": [*([1.0] * n), 0.06]},
    )
    image = None
    for k, (ax, region) in enumerate(zip(axes[0], regions)):
        image = ax.imshow(grids[region], aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        for j, epoch in enumerate(epochs):
            p = history[epoch].get(region)
            if p is not None and p["best_layer"] in row:
                ax.scatter([j], [row[p["best_layer"]]], s=60, facecolors="none", edgecolors="white", linewidths=1.5)
        last = next((history[e][region] for e in reversed(epochs) if region in history[e]), None)
        title = region if last is None else f"{region}: {last['best_layer']}\nreported {last['reported']:.3f}"
        ax.set_title(title, fontsize=8)
        ax.set_xticks(range(len(epochs)))
        ax.set_xticklabels([str(e) for e in epochs], fontsize=7)
        ax.set_xlabel("epoch")
        ax.set_yticks(range(len(layers)))
        ax.set_yticklabels(list(layers) if k == 0 else [""] * len(layers), fontsize=7 if len(layers) <= 40 else 5)
    fig.colorbar(image, cax=axes[0][n], label="selection-split ceiled score")
    fig.suptitle("Brain-Score layer profile (ring: selected layer)", fontsize=10)
    return save_figure(fig, path)

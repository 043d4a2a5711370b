"""Layer sweep: score every candidate layer on each region's benchmarks, keep the best per region.

The sweep is one region x layer profile (:mod:`callbacks.brainscore.profile`, the computation
``BrainScoreCallback(profile_layers=...)`` runs every epoch): all candidate layers come from ONE forward pass
per stimulus set (:func:`callbacks.brainscore.engine.score_round`); a region's best layer is the argmax of its
score on the *selection* CV splits, and the score given for it is that of the other (*report*) splits
(``selection_splits``, default half of each benchmark's splits). Writes ``region_layer_map.yaml``
(usable as the callback's / ``score`` command's ``region_layer_map``), ``layer_sweep.csv`` (every
score -- ``ceiled`` over all splits, ``selected`` and ``reported`` over the two halves -- with the layer's
depth, its position in the model's ``named_modules()`` order) and
``layer_sweep.png`` (ceiled score per swept layer, the x axis labelled with the layer names in model
order, one line per region). ``neuroalign layer-sweep`` (:func:`layer_sweep`) takes the model by zoo
name and/or checkpoint; from Python, :func:`write_layer_sweep` takes a model object.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from torch import nn

from neuroalign.core.errors import ConfigError
from neuroalign.core.figures import save_figure
from neuroalign.core.layers import list_layers
from neuroalign.core.output_paths import output_dir as make_output_dir
from neuroalign.core.output_paths import writing

from callbacks.brainscore.benchmarks.base import FeatureBenchmark
from callbacks.brainscore.commands.score import load_model
from callbacks.brainscore.engine import load_benchmarks, score_round
from callbacks.brainscore.features import DEFAULT_MAX_FEATURES
from callbacks.brainscore.profile import (
    DEFAULT_SELECTION_SPLITS,
    best_layers,
    check_profile_benchmarks,
    check_selection_splits,
    region_layer_map_text,
    region_profiles,
    resolve_profile_layers,
    selection_rule,
)
from callbacks.brainscore.types import REGIONS, ScoringContext

__all__ = ["sweep_layers", "write_layer_sweep", "layer_sweep"]


def sweep_layers(
    model: nn.Module,
    benchmarks: Sequence[str | FeatureBenchmark] | str,
    layers: Sequence[str] | str,
    context: ScoringContext | None = None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    selection_splits: float = DEFAULT_SELECTION_SPLITS,
) -> dict[str, dict[str, Any]]:
    """The profile (:mod:`callbacks.brainscore.profile`) of every neural region over the candidate layers (names or globs).

    Several benchmarks of one region are averaged. brainscore-vision benchmarks are swept when the fast
    engine reads them (``NeuralBenchmark`` with ``pls``); others run their own model commitment and cannot be.
    """
    check_selection_splits(selection_splits, "--selection_splits")
    names = resolve_profile_layers(model, [layers] if isinstance(layers, str) else list(layers), "--layers")
    benches = [b for b in load_benchmarks(benchmarks) if b.kind == "neural"]
    if not benches:
        raise ConfigError("layer sweep needs at least one neural benchmark (`benchmarks`)")
    check_profile_benchmarks(benches, "--benchmarks")
    done = score_round(model, benches, None, None, context, max_features, profile_layers=names)
    return region_profiles(done.layer_scores, names, selection_splits)


def _plot(scores: dict[str, dict[str, float]], order: list[str], path: Path) -> None:
    """Ceiled score per swept layer (x: the layer names, in model order), one line per region."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    position = {name: i for i, name in enumerate(order)}
    width = min(24.0, max(7.0, 0.25 * len(order)))
    fig, ax = plt.subplots(figsize=(width, 4.5))
    for region in [r for r in REGIONS if r in scores]:
        layers = sorted(scores[region], key=position.get)
        ax.plot([position[l] for l in layers], [scores[region][l] for l in layers], marker="o", label=region)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order, rotation=90, fontsize=8 if len(order) <= 40 else 6)
    ax.set_xlabel("layer (in the model's named_modules order)")
    ax.set_ylabel("ceiled score")
    ax.legend()
    ax.set_title("Brain-Score layer sweep")
    save_figure(fig, path)


def write_layer_sweep(
    model: nn.Module,
    benchmarks: Sequence[str | FeatureBenchmark] | str,
    layers: Sequence[str] | str,
    output_dir: str | Path = "layer_sweep",
    context: ScoringContext | None = None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    selection_splits: float = DEFAULT_SELECTION_SPLITS,
) -> tuple[dict[str, str], dict[str, dict[str, float]], list[Path]]:
    """:func:`sweep_layers`, then write ``region_layer_map.yaml``, ``layer_sweep.csv`` and ``layer_sweep.png``.

    Returns:
        The best layer of each region, every score (``{region: {layer: ceiled over all splits}}``) and the files written.
    """
    out = make_output_dir(output_dir, "--output_dir")  # before scoring: an unwritable folder fails at once
    profiles = sweep_layers(model, benchmarks, layers, context, max_features, selection_splits)
    return _write(model, profiles, out, selection_splits)


def _write(
    model: nn.Module, profiles: dict[str, dict[str, Any]], out: Path, selection_splits: float
) -> tuple[dict[str, str], dict[str, dict[str, float]], list[Path]]:
    """The three files of :func:`write_layer_sweep` from the regions' profiles."""
    best = best_layers(profiles)
    scores = {r: {layer: s["ceiled"] for layer, s in p["layers"].items()} for r, p in profiles.items()}
    depth = {name: i for i, name in enumerate(list_layers(model))}
    order = sorted({l for by_layer in scores.values() for l in by_layer}, key=depth.get)
    files = [out / "region_layer_map.yaml", out / "layer_sweep.csv", out / "layer_sweep.png"]
    with writing(out, "--output_dir"):
        files[0].write_text(region_layer_map_text(best, f"layer sweep; {selection_rule(selection_splits)}"))
        with open(files[1], "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["region", "layer", "depth", "ceiled", "selected", "reported"])
            for region, p in profiles.items():
                for layer, s in sorted(p["layers"].items(), key=lambda kv: depth[kv[0]]):
                    writer.writerow([region, layer, depth[layer], *(f"{s[k]:.6f}" for k in ("ceiled", "selected", "reported"))])
        _plot(scores, order, files[2])
    return best, scores, files


def layer_sweep(
    benchmarks: list[str],
    layers: list[str],
    output_dir: str = "layer_sweep",
    model: str | None = None,
    checkpoint: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    batch_size: int = 64,
    ceiling_formula: Literal["r2_over_ceiling", "squared_r_over_ceiling"] = "r2_over_ceiling",
    max_features: int | None = DEFAULT_MAX_FEATURES,
    selection_splits: float = DEFAULT_SELECTION_SPLITS,
) -> str:
    """Score every candidate layer on each region and write the best ``region_layer_map``.

    Args:
        benchmarks: local benchmark folders or synthetic specs (``synthetic:<folder>``).
        layers: candidate layer names or glob patterns (``blocks.*.norm1``).
        output_dir: where ``region_layer_map.yaml``, ``layer_sweep.csv`` and ``layer_sweep.png`` go.
        model: zoo model name (``resnet18``, ...) or ``synthetic-reference``; with ``checkpoint``, the
            checkpoint's architecture (default: the one it records).
        checkpoint: a neuroalign checkpoint / state dict to load.
        model_kwargs: extra ``build_model`` arguments (``num_classes``, constructor arguments); with
            ``checkpoint`` only together with ``model``.
        batch_size: images per forward pass.
        ceiling_formula: ``r2_over_ceiling`` or ``squared_r_over_ceiling``.
        max_features: ``None`` (default) keeps layers whole (exact); an int projects wider layers to that many features (an approximation).
        selection_splits: fraction of each benchmark's CV splits (the first ones) that pick the best layer; the
            score printed for it is that of the other splits.

    Returns:
        The best layer of each region (``V1: <layer> (<report-split score>)``), then one ``wrote <path>`` line per file.
        From Python, :func:`write_layer_sweep` takes a model object.
    """
    net = load_model(model, checkpoint, model_kwargs)
    context = ScoringContext(ceiling_formula=ceiling_formula, batch_size=batch_size)
    out = make_output_dir(output_dir, "--output_dir")  # before scoring: an unwritable folder fails at once
    profiles = sweep_layers(net, benchmarks, layers, context, max_features, selection_splits)
    best, _, files = _write(net, profiles, out, selection_splits)
    lines = [f"{region}: {layer} (reported {profiles[region]['reported']:.3f})" for region, layer in best.items()]
    return "\n".join([*lines, *(f"wrote {path}" for path in files)])

"""Layer sweep: score every candidate layer on each region's benchmarks, keep the best per region.

All candidate layers come from ONE forward pass per stimulus set. Writes ``region_layer_map.yaml``
(usable as the callback's / ``score`` command's ``region_layer_map``), ``layer_sweep.csv`` (every
score, with the layer's depth -- its position in the model's ``named_modules()`` order) and
``layer_sweep.png`` (ceiled score per swept layer, the x axis labelled with the layer names in model
order, one line per region). ``neuroalign layer-sweep`` (:func:`layer_sweep`) takes the model by zoo
name and/or checkpoint; from Python, :func:`write_layer_sweep` takes a model object.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from torch import nn

from neuroalign.core.errors import ConfigError
from neuroalign.core.figures import save_figure
from neuroalign.core.layers import list_layers, resolve_layers
from neuroalign.core.output_paths import output_dir as make_output_dir
from neuroalign.core.output_paths import writing

from callbacks.brainscore.benchmarks.base import FeatureBenchmark
from callbacks.brainscore.commands.score import load_model
from callbacks.brainscore.engine import benchmark_features, load_benchmarks
from callbacks.brainscore.features import DEFAULT_MAX_FEATURES
from callbacks.brainscore.types import REGIONS, ScoringContext

__all__ = ["sweep_layers", "write_layer_sweep", "layer_sweep"]


def sweep_layers(
    model: nn.Module,
    benchmarks: Sequence[str | FeatureBenchmark] | str,
    layers: Sequence[str] | str,
    context: ScoringContext | None = None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
) -> dict[str, dict[str, float]]:
    """``{region: {layer: ceiled score}}`` for every neural benchmark and candidate layer (names or globs).

    Several benchmarks of one region are averaged. brainscore-vision benchmarks are swept when the fast
    engine reads them (``NeuralBenchmark`` with ``pls``); others run their own model commitment and cannot be.
    """
    context = context or ScoringContext()
    names = resolve_layers(model, layers)
    benches = [b for b in load_benchmarks(benchmarks) if b.kind == "neural"]
    if not benches:
        raise ConfigError("layer sweep needs at least one neural benchmark (`benchmarks`)")
    for b in benches:
        if not b.needs_features:
            raise ConfigError(
                f"benchmark {b.identifier} cannot be swept (brainscore-vision's own path scores it); use local, synthetic "
                "or fast-engine benchmarks (`benchmarks`)"
            )
    features = benchmark_features(model, [(b, names) for b in benches], context, max_features)
    result: dict[str, dict[str, list[float]]] = {}
    for bench in benches:
        for layer in names:
            score = bench.score_layer(features, layer, context)
            result.setdefault(bench.region, {}).setdefault(layer, []).append(score.ceiled)
    return {r: {l: sum(v) / len(v) for l, v in by_layer.items()} for r, by_layer in result.items()}


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
) -> tuple[dict[str, str], dict[str, dict[str, float]], list[Path]]:
    """:func:`sweep_layers`, then write ``region_layer_map.yaml``, ``layer_sweep.csv`` and ``layer_sweep.png``.

    Returns:
        The best layer of each region, every score (``{region: {layer: ceiled}}``) and the files written.
    """
    out = make_output_dir(output_dir, "--output_dir")  # before scoring: an unwritable folder fails at once
    scores = sweep_layers(model, benchmarks, layers, context, max_features)
    best = {r: max(scores[r], key=scores[r].get) for r in REGIONS if r in scores}
    depth = {name: i for i, name in enumerate(list_layers(model))}
    order = sorted({l for by_layer in scores.values() for l in by_layer}, key=depth.get)
    files = [out / "region_layer_map.yaml", out / "layer_sweep.csv", out / "layer_sweep.png"]
    with writing(out, "--output_dir"):
        files[0].write_text(yaml.safe_dump({"region_layer_map": best}, sort_keys=False))
        with open(files[1], "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["region", "layer", "depth", "ceiled"])
            for region, by_layer in scores.items():
                for layer, value in sorted(by_layer.items(), key=lambda kv: depth[kv[0]]):
                    writer.writerow([region, layer, depth[layer], f"{value:.6f}"])
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

    Returns:
        The best layer of each region (``V1: <layer> (<score>)``), then one ``wrote <path>`` line per file.
        From Python, :func:`write_layer_sweep` takes a model object.
    """
    net = load_model(model, checkpoint, model_kwargs)
    context = ScoringContext(ceiling_formula=ceiling_formula, batch_size=batch_size)
    best, scores, files = write_layer_sweep(net, benchmarks, layers, output_dir, context, max_features)
    lines = [f"{region}: {layer} ({scores[region][layer]:.3f})" for region, layer in best.items()]
    return "\n".join([*lines, *(f"wrote {path}" for path in files)])

"""Layer sweep: score every candidate layer on each region's benchmarks, keep the best per region.

All candidate layers come from ONE forward pass per stimulus set. Writes ``region_layer_map.yaml``
(usable as the callback's / ``score`` command's ``region_layer_map``), ``layer_sweep.csv`` (every
score) and ``layer_sweep.png`` (ceiled score against layer depth -- the layer's position in the
model's ``named_modules()`` order -- one line per region).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import yaml
from torch import nn

from lightning_modules.errors import ConfigError
from lightning_modules.layers import list_layers, resolve_layers

from .benchmark import REGIONS, FeatureBenchmark, ScoringContext
from .features import DEFAULT_MAX_FEATURES, extract_features
from .scoring import load_benchmarks

__all__ = ["sweep_layers", "layer_sweep"]


def sweep_layers(
    model: nn.Module,
    benchmarks: Sequence[str | FeatureBenchmark] | str,
    layers: Sequence[str] | str,
    context: ScoringContext | None = None,
    max_features: int | None = DEFAULT_MAX_FEATURES,
) -> dict[str, dict[str, float]]:
    """``{region: {layer: ceiled score}}`` for every neural benchmark and candidate layer (names or globs).

    Several benchmarks of one region are averaged. brainscore-vision benchmarks are not swept here
    (they run their own model commitment); use local or synthetic benchmarks.
    """
    context = context or ScoringContext()
    names = resolve_layers(model, layers)
    benches = [b for b in load_benchmarks(benchmarks) if b.kind == "neural"]
    if not benches:
        raise ConfigError("layer sweep needs at least one neural benchmark (`benchmarks`)")
    for b in benches:
        if not isinstance(b, FeatureBenchmark):
            raise ConfigError(f"benchmark {b.identifier} cannot be swept; use local or synthetic benchmarks (`benchmarks`)")
    sets = {s.key: s for b in benches for s in b.stimulus_sets().values()}
    features = extract_features(model, list(sets.values()), names, context, max_features)
    result: dict[str, dict[str, list[float]]] = {}
    for bench in benches:
        for layer in names:
            roles = {role: features[s.key][layer] for role, s in bench.stimulus_sets().items()}
            score = bench.score_features(roles, context)
            result.setdefault(bench.region, {}).setdefault(layer, []).append(score.ceiled)
    return {r: {l: sum(v) / len(v) for l, v in by_layer.items()} for r, by_layer in result.items()}


def _plot(scores: dict[str, dict[str, float]], depth: dict[str, int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for region in [r for r in REGIONS if r in scores]:
        layers = sorted(scores[region], key=depth.get)
        ax.plot([depth[l] for l in layers], [scores[region][l] for l in layers], marker="o", label=region)
    ax.set_xlabel("layer depth (position in named_modules order)")
    ax.set_ylabel("ceiled score")
    ax.legend()
    ax.set_title("Brain-Score layer sweep")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def layer_sweep(
    benchmarks: list[str],
    layers: list[str],
    output_dir: str = "layer_sweep",
    model: str | None = None,
    checkpoint: str | None = None,
    model_kwargs: dict | None = None,
    batch_size: int = 64,
    ceiling_formula: str = "r2_over_ceiling",
    max_features: int | None = DEFAULT_MAX_FEATURES,
    net: nn.Module | None = None,
) -> str:
    """Score every candidate layer on each region and write the best ``region_layer_map``.

    Args:
        benchmarks: local benchmark folders or synthetic specs (``synthetic:<folder>``).
        layers: candidate layer names or glob patterns (``blocks.*.norm1``).
        output_dir: where ``region_layer_map.yaml``, ``layer_sweep.csv`` and ``layer_sweep.png`` go.
        model: zoo model name (``build_model``), e.g. ``resnet18``; or ``synthetic-reference``.
        checkpoint: optional Lightning checkpoint / state dict to load into the model.
        model_kwargs: extra ``build_model`` arguments.
        batch_size: images per forward pass.
        ceiling_formula: ``r2_over_ceiling`` or ``squared_r_over_ceiling``.
        max_features: wider layers are randomly projected to this many features.
        net: a model object instead of ``model`` (Python use).

    Returns:
        The path of the written ``region_layer_map.yaml``.
    """
    from .commands import load_model

    module = net if net is not None else load_model(model, checkpoint, model_kwargs)
    context = ScoringContext(ceiling_formula=ceiling_formula, batch_size=batch_size)
    scores = sweep_layers(module, benchmarks, layers, context, max_features)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    best = {r: max(scores[r], key=scores[r].get) for r in REGIONS if r in scores}
    path = out / "region_layer_map.yaml"
    path.write_text(yaml.safe_dump({"region_layer_map": best}, sort_keys=False))
    depth = {name: i for i, name in enumerate(list_layers(module))}
    with open(out / "layer_sweep.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["region", "layer", "depth", "ceiled"])
        for region, by_layer in scores.items():
            for layer, value in sorted(by_layer.items(), key=lambda kv: depth[kv[0]]):
                writer.writerow([region, layer, depth[layer], f"{value:.6f}"])
    _plot(scores, depth, out / "layer_sweep.png")
    for region, layer in best.items():
        print(f"{region}: {layer} ({scores[region][layer]:.3f})")
    return str(path)

"""``neuroalign score``: Brain-Score a zoo model or a checkpoint from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_modules.errors import ConfigError, MissingFileError

from .features import DEFAULT_MAX_FEATURES
from .scoring import score_model
from .summary import write_summary

__all__ = ["load_model", "score_command"]


def load_model(model: str | None, checkpoint: str | None = None, model_kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Build ``model`` (a zoo name, or ``synthetic-reference``) and/or load ``checkpoint``.

    A neuroalign checkpoint rebuilds its own zoo model (:func:`lightning_modules.zoo.model_from_checkpoint`);
    ``model`` names the architecture when the checkpoint records none.
    """
    if not model and not checkpoint:
        raise ConfigError("no model given; set `model` (a zoo name such as resnet18, or synthetic-reference) or `checkpoint`")
    kwargs = dict(model_kwargs or {})
    if model == "synthetic-reference":
        from .synthetic import reference_network

        net: nn.Module = reference_network(**kwargs)
        if checkpoint:
            from lightning_modules.zoo import load_weights, read_state_dict

            load_weights(net, read_state_dict(checkpoint, "checkpoint"), source=f"checkpoint {checkpoint}")
        return net.eval()
    from lightning_modules.zoo import build_model, model_from_checkpoint

    if checkpoint:
        return model_from_checkpoint(checkpoint, model, model_kwargs=kwargs or None)
    return build_model(model, **kwargs).eval()


def score_command(
    benchmarks: list[str],
    region_layer_map: dict[str, str],
    model: str | None = None,
    checkpoint: str | None = None,
    behavioral_readout_layer: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    model_identifier: str | None = None,
    ceiling_formula: str = "r2_over_ceiling",
    batch_size: int = 64,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    output_dir: str = "brainscore_scores",
) -> str:
    """Score a model and print / save the Table-3-like summary.

    Args:
        benchmarks: brainscore-vision ids, local benchmark folders or synthetic specs (``synthetic:<folder>``).
        region_layer_map: ``{V1: layer, V2: layer, V4: layer, IT: layer}``.
        model: zoo model name (``resnet18``, ``crossvit_18_dagger_408``, ...) or ``synthetic-reference``.
        checkpoint: Lightning checkpoint or state dict to load.
        behavioral_readout_layer: layer for behavioural benchmarks.
        model_kwargs: extra ``build_model`` arguments (e.g. ``{pretrained: true}``).
        model_identifier: name of these weights (default: model name + checkpoint file name).
        ceiling_formula: ``r2_over_ceiling`` (brainscore-vision 2.4.2) or ``squared_r_over_ceiling`` (2022).
        batch_size: images per forward pass.
        max_features: wider layers are randomly projected to this many features.
        output_dir: where ``scores.json`` and the summary CSV / Markdown go.

    Returns:
        The Markdown summary table.
    """
    net = load_model(model, checkpoint, model_kwargs)
    arch = model or getattr(net, "name", "model")  # a checkpoint names its own zoo model
    name = model_identifier or (f"{arch}-{Path(checkpoint).stem}" if checkpoint else str(arch))
    scores = score_model(
        net,
        benchmarks,
        region_layer_map,
        behavioral_readout_layer,
        model_identifier=name,
        ceiling_formula=ceiling_formula,
        batch_size=batch_size,
        max_features=max_features,
    )
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps({"model": name, "ceiling_formula": ceiling_formula, **scores}, indent=2))
    return write_summary({name: scores}, out)

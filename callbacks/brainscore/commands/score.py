"""``neuroalign score``: Brain-Score a zoo model or a checkpoint from the command line.

:func:`load_model` is the one way the Brain-Score commands turn ``--model`` / ``--checkpoint`` /
``--model_kwargs`` into a network (``neuroalign layer-sweep`` uses it too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from lightning_modules.zoo import build_model
from lightning_modules.zoo.checkpoint import load_checkpoint_into, model_from_checkpoint
from neuroalign.core.errors import ConfigError
from neuroalign.core.output_paths import output_dir as make_output_dir
from neuroalign.core.output_paths import writing

from callbacks.brainscore.benchmarks.synthetic import reference_network
from callbacks.brainscore.engine import score_model
from callbacks.brainscore.features import DEFAULT_MAX_FEATURES
from callbacks.brainscore.summary import write_summary
from callbacks.brainscore.types import Engine

__all__ = ["load_model", "score_command", "MODEL_KWARGS_KEY"]

#: the command-line option of :func:`load_model`'s ``model_kwargs`` (named in its errors)
MODEL_KWARGS_KEY = "--model_kwargs"
#: ``build_model`` arguments that configure the [0,1] wrapper or the weights, not the architecture
_NOT_ARCHITECTURE = ("pretrained", "weights_path", "input_size", "mean", "std", "resize_input")


def load_model(model: str | None, checkpoint: str | None = None, model_kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Build ``model`` (a zoo name, or ``synthetic-reference``) and/or load ``checkpoint``.

    Without a checkpoint, ``model_kwargs`` are :func:`lightning_modules.zoo.build_model` arguments
    (``num_classes``, ``pretrained``, network constructor arguments, ...). A neuroalign checkpoint
    rebuilds the zoo model it records (:func:`lightning_modules.zoo.checkpoint.model_from_checkpoint`); ``model``
    names the architecture instead (needed when the checkpoint records none), and ``model_kwargs``
    then describe that architecture the same way (``num_classes`` and constructor arguments). With a
    checkpoint, ``model_kwargs`` without ``model``, or ones that choose weights or the input
    wrapper (``pretrained``, ``weights_path``, ``input_size``, ``mean``, ``std``, ``resize_input``),
    are a one-line :class:`~neuroalign.core.errors.ConfigError`.
    """
    if not model and not checkpoint:
        raise ConfigError("no model given; set `model` (a zoo name such as resnet18, or synthetic-reference) or `checkpoint`")
    kwargs = dict(model_kwargs or {})
    if model == "synthetic-reference":
        try:
            net: nn.Module = reference_network(**kwargs)
        except TypeError as err:
            raise ConfigError(f"`{MODEL_KWARGS_KEY}` {kwargs} do not fit synthetic-reference (seed, image_size, n_classes): {err}") from None
        if checkpoint:
            load_checkpoint_into(net, checkpoint, "checkpoint")
        return net.eval()
    if not checkpoint:
        return build_model(model, **kwargs).eval()
    if kwargs and not model:
        raise ConfigError(
            f"`{MODEL_KWARGS_KEY}` ({', '.join(kwargs)}) describe a zoo model named by `--model`, but none is named: "
            f"`--checkpoint` {checkpoint} rebuilds the architecture it records; drop `{MODEL_KWARGS_KEY}`, or name the architecture with `--model` too"
        )
    wrong = [k for k in _NOT_ARCHITECTURE if k in kwargs]
    if wrong:
        raise ConfigError(
            f"`{MODEL_KWARGS_KEY}` {', '.join(wrong)} cannot be used with `--checkpoint` (its weights are loaded into "
            f"the architecture `--model` + `{MODEL_KWARGS_KEY}` describe); drop {', '.join(wrong)}"
        )
    num_classes = kwargs.pop("num_classes", None)
    return model_from_checkpoint(checkpoint, model, num_classes=num_classes, model_kwargs=kwargs or None)


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
    benchmark_regions: dict[str, str] | None = None,
    engine: Engine = "fast",
    metric: str | None = None,
    metric_args: dict[str, Any] | None = None,
    benchmark_metrics: dict[str, str] | None = None,
) -> str:
    """Score a model and print / save the Table-3-like summary.

    Args:
        benchmarks: brainscore-vision ids, local benchmark folders or ``synthetic:<folder>``.
        region_layer_map: ``{V1: layer, V2: layer, V4: layer, IT: layer}``.
        model: zoo model name (``resnet18``, ``crossvit_18_dagger_408``, ...) or ``synthetic-reference``.
        checkpoint: Lightning checkpoint or state dict to load.
        behavioral_readout_layer: layer for behavioural benchmarks.
        model_kwargs: extra ``build_model`` arguments (e.g. ``{pretrained: true}``, ``{num_classes: 10}``);
            with ``checkpoint`` only together with ``model``, and only architecture arguments.
        model_identifier: name of these weights (default: model name + checkpoint file name).
        ceiling_formula: ``r2_over_ceiling`` (brainscore-vision 2.4.2) or ``squared_r_over_ceiling`` (2022).
        batch_size: images per forward pass.
        max_features: ``None`` (default) keeps layers whole (exact); an int projects wider layers to that many features (an approximation).
        output_dir: where ``scores.json`` and the summary CSV / Markdown go.
        benchmark_regions: ``{brainscore-vision id: region}`` for benchmarks whose region is not inferred.
        engine: how brainscore-vision benchmarks are scored.
        metric: metric of local neural benchmarks (pls, ridgecv, rdm, ...).
        metric_args: its arguments.
        benchmark_metrics: ``{local id: metric}``.

    Returns:
        The Markdown summary table, then one ``wrote <path>`` line per file written.
    """
    out = make_output_dir(output_dir, "--output_dir")  # before scoring: an unwritable folder fails at once
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
        benchmark_regions=benchmark_regions,
        engine=engine,
        metric=metric,
        metric_args=metric_args,
        benchmark_metrics=benchmark_metrics,
    )
    stem = "brainscore_summary"
    with writing(out, "--output_dir"):
        (out / "scores.json").write_text(json.dumps({"model": name, "ceiling_formula": ceiling_formula, **scores}, indent=2))
        table = write_summary({name: scores}, out, stem=stem)
    written = [out / "scores.json", out / f"{stem}.csv", out / f"{stem}.md"]
    return "\n".join([table, "", *(f"wrote {path}" for path in written)])

"""A metric of the family with its arguments, checked once: the per-split scores and the ceiling that fits it.

A local neural benchmark scores a model layer with one :class:`NeuralMetric` (``metric`` and
``metric_args`` of its ``benchmark.yaml``, or the callback's override). Names, brainscore-vision
counterparts and ceilings are listed in :mod:`callbacks.brainscore.metrics.registry`; the arguments
each name takes are :data:`METRIC_ARGS`.

=====================  ==========================================  ==========================================
metric                 cross-validation (as brainscore-vision)     per-split score
=====================  ==========================================  ==========================================
regressions            10 splits, 90% train (stratified by         median over neuroids of the held-out
                       ``stratify_by`` when given), ``seed 1``      Pearson r
``cka``, ``rdm``       none: all stimuli at once                   one number
``cka_cv``, ``rdm_cv`` 10 splits, 90% *test* rows (same splitter)  the metric on each split's test rows
=====================  ==========================================  ==========================================

The raw score is the mean of the per-split scores (brainscore-vision's aggregation), its error their
standard error. Ceilings: internal consistency for the regressions
(:func:`~.ceiling.internal_consistency`), the split-half CKA of the repetition means for ``cka``/``cka_cv``
(:func:`~.cka.cka_split_half_ceiling`), the split-half RDM reliability for ``rdm``/``rdm_cv``
(:func:`~.rdm.rdm_split_half_ceiling`); every one needs at least two repetitions, unless the benchmark
states its ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from callbacks.brainscore.metrics.ceiling import internal_consistency
from callbacks.brainscore.metrics.cka import cka_split_half_ceiling
from callbacks.brainscore.metrics.correlation import nanmedian
from callbacks.brainscore.metrics.rdm import rdm_split_half_ceiling
from callbacks.brainscore.metrics.registry import METRIC_INFO, METRICS, check_metric
from callbacks.brainscore.metrics.ridgecv import BRAINSCORE_ALPHAS, check_alphas
from callbacks.brainscore.metrics.splits import brainscore_splits
from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import nearest_names

__all__ = ["METRIC_ARGS", "NeuralMetric", "MetricScores"]

#: metric name -> the arguments it takes and their defaults (brainscore-vision's)
METRIC_ARGS: dict[str, dict[str, Any]] = {
    "pls": {"n_components": 25},
    "ridge": {"alpha": 1.0},
    "ridgecv": {"alphas": list(BRAINSCORE_ALPHAS), "alpha_per_target": True},
    "linear": {},
    "neuron_to_neuron": {},
    "cka": {"unbiased": True},
    "cka_cv": {"unbiased": True},
    "rdm": {},
    "rdm_cv": {},
}

#: similarity metrics scored on each split's test rows
_CROSS_VALIDATED_SIMILARITIES = ("cka_cv", "rdm_cv")


@dataclass(frozen=True)
class MetricScores:
    """What one metric gives for one layer.

    Attributes:
        per_split: ``(n_splits,)`` scores (one entry for a whole-set metric).
        n_undefined: neuroids whose correlation is undefined on every split (regressions; else 0).
        extra: metric-specific facts worth logging (e.g. ridge-CV's chosen alphas).
    """

    per_split: np.ndarray
    n_undefined: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def raw(self) -> float:
        """The mean over splits."""
        return float(self.per_split.mean())

    @property
    def error(self) -> float:
        """Standard error over splits (NaN for a whole-set metric)."""
        n = len(self.per_split)
        return float(self.per_split.std() / math.sqrt(n)) if n > 1 else float("nan")


@dataclass(frozen=True)
class NeuralMetric:
    """One metric name with checked arguments.

    Build it with :meth:`from_config`, which raises one ``ConfigError`` line naming the key for an
    unknown name (nearest listed), an unknown argument, or a bad value (e.g. a ridge grid with a
    non-positive alpha).

    Attributes:
        name: a key of :data:`~.registry.METRICS`.
        args: every argument of the name, defaults filled in.
    """

    name: str
    args: Mapping[str, Any]

    @classmethod
    def from_config(
        cls,
        name: str,
        args: Mapping[str, Any] | None = None,
        key: str = "metric",
        args_key: str = "metric_args",
        where: str = "",
    ) -> NeuralMetric:
        """Check ``name`` and ``args``; error lines name ``key`` / ``args_key`` and ``where`` they were set
        (e.g. ``" in <folder>/benchmark.yaml"``, ``" of BrainScoreCallback"``)."""
        name = check_metric(str(name), key, where)
        if not isinstance(args, (Mapping, type(None))):
            raise ConfigError(f"metric arguments must be a mapping, got {args!r} (`{args_key}`{where})")
        given = dict(args or {})
        allowed = METRIC_ARGS[name]
        for arg in given:
            if arg not in allowed:
                hint = f"; it takes {', '.join(allowed)}" if allowed else "; it takes none"
                near = nearest_names(arg, allowed, n=1)
                hint += f" (nearest: {near[0]})" if near else ""
                raise ConfigError(f"metric {name!r} has no argument {arg!r} (`{args_key}`{where}){hint}")
        merged = {**allowed, **given}
        if name == "pls":
            n = merged["n_components"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(f"pls n_components must be a positive integer, got {n!r} (set `{args_key}.n_components`{where})")
        elif name == "ridge":
            alpha = merged["alpha"]
            if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (alpha > 0 and math.isfinite(alpha)):
                raise ConfigError(
                    f"ridge alpha must be positive and finite, got {alpha!r} (set `{args_key}.alpha`{where}; alpha 0 is the `linear` metric)"
                )
            merged["alpha"] = float(alpha)
        elif name == "ridgecv":
            grid = merged["alphas"]
            if isinstance(grid, (int, float)):
                grid = [grid]
            try:
                merged["alphas"] = list(check_alphas(grid, f"{args_key}.alphas"))
            except ConfigError as err:
                raise ConfigError(f"{err}{where}") from None
            except TypeError:
                raise ConfigError(f"ridge-CV alphas must be a list of positive numbers, got {grid!r} (set `{args_key}.alphas`{where})") from None
            merged["alpha_per_target"] = bool(merged["alpha_per_target"])
        elif name in ("cka", "cka_cv"):
            merged["unbiased"] = bool(merged["unbiased"])
        return cls(name=name, args=merged)

    @property
    def kind(self) -> str:
        """``regression`` or ``similarity`` (:data:`~.registry.METRIC_INFO`)."""
        return METRIC_INFO[self.name].kind

    @property
    def cross_validated(self) -> bool:
        """True when the score has one value per split (every metric but ``cka`` and ``rdm``)."""
        return self.kind == "regression" or self.name in _CROSS_VALIDATED_SIMILARITIES

    @property
    def ceiling_name(self) -> str:
        """The ceiling that fits the metric, in words."""
        return METRIC_INFO[self.name].ceiling

    def splits(self, n: int, stratify: Sequence | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """The metric's cross-validation splits of ``n`` stimuli (empty for a whole-set metric)."""
        if self.kind == "regression":
            return brainscore_splits(n, stratify)
        if self.name in _CROSS_VALIDATED_SIMILARITIES:  # brainscore-vision: test_size=0.9
            return brainscore_splits(n, stratify, train_size=0.1)
        return []

    def score(
        self,
        X: torch.Tensor,
        Y: torch.Tensor | np.ndarray,
        splits: Sequence[tuple[np.ndarray, np.ndarray]],
        device: torch.device | str | None = None,
    ) -> MetricScores:
        """Score features ``X`` against responses ``Y`` (rows = stimuli) on ``splits`` (from :meth:`splits`)."""
        fn = METRICS[self.name]
        args = dict(self.args)
        if self.kind == "regression":
            extra: dict[str, Any] = {}
            out = fn(X, Y, splits, **args, device=device)
            if self.name == "ridgecv":
                out, chosen = out
                extra["alpha_median"] = float(chosen.median())
            per_split = nanmedian(out, dim=1).cpu().numpy()
            if not np.isfinite(per_split).all():
                raise ConfigError("correlations undefined on every neuroid (constant features?)")
            return MetricScores(per_split, int(torch.isnan(out).all(0).sum()), extra)
        value = fn(X, Y, splits, **args, device=device) if self.cross_validated else fn(X, Y, **args, device=device)
        value = value.reshape(-1)
        per_split = value.cpu().numpy().astype(np.float64)
        if not np.isfinite(per_split).all():
            raise ConfigError(f"the {self.name} score is undefined (constant features or responses?)")
        return MetricScores(per_split)

    def ceiling(self, responses: torch.Tensor | np.ndarray) -> float:
        """The ceiling that fits the metric, of ``(repetitions >= 2, stimuli, neuroids)`` responses."""
        if self.kind == "regression":
            return float(internal_consistency(responses)["ceiling"])
        if self.name.startswith("cka"):
            return float(cka_split_half_ceiling(responses, unbiased=self.args["unbiased"])["ceiling"])
        return float(rdm_split_half_ceiling(responses)["ceiling"])

    def describe(self) -> dict[str, Any]:
        """Name and the arguments that differ from the defaults, for score records."""
        changed = {k: v for k, v in self.args.items() if v != METRIC_ARGS[self.name][k]}
        return {"metric": self.name, **({"metric_args": changed} if changed else {})}

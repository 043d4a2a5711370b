"""The metric names a local ``benchmark.yaml`` may use, their functions, counterparts and ceilings.

========================  ============================================  ====================================
name                      brainscore-vision counterpart                 ceiling that fits it
========================  ============================================  ====================================
``pls``                   ``pls`` (``PLSRegression(25, scale=False)``)  internal consistency (split-half of
                                                                        repetitions, Spearman-Brown)
``ridge``                 ``ridge`` (``Ridge(alpha=1)``)                internal consistency
``ridgecv``               ``ridgecv_split`` (``RidgeCV(ALPHA_LIST)``,   internal consistency
                          one shared alpha; ours: alpha per neuroid
                          by default)
``linear``                ``linear_predictivity``                       internal consistency
                          (``LinearRegression()``)
``neuron_to_neuron``      ``neuron_to_neuron`` (``SingleRegression``)   internal consistency
``cka``                   ``cka`` (unbiased linear CKA);                the CKA analogue: CKA between the
                          ``cka_cv`` on 90% test splits                 two split-half repetition means
``rdm``                   ``rdm`` (1 - Pearson r, Spearman of upper     split-half reliability of the RDM
                          triangles); ``rdm_cv`` on 90% test splits     (Spearman of half-mean RDMs,
                                                                        Spearman-Brown corrected)
========================  ============================================  ====================================

Aggregation as brainscore-vision: a regression (``kind == "regression"``: ``(splits, neuroids)``
Pearson r on held-out rows) scores the mean over splits of the median over neuroids
(:func:`aggregate_regression`); ``cka`` and ``rdm`` are one number over all stimuli (their ``_cv``
forms: the mean over splits). The regressions' ceiling is :func:`~.ceiling.internal_consistency`;
``rdm``'s is :func:`~.rdm.rdm_split_half_ceiling` and ``cka``'s :func:`~.cka.cka_split_half_ceiling`
(the same repetition halves, the metric between the two half means, Spearman-Brown corrected).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch

from callbacks.brainscore.metrics.cka import cka_cv_scores, cka_score
from callbacks.brainscore.metrics.correlation import nanmedian
from callbacks.brainscore.metrics.neuron_to_neuron import neuron_to_neuron_cv_correlations
from callbacks.brainscore.metrics.pls import pls_cv_correlations
from callbacks.brainscore.metrics.rdm import rdm_cv_scores, rdm_score
from callbacks.brainscore.metrics.ridge import linear_cv_correlations, ridge_cv_correlations
from callbacks.brainscore.metrics.ridgecv import ridgecv_cv_correlations
from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import nearest_names

__all__ = ["METRICS", "METRIC_INFO", "MetricInfo", "check_metric", "aggregate_regression"]


class MetricInfo(NamedTuple):
    """What a metric name stands for."""

    kind: Literal["regression", "similarity"]
    brainscore_vision: str
    ceiling: str


#: name -> function. Regressions: ``f(X, Y, splits, ..., dtype, device) -> (splits, neuroids)`` r
#: (``ridgecv`` returns ``(r, chosen_alphas)``); similarities: ``f(X, Y, ..., dtype, device) -> 0-d``, their
#: ``_cv`` forms ``f(X, Y, splits, ..., dtype, device) -> (splits,)`` (the metric on each split's test rows).
METRICS: dict[str, Callable[..., torch.Tensor | tuple[torch.Tensor, torch.Tensor]]] = {
    "pls": pls_cv_correlations,
    "ridge": ridge_cv_correlations,
    "ridgecv": ridgecv_cv_correlations,
    "linear": linear_cv_correlations,
    "neuron_to_neuron": neuron_to_neuron_cv_correlations,
    "cka": cka_score,
    "cka_cv": cka_cv_scores,
    "rdm": rdm_score,
    "rdm_cv": rdm_cv_scores,
}

METRIC_INFO: dict[str, MetricInfo] = {
    "pls": MetricInfo("regression", "pls", "internal_consistency"),
    "ridge": MetricInfo("regression", "ridge", "internal_consistency"),
    "ridgecv": MetricInfo("regression", "ridgecv_split", "internal_consistency"),
    "linear": MetricInfo("regression", "linear_predictivity", "internal_consistency"),
    "neuron_to_neuron": MetricInfo("regression", "neuron_to_neuron", "internal_consistency"),
    "cka": MetricInfo("similarity", "cka", "split-half CKA of repetition means"),
    "cka_cv": MetricInfo("similarity", "cka_cv", "split-half CKA of repetition means"),
    "rdm": MetricInfo("similarity", "rdm", "split-half RDM reliability (Spearman-Brown)"),
    "rdm_cv": MetricInfo("similarity", "rdm_cv", "split-half RDM reliability (Spearman-Brown)"),
}


def check_metric(name: str, config_key: str = "metric", where: str = "") -> str:
    """``name`` if it is a listed metric, else one ``ConfigError`` line naming ``config_key`` (``where``, e.g.
    ``" in <folder>/benchmark.yaml"``, follows it) and the nearest names."""
    if name in METRICS:
        return name
    near = nearest_names(str(name), METRICS, n=3)
    raise ConfigError(
        f"unknown metric {name!r} (set `{config_key}`{where} to one of {', '.join(METRICS)}; nearest: {', '.join(near)})"
    )


def aggregate_regression(r: torch.Tensor) -> tuple[float, torch.Tensor]:
    """brainscore-vision's aggregation of ``(splits, neuroids)`` r: ``(mean over splits, per-split medians)``.

    The median over neuroids skips NaN (a constant prediction) and averages the two middle values of an
    even count, as xarray's ``median``.
    """
    per_split = nanmedian(r, dim=-1)
    return float(per_split.mean()), per_split

"""A neural local benchmark: recordings of one region in a lab folder, scored the Brain-Score way.

Folder format: :mod:`callbacks.brainscore.benchmarks.local_folder` (``kind: neural``: ``stimuli.csv``,
``responses.npy``, optional ``stratify_by``, ``metric``, ``metric_args``, ``ceiling``).

Scored by default with the Brain-Score method (``docs/recipes.md`` section 2): PLS with 25 components
on 10 stratified (by ``stratify_by``; plain shuffle without it) 90/10 splits of the stimuli in
``stimuli.csv`` order, Pearson r per neuroid on the held-out stimuli, median over neuroids, mean over
splits; split-half internal-consistency ceiling with Spearman-Brown; ceiled by ``ceiling_formula``.
``metric`` picks another metric of the family (:mod:`callbacks.brainscore.metrics.neural_metric`:
ridge, ridge-CV, linear, neuron-to-neuron, CKA, RDM and their cross-validation and ceilings); the
callback's ``metric`` / ``benchmark_metrics`` override it (:meth:`LocalNeuralBenchmark.use_metric`).
Responses are averaged over repetitions (missing trials left out). Neuroids without any response
to some stimulus (e.g. all-NaN) are dropped with a warning and counted in ``n_neuroids_dropped``.
A ``(stimuli, neuroids)`` ``responses.npy`` is one repetition: it needs ``ceiling`` in
``benchmark.yaml``, as does any folder whose ceiling is known from elsewhere.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from neuroalign.core.errors import ConfigError, MissingFileError

from callbacks.brainscore.benchmarks.local_folder import LocalBenchmark, LocalFolder, read_csv, read_stimulus_set
from callbacks.brainscore.features import all_finite
from callbacks.brainscore.metrics.ceiling import ceil_score
from callbacks.brainscore.metrics.neural_metric import NeuralMetric
from callbacks.brainscore.types import RegionScore, ScoringContext, StimulusSet, check_region

__all__ = ["LocalNeuralBenchmark"]

log = logging.getLogger(__name__)


class LocalNeuralBenchmark(LocalBenchmark):
    """Neural recordings of one region (V1, V2, V4 or IT) read from a lab folder.

    Args:
        folder: the folder, as :func:`~callbacks.brainscore.benchmarks.local_folder.read_local_folder` returns it.

    Attributes:
        responses: ``(repetitions, stimuli, neuroids)`` of the usable neuroids.
        target: the repetition-averaged ``(stimuli, neuroids)`` responses the model is fitted to.
        stratify: the ``stratify_by`` label of every stimulus (``None`` without it).
        metric: the :class:`~callbacks.brainscore.metrics.neural_metric.NeuralMetric` it scores with.
    """

    kind = "neural"

    def __init__(self, folder: LocalFolder) -> None:
        super().__init__(folder)
        meta_path = folder.meta_path
        self.region = check_region(str(self.meta.get("region")), f"{meta_path}: region", allow_behavior=False)
        rows = read_csv(self.path / "stimuli.csv", ("stimulus_id", "filename"))
        self._stimuli = read_stimulus_set(self.path, rows, self.visual_degrees, "stimuli.csv")
        stratify_by = self.meta.get("stratify_by")
        if stratify_by is not None and stratify_by not in rows[0]:
            raise ConfigError(f"{meta_path}: stratify_by {stratify_by!r} is not a stimuli.csv column")
        self.stratify = [r[stratify_by] for r in rows] if stratify_by else None
        resp_path = self.path / "responses.npy"
        if not resp_path.is_file():
            raise MissingFileError("responses.npy of the neural benchmark", resp_path, "benchmark folder")
        try:
            responses = np.load(resp_path, allow_pickle=False)
        except ValueError as err:
            raise ConfigError(f"{resp_path} cannot be read as a numeric array ({err})") from None
        if responses.ndim not in (2, 3) or not np.issubdtype(responses.dtype, np.number):
            raise ConfigError(
                f"{resp_path}: shape {responses.shape} ({responses.dtype}); expected a float array "
                "(repetitions, stimuli, neuroids) or (stimuli, neuroids)"
            )
        if responses.ndim == 2:
            responses = responses[None]
        if responses.shape[1] != len(rows):
            raise ConfigError(
                f"{resp_path}: shape {responses.shape} has {responses.shape[1]} stimuli but stimuli.csv has {len(rows)} rows"
            )
        self._given_ceiling = self._read_ceiling()
        responses = responses.astype(np.float64)
        # a neuroid is usable when every stimulus has at least one trial
        usable = np.isfinite(responses).any(0).all(0)
        self.n_dropped = int((~usable).sum())
        if self.n_dropped:
            log.warning("%s: dropped %d neuroid(s) without responses to some stimuli (NaN)", self.identifier, self.n_dropped)
        if not usable.any():
            raise ConfigError(f"{resp_path}: every neuroid has NaN for some stimulus; nothing to score")
        self.responses = responses[:, :, usable]
        with np.errstate(invalid="ignore"):
            self.target = np.nanmean(self.responses, axis=0)
        self._ceiling: float | None = None
        self.use_metric(self.meta.get("metric", "pls"), self.meta.get("metric_args"), where=f" in {meta_path}")

    def _read_ceiling(self) -> float | None:
        """``ceiling`` of benchmark.yaml: a number in (0, 1], or ``None`` (computed from the repetitions)."""
        value = self.meta.get("ceiling")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ConfigError(f"{self.path / 'benchmark.yaml'}: ceiling must be a number in (0, 1], got {value!r} (`ceiling`)")
        return float(value)

    def use_metric(self, name: str, args: Mapping[str, Any] | None = None, key: str = "metric", where: str = "") -> None:
        """Score with metric ``name`` (and ``args``) from now on; checked here, before any extraction.

        Raises:
            ConfigError: an unknown name or argument (the line names ``key`` and ``where`` it was set, see
                :meth:`NeuralMetric.from_config`), or responses with one repetition and no ``ceiling`` in
                benchmark.yaml (every metric's ceiling needs two).
        """
        metric = NeuralMetric.from_config(name, args, key, "metric_args", where)
        if self._given_ceiling is None and self.responses.shape[0] < 2:
            raise ConfigError(
                f"{self.identifier}: metric {metric.name!r} needs repeated trials for its ceiling ({metric.ceiling_name}), "
                f"but {self.path / 'responses.npy'} has 1 repetition; give (repetitions >= 2, stimuli, neuroids) "
                "responses or set `ceiling` in benchmark.yaml"
            )
        self.metric = metric
        self._ceiling = None

    @property
    def cross_validated(self) -> bool:
        """Whether its metric scores per split (``False`` for the whole-set ``cka`` and ``rdm``)."""
        return self.metric.cross_validated

    @property
    def ceiling(self) -> float:
        """The ceiling that fits the metric (``ceiling`` of benchmark.yaml when given; computed once)."""
        if self._ceiling is None:
            value = self._given_ceiling if self._given_ceiling is not None else self.metric.ceiling(self.responses)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(
                    f"{self.identifier}: {self.metric.ceiling_name} ceiling is {value}; responses are not reliable"
                )
            self._ceiling = value
        return self._ceiling

    def stimulus_sets(self) -> dict[str, StimulusSet]:
        return {"stimuli": self._stimuli}

    def score_features(self, features: Mapping[str, torch.Tensor], context: ScoringContext) -> RegionScore:
        X = features["stimuli"]
        if X.shape[0] != self.target.shape[0]:
            raise ConfigError(f"{self.identifier}: {X.shape[0]} feature rows for {self.target.shape[0]} stimuli")
        if not all_finite(X):
            raise ConfigError(f"{self.identifier}: the model's features contain NaN/inf")
        try:
            scores = self.metric.score(X, self.target, self.metric.splits(len(X), self.stratify), device=context.device)
        except ConfigError as err:
            raise ConfigError(f"{self.identifier}: {err}") from None
        raw = scores.raw
        return RegionScore(
            region=self.region,
            ceiled=ceil_score(raw, self.ceiling, context.ceiling_formula),
            raw=raw,
            ceiling=self.ceiling,
            benchmark=self.identifier,
            n_neuroids_dropped=self.n_dropped + scores.n_undefined,
            ceiling_formula=context.ceiling_formula,
            error=scores.error,
            extra={
                "per_split": scores.per_split.tolist(),
                "n_neuroids": int(self.target.shape[1]),
                **self.metric.describe(),
                **scores.extra,
            },
        )

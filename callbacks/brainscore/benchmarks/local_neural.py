"""A neural local benchmark: recordings of one region in a lab folder, scored the Brain-Score way.

Folder format: :mod:`callbacks.brainscore.benchmarks.local_folder` (``kind: neural``: ``stimuli.csv``,
``responses.npy``, optional ``stratify_by``).

Scored with the Brain-Score method (``docs/recipes.md`` section 2): PLS with 25 components on 10
stratified (by ``stratify_by``; plain shuffle without it) 90/10 splits of the stimuli in
``stimuli.csv`` order, Pearson r per neuroid on the held-out stimuli, median over neuroids, mean over
splits; split-half internal-consistency ceiling with Spearman-Brown; ceiled by ``ceiling_formula``.
Responses are averaged over repetitions (missing trials left out). Neuroids without any response
to some stimulus (e.g. all-NaN) are dropped with a warning and counted in ``n_neuroids_dropped``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import torch

from neuroalign.core.errors import ConfigError, MissingFileError

from callbacks.brainscore.benchmarks.local_folder import LocalBenchmark, LocalFolder, read_csv, read_stimulus_set
from callbacks.brainscore.features import all_finite
from callbacks.brainscore.metrics.ceiling import ceil_score, internal_consistency
from callbacks.brainscore.metrics.correlation import nanmedian
from callbacks.brainscore.metrics.pls import pls_cv_correlations
from callbacks.brainscore.metrics.splits import brainscore_splits
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
        if responses.ndim != 3 or not np.issubdtype(responses.dtype, np.number):
            raise ConfigError(
                f"{resp_path}: shape {responses.shape} ({responses.dtype}); expected a float array "
                "(repetitions, stimuli, neuroids)"
            )
        if responses.shape[1] != len(rows):
            raise ConfigError(
                f"{resp_path}: shape {responses.shape} has {responses.shape[1]} stimuli but stimuli.csv has {len(rows)} rows"
            )
        if responses.shape[0] < 2:
            raise ConfigError(
                f"{resp_path}: {responses.shape[0]} repetition(s); the split-half ceiling needs at least 2 "
                "(first axis of responses.npy)"
            )
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

    @property
    def ceiling(self) -> float:
        """The split-half internal-consistency ceiling (computed once)."""
        if self._ceiling is None:
            value = float(internal_consistency(self.responses)["ceiling"])
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{self.identifier}: split-half ceiling is {value}; responses are not reliable")
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
        splits = brainscore_splits(len(X), self.stratify)
        r = pls_cv_correlations(X, self.target, splits, device=context.device)
        undefined = int(torch.isnan(r).all(0).sum())
        per_split = nanmedian(r, dim=1).cpu().numpy()
        if not np.isfinite(per_split).all():
            raise ConfigError(f"{self.identifier}: correlations undefined on every neuroid (constant features?)")
        raw = float(per_split.mean())
        return RegionScore(
            region=self.region,
            ceiled=ceil_score(raw, self.ceiling, context.ceiling_formula),
            raw=raw,
            ceiling=self.ceiling,
            benchmark=self.identifier,
            n_neuroids_dropped=self.n_dropped + undefined,
            ceiling_formula=context.ceiling_formula,
            error=float(per_split.std() / math.sqrt(len(per_split))),
            extra={"per_split": per_split.tolist(), "n_neuroids": int(self.target.shape[1])},
        )

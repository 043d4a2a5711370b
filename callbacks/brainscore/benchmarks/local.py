"""Local benchmarks: a folder a lab can write from its own recordings.

Folder format::

    <folder>/benchmark.yaml   kind: neural | behavior, region (V1|V2|V4|IT, neural only) and
                              visual_degrees are required (all missing ones are listed at once);
                              optional: name (default: the folder name), stratify_by (a stimuli.csv column)
    <folder>/stimuli.csv      columns stimulus_id, filename (relative to the folder), any others
    <folder>/responses.npy    neural: float array (repetitions, stimuli, neuroids), rows in
                              stimuli.csv order; NaN marks a missing trial
    <folder>/trials.csv       behavior: one row per human trial: stimulus_id, truth, choice
                              [, subject][, distractor]
    <folder>/fitting.csv      behavior: stimulus_id, filename, label -- images to fit the readout

Neural benchmarks are scored with the Brain-Score method (RECIPES section 2): PLS with 25 components
on 10 stratified (by ``stratify_by``; plain shuffle without it) 90/10 splits of the stimuli in
``stimuli.csv`` order, Pearson r per neuroid on the held-out stimuli, median over neuroids, mean over
splits; split-half internal-consistency ceiling with Spearman-Brown; ceiled by ``ceiling_formula``.
Responses are averaged over repetitions (missing trials left out). Neuroids without any response
to some stimulus (e.g. all-NaN) are dropped with a warning and counted in ``n_neuroids_dropped``.
Behaviour is scored with i2n (:mod:`callbacks.brainscore.metrics.i2n`).

Every bad input is caught when the folder is loaded, before any model runs.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from neuroalign.core.errors import ConfigError, MissingFileError

from callbacks.brainscore.types import BEHAVIOR, FeatureBenchmark, RegionScore, ScoringContext, StimulusSet, check_region
from callbacks.brainscore.metrics.ceiling import ceil_score, internal_consistency
from callbacks.brainscore.metrics.correlation import nanmedian
from callbacks.brainscore.metrics.i2n import i2n_score, readout_probabilities
from callbacks.brainscore.metrics.pls import pls_cv_correlations
from callbacks.brainscore.metrics.splits import brainscore_splits

__all__ = ["LocalBenchmark", "read_csv"]

log = logging.getLogger(__name__)


def read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts; ``MissingFileError`` / ``ConfigError`` for a missing file or column."""
    if not path.is_file():
        raise MissingFileError(f"benchmark file {path.name}", path, "benchmark folder")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        missing = [c for c in required if c not in columns]
        if missing:
            raise ConfigError(f"{path} lacks column(s) {missing}; it needs {list(required)}")
        rows = list(reader)
    if not rows:
        raise ConfigError(f"{path} has no rows")
    return rows


def _stimulus_set(folder: Path, rows: list[dict[str, str]], visual_degrees: float, csv_name: str) -> StimulusSet:
    ids = [r["stimulus_id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"{folder / csv_name}: stimulus_id {dup!r} appears more than once")
    paths = tuple((folder / r["filename"]).resolve() for r in rows)
    for path in paths:
        if not path.is_file():
            raise MissingFileError(f"stimulus image listed in {csv_name}", path, f"{csv_name} `filename`")
    return StimulusSet(paths=paths, stimulus_ids=tuple(ids), visual_degrees=visual_degrees)


#: keys every benchmark.yaml needs -> what they hold (``region``: neural benchmarks only)
REQUIRED_KEYS: dict[str, str] = {
    "kind": "neural | behavior",
    "region": "V1 | V2 | V4 | IT, for kind: neural",
    "visual_degrees": "degrees of visual angle the images span",
}


def _check_required_keys(meta: Mapping[str, Any], meta_path: Path) -> None:
    """One ``ConfigError`` listing every required key ``benchmark.yaml`` lacks (``region`` unless kind is behavior)."""
    needed = [k for k in REQUIRED_KEYS if not (k == "region" and meta.get("kind") == "behavior")]
    missing = [k for k in needed if meta.get(k) is None]
    if missing:
        listing = ", ".join(f"{k} ({REQUIRED_KEYS[k]})" for k in missing)
        raise ConfigError(f"{meta_path} lacks {len(missing)} required key(s): {listing}")


class LocalBenchmark(FeatureBenchmark):
    """A neural or behavioural benchmark read from a folder (format in the module docstring).

    Args:
        path: the benchmark folder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise MissingFileError("local benchmark folder", self.path, "benchmarks")
        meta_path = self.path / "benchmark.yaml"
        if not meta_path.is_file():
            raise MissingFileError("benchmark.yaml of the local benchmark", meta_path, "benchmarks")
        meta = yaml.safe_load(meta_path.read_text()) or {}
        if not isinstance(meta, dict):
            raise ConfigError(f"{meta_path} must be a mapping (name, kind, region, visual_degrees)")
        self.meta: dict[str, Any] = meta
        self.name = str(meta.get("name") or self.path.name)
        self.identifier = f"local:{self.name}"
        _check_required_keys(meta, meta_path)
        kind = meta["kind"]
        if kind not in ("neural", "behavior"):
            raise ConfigError(f"{meta_path}: kind {kind!r} is invalid; valid: neural, behavior")
        self.kind = kind
        try:
            self.visual_degrees = float(meta["visual_degrees"])
        except (TypeError, ValueError):
            raise ConfigError(f"{meta_path}: visual_degrees {meta.get('visual_degrees')!r} is not a number") from None
        if not self.visual_degrees > 0:
            raise ConfigError(f"{meta_path}: visual_degrees must be positive, got {self.visual_degrees}")
        if kind == "neural":
            self.region = check_region(str(meta.get("region")), f"{meta_path}: region", allow_behavior=False)
            self._load_neural()
        else:
            self.region = BEHAVIOR
            self._load_behavior()

    # ------------------------------------------------------------------ neural
    def _load_neural(self) -> None:
        rows = read_csv(self.path / "stimuli.csv", ("stimulus_id", "filename"))
        self._stimuli = _stimulus_set(self.path, rows, self.visual_degrees, "stimuli.csv")
        stratify_by = self.meta.get("stratify_by")
        if stratify_by is not None and stratify_by not in rows[0]:
            raise ConfigError(f"{self.path / 'benchmark.yaml'}: stratify_by {stratify_by!r} is not a stimuli.csv column")
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

    # ---------------------------------------------------------------- behavior
    def _load_behavior(self) -> None:
        rows = read_csv(self.path / "stimuli.csv", ("stimulus_id", "filename"))
        self._stimuli = _stimulus_set(self.path, rows, self.visual_degrees, "stimuli.csv")
        fit_rows = read_csv(self.path / "fitting.csv", ("stimulus_id", "filename", "label"))
        self._fitting = _stimulus_set(self.path, fit_rows, self.visual_degrees, "fitting.csv")
        self.fit_labels = [r["label"] for r in fit_rows]
        trials = read_csv(self.path / "trials.csv", ("stimulus_id", "truth", "choice"))
        index = {sid: i for i, sid in enumerate(self._stimuli.stimulus_ids)}
        unknown = sorted({t["stimulus_id"] for t in trials} - set(index))
        if unknown:
            raise ConfigError(f"{self.path / 'trials.csv'}: stimulus_id(s) {unknown[:5]} are not in stimuli.csv")
        self.trial_index = np.array([index[t["stimulus_id"]] for t in trials])
        self.trial_truth = [t["truth"] for t in trials]
        self.trial_choice = [t["choice"] for t in trials]
        self.trial_distractor = [t["distractor"] for t in trials] if "distractor" in trials[0] else None
        truths: dict[int, str] = {}
        for i, t in zip(self.trial_index, self.trial_truth):
            if truths.setdefault(int(i), t) != t:
                raise ConfigError(f"{self.path / 'trials.csv'}: image {self._stimuli.stimulus_ids[i]} has two truths")
        missing = [sid for i, sid in enumerate(self._stimuli.stimulus_ids) if i not in truths]
        if missing:
            raise ConfigError(f"{self.path / 'trials.csv'}: no trials for stimuli {missing[:5]}")
        self.image_truths = [truths[i] for i in range(len(self._stimuli))]
        self.n_dropped = 0

    # ------------------------------------------------------------- interface
    def stimulus_sets(self) -> dict[str, StimulusSet]:
        if self.kind == "neural":
            return {"stimuli": self._stimuli}
        return {"stimuli": self._stimuli, "fitting": self._fitting}

    def score_features(self, features: Mapping[str, torch.Tensor], context: ScoringContext) -> RegionScore:
        if self.kind == "behavior":
            return self._score_behavior(features)
        X = features["stimuli"]
        if X.shape[0] != self.target.shape[0]:
            raise ConfigError(f"{self.identifier}: {X.shape[0]} feature rows for {self.target.shape[0]} stimuli")
        if not torch.isfinite(X).all():
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

    def _score_behavior(self, features: Mapping[str, torch.Tensor]) -> RegionScore:
        probs, objects = readout_probabilities(
            features["fitting"].double().numpy(), self.fit_labels, features["stimuli"].double().numpy()
        )
        result = i2n_score(
            probs,
            objects,
            self.image_truths,
            self.trial_index,
            self.trial_truth,
            self.trial_choice,
            self.trial_distractor,
        )
        return RegionScore(
            region=BEHAVIOR,
            ceiled=result["ceiled"],
            raw=result["raw"],
            ceiling=result["ceiling"],
            benchmark=self.identifier,
            ceiling_formula="r_over_sqrt_ceiling",
        )

"""brainscore-vision benchmarks read into the fast engine: their own data and settings, neuroalign's feature pass and fits.

:func:`fast_reading` reads a loaded brainscore-vision benchmark object and returns what the fast engine
needs, or the reason it cannot (the benchmark is then scored by brainscore-vision's own path). Everything
is read from the benchmark, nothing is re-declared:

* **NeuralBenchmark with the ``pls`` metric** (``CrossRegressedCorrelation`` of sklearn
  ``PLSRegression(scale=False)`` and Pearson r) on a static assembly (one time bin): the averaged target
  assembly (rows in its own order), its stimulus set and the benchmark's visual degrees; the metric's
  cross-validation -- its own sklearn splitter object (splits, train size, seed) applied to the
  stratification coord exactly as brainscore-vision's ``Split.build_splits`` does; the number of PLS
  components. The fit is :func:`callbacks.brainscore.metrics.pls.pls_cv_correlations` on the model's
  device; the per-split median over neuroids and the mean over splits (error: standard error over splits)
  are brainscore-vision's aggregation; the ceiling is the benchmark's own (``benchmark.ceiling``, computed
  once a run by :class:`~callbacks.brainscore.benchmarks.brainscore_vision.BrainScoreVisionBenchmark`) and
  is applied with brainscore-vision's ``explained_variance``.
* **Rajalingham2018 i2n** (``_DicarloRajalingham2018`` with the ``i2n`` metric, 2 repetitions): the
  fitting stimuli and their ``image_label``, the trial assembly (``stimulus_id``, ``truth``, ``dist_obj``,
  the choices), its stimulus set and the visual degrees. The readout is
  :func:`callbacks.brainscore.metrics.readout.logistic_probabilities` on the model's device (the classes in
  the order brainscore-vision's ``ProbabilitiesClassifier`` numbers them); the metric is
  :func:`callbacks.brainscore.metrics.i2n.i2n_score`, brainscore-vision's i2n vectorised in numpy: the same
  ``RandomState(0)`` halves of the trials in the assembly's order, d' per image x distractor with the
  per-object false-alarm rate, clipping at 5 and normalisation, Pearson r against the first half; its
  ceiling is the two halves' consistency on those same halves, which is how brainscore-vision's ceiling
  is computed (``skipna``), and the ceiled score is the mean over splits of ``r / sqrt(ceiling)``
  (brainscore-vision's ``ceil_score``). Data plugins whose every object is chosen in each half of the
  trials (the public data) give brainscore-vision's values; the stand-in test checks the equality.

``number_of_trials`` is read and needs nothing: brainscore-vision's activations run every image once unless
a benchmark asks for response variance (microsaccades), which these benchmark types do not. Stimuli are
shown by :mod:`callbacks.brainscore.screen`, in memory, as brainscore-vision's ``place_on_screen`` does.

NaN responses: brainscore-vision's ``pls`` fails on them (sklearn: "Input contains NaN"); the fast
engine fails too, in one line giving their count. brainscore-vision is imported only when a benchmark loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroalign.core.errors import ConfigError

from callbacks.brainscore.features import all_finite
from callbacks.brainscore.metrics.correlation import nanmedian
from callbacks.brainscore.metrics.i2n import i2n_score
from callbacks.brainscore.metrics.pls import pls_cv_correlations
from callbacks.brainscore.metrics.readout import logistic_probabilities
from callbacks.brainscore.types import StimulusSet

__all__ = ["FastNeural", "FastI2n", "fast_reading"]


def _stimulus_set(stimuli: Any, visual_degrees: float, identifier: str) -> StimulusSet:
    """neuroalign's :class:`StimulusSet` of a brainscore-vision stimulus set (its order, its files)."""
    ids = [str(sid) for sid in stimuli["stimulus_id"].values]
    paths = tuple(Path(str(stimuli.get_stimulus(sid))) for sid in stimuli["stimulus_id"].values)
    return StimulusSet(paths, tuple(ids), float(visual_degrees), config_key=f"stimuli of brainscore-vision benchmark {identifier}")


def _rows(stimuli: StimulusSet, wanted: Any, identifier: str) -> np.ndarray:
    """Row of each wanted stimulus id in ``stimuli`` (one line naming the first missing id)."""
    where = {sid: i for i, sid in enumerate(stimuli.stimulus_ids)}
    missing = [str(sid) for sid in wanted if str(sid) not in where]
    if missing:
        raise ConfigError(
            f"brainscore-vision benchmark {identifier}: its assembly names stimulus {missing[0]!r} "
            f"({len(missing)} in all) that its stimulus set lacks"
        )
    return np.asarray([where[str(sid)] for sid in wanted])


def _checked_features(X: torch.Tensor, identifier: str) -> torch.Tensor:
    if not all_finite(X):
        raise ConfigError(f"brainscore-vision benchmark {identifier}: the model's features contain NaN/inf")
    return X


@dataclass
class FastNeural:
    """A ``NeuralBenchmark`` with the ``pls`` metric, read for the fast engine (see module doc)."""

    identifier: str
    stimuli: StimulusSet
    target: np.ndarray  #: (n, neuroids) averaged responses, rows in the target assembly's order
    rows: np.ndarray  #: stimulus-set row of each target row
    splits: list[tuple[np.ndarray, np.ndarray]] = field(repr=False)
    n_components: int = 25

    def stimulus_sets(self) -> dict[str, StimulusSet]:
        return {"stimuli": self.stimuli}

    def raw_score(self, features: dict[str, torch.Tensor], device: torch.device | None) -> Any:
        """brainscore-vision's raw ``Score`` (mean over splits of the median r; ``error`` over splits)."""
        from brainscore_core.metrics import Score

        X = _checked_features(features["stimuli"], self.identifier)[torch.as_tensor(self.rows, device=features["stimuli"].device)]
        r = pls_cv_correlations(X, self.target, self.splits, n_components=self.n_components, device=device)
        per_split = nanmedian(r, dim=1).cpu().double().numpy()
        if not np.isfinite(per_split).all():
            raise ConfigError(f"brainscore-vision benchmark {self.identifier}: correlations undefined on every neuroid of a split (constant features?)")
        score = Score(per_split.mean())
        score.attrs["error"] = per_split.std() / np.sqrt(len(per_split))  # brainscore-vision: xarray std (ddof 0) / sqrt(splits)
        score.attrs["per_split"] = per_split
        score.attrs["n_neuroids_undefined"] = int((~torch.isfinite(r)).all(0).sum())
        return score


@dataclass
class FastI2n:
    """A Rajalingham2018 i2n benchmark, read for the fast engine (see module doc)."""

    identifier: str
    fitting: StimulusSet
    fit_labels: list[str]
    classes: list[str]
    stimuli: StimulusSet
    image_truths: list[str]
    trial_image_index: np.ndarray = field(repr=False)
    trial_truth: np.ndarray = field(repr=False)
    trial_choice: np.ndarray = field(repr=False)
    trial_distractor: np.ndarray = field(repr=False)

    def stimulus_sets(self) -> dict[str, StimulusSet]:
        return {"fitting": self.fitting, "stimuli": self.stimuli}

    def score(self, features: dict[str, torch.Tensor], device: torch.device | None) -> dict[str, Any]:
        """i2n raw score, ceiling and ceiled score (:func:`callbacks.brainscore.metrics.i2n.i2n_score`)."""
        fit = _checked_features(features["fitting"], self.identifier)
        test = _checked_features(features["stimuli"], self.identifier)
        proba, classes = logistic_probabilities(fit, self.fit_labels, test, C=1e-3, classes=self.classes, device=device)
        return i2n_score(
            proba, classes, self.image_truths, self.trial_image_index, self.trial_truth, self.trial_choice, self.trial_distractor
        )


def _neural(benchmark: Any, identifier: str) -> FastNeural | str:
    from sklearn.cross_decomposition import PLSRegression

    from brainscore_vision.metrics.regression_correlation.metric import CrossRegressedCorrelation

    metric = benchmark._similarity_metric
    if type(metric) is not CrossRegressedCorrelation:
        return f"its metric is {type(metric).__name__}, not the pls metric"
    regression = getattr(metric.regression, "_regression", None)
    if not isinstance(regression, PLSRegression) or regression.scale:
        return f"its regression is {type(regression).__name__}{' (scaled)' if getattr(regression, 'scale', False) else ''}, not PLS"
    import scipy.stats

    if getattr(metric.correlation, "_correlation", None) is not scipy.stats.pearsonr:
        return "its correlation is not Pearson r"
    cv = metric.cross_validation
    split = cv._split
    if getattr(cv, "_preprocess_indices", None) is not None or split._split_coord != "stimulus_id" or split._unique_split_values:
        return "its cross-validation is not over stimulus ids"
    assembly = benchmark._assembly
    if "time_bin" in assembly.dims:
        if assembly.sizes["time_bin"] != 1:
            return f"its assembly has {assembly.sizes['time_bin']} time bins"
        assembly = assembly.squeeze("time_bin")
    assembly = assembly.transpose("presentation", "neuroid")
    ids = assembly["stimulus_id"].values
    if len(set(ids)) != len(ids):
        return "its assembly repeats stimulus ids (not averaged over repetitions)"
    stimuli = _stimulus_set(assembly.stimulus_set, benchmark._visual_degrees, identifier)
    target = np.asarray(assembly.values, dtype=np.float64)
    nan = int(np.isnan(target).sum())
    if nan:
        raise ConfigError(
            f"brainscore-vision benchmark {identifier}: its averaged responses hold {nan} NaN values; brainscore-vision's "
            "pls fails on them too (sklearn: Input contains NaN) -- fix the data plugin's assembly"
        )
    labels = [assembly[split._stratification_coord].values] if split.do_stratify else []
    splits = [(np.asarray(a), np.asarray(b)) for a, b in split._split.split(np.zeros(len(ids)), *labels)]
    return FastNeural(identifier, stimuli, target, _rows(stimuli, ids, identifier), splits, int(regression.n_components))


def _i2n(benchmark: Any, identifier: str) -> FastI2n | str:
    from brainscore_vision.metrics.i1i2.metric import _I

    metric = benchmark._metric
    if not isinstance(metric, _I) or metric._collapse_distractors or not metric._normalize or metric._repetitions != 2:
        return f"its metric is {type(metric).__name__}, not i2n"
    fitting = benchmark._fitting_stimuli
    labels = [str(label) for label in fitting["image_label"].values]
    classes = list(dict.fromkeys(labels))  # brainscore-vision's ProbabilitiesClassifier numbers labels as first seen
    trials = benchmark._assembly
    stimuli = _stimulus_set(trials.stimulus_set, benchmark._visual_degrees, identifier)
    index = _rows(stimuli, trials["stimulus_id"].values, identifier)
    truth = trials["truth"].values.astype(str)
    image_truths: list[str | None] = [None] * len(stimuli)
    for row, t in zip(index, truth):
        image_truths[row] = t
    missing = [stimuli.stimulus_ids[i] for i, t in enumerate(image_truths) if t is None]
    if missing:
        raise ConfigError(
            f"brainscore-vision benchmark {identifier}: no trials for stimulus {missing[0]!r} ({len(missing)} in all) "
            "of its stimulus set"
        )
    return FastI2n(
        identifier,
        _stimulus_set(fitting, benchmark._visual_degrees, identifier),
        labels,
        classes,
        stimuli,
        image_truths,
        index,
        truth,
        np.asarray(trials.values).astype(str),
        trials["dist_obj"].values.astype(str),
    )


def fast_reading(benchmark: Any, identifier: str) -> FastNeural | FastI2n | str:
    """What the fast engine needs of a loaded brainscore-vision benchmark, or why it cannot score it.

    Raises:
        ConfigError: data the fast engine and brainscore-vision both cannot score (NaN responses, an
            assembly naming stimuli its stimulus set lacks).
    """
    from brainscore_vision.benchmark_helpers.neural_common import NeuralBenchmark
    from brainscore_vision.benchmarks.rajalingham2018.benchmarks.benchmark import _DicarloRajalingham2018

    if "degrees" in getattr(getattr(benchmark, "_assembly", None), "stimulus_set", {}):
        return "its stimuli give their own visual degrees"
    if type(benchmark) is NeuralBenchmark:
        return _neural(benchmark, identifier)
    if isinstance(benchmark, _DicarloRajalingham2018):
        return _i2n(benchmark, identifier)
    return f"the fast engine has no reader for {type(benchmark).__name__}"

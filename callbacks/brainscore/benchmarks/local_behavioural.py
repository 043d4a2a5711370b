"""A behavioural local benchmark: human 2AFC trials in a lab folder, scored with i2n.

Folder format: :mod:`callbacks.brainscore.benchmarks.local_folder` (``kind: behavior``:
``stimuli.csv``, ``trials.csv``, ``fitting.csv``). A logistic readout fitted on the features of the
``fitting.csv`` images gives the model's choice probabilities on the stimuli, compared with the
human trials by i2n (:mod:`callbacks.brainscore.metrics.i2n`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from neuroalign.core.errors import ConfigError

from callbacks.brainscore.benchmarks.local_folder import LocalBenchmark, LocalFolder, read_csv, read_stimulus_set
from callbacks.brainscore.metrics.i2n import i2n_score
from callbacks.brainscore.metrics.readout import logistic_probabilities
from callbacks.brainscore.types import BEHAVIOR, RegionScore, ScoringContext, StimulusSet

__all__ = ["LocalBehaviouralBenchmark"]


class LocalBehaviouralBenchmark(LocalBenchmark):
    """Human object-recognition trials read from a lab folder (region ``behavior``).

    Args:
        folder: the folder, as :func:`~callbacks.brainscore.benchmarks.local_folder.read_local_folder` returns it.

    Attributes:
        fit_labels: the label of every fitting image.
        trial_index, trial_truth, trial_choice, trial_distractor: the trials (image index into the
            stimuli, true object, chosen object, distractor or ``None``).
        image_truths: the true object of every stimulus.
    """

    kind = "behavior"

    def __init__(self, folder: LocalFolder) -> None:
        super().__init__(folder)
        self.region = BEHAVIOR
        rows = read_csv(self.path / "stimuli.csv", ("stimulus_id", "filename"))
        self._stimuli = read_stimulus_set(self.path, rows, self.visual_degrees, "stimuli.csv")
        fit_rows = read_csv(self.path / "fitting.csv", ("stimulus_id", "filename", "label"))
        self._fitting = read_stimulus_set(self.path, fit_rows, self.visual_degrees, "fitting.csv")
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

    def stimulus_sets(self) -> dict[str, StimulusSet]:
        return {"stimuli": self._stimuli, "fitting": self._fitting}

    def score_features(self, features: Mapping[str, torch.Tensor], context: ScoringContext) -> RegionScore:
        probs, objects = logistic_probabilities(
            features["fitting"], self.fit_labels, features["stimuli"], device=context.device, config_key="fitting.csv `label`"
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
            extra={"per_split": result["raw_per_split"], "per_split_ceiled": result["ceiled_per_split"]},
        )

"""The benchmark interface every Brain-Score benchmark of neuroalign implements.

Two families share one interface so the engine (:func:`callbacks.brainscore.engine.score_model`) can mix them:

* :class:`FeatureBenchmark` -- scored from features the *engine* extracts: local folder benchmarks
  (:mod:`callbacks.brainscore.benchmarks.local`) and the synthetic benchmark
  (:mod:`callbacks.brainscore.benchmarks.synthetic`). They expose their stimuli as
  :class:`~callbacks.brainscore.types.StimulusSet` objects (one per role: ``"stimuli"``, and for
  behaviour also ``"fitting"``), so benchmarks showing the same images share ONE forward pass, and
  score a ``(n_stimuli, n_features)`` matrix per role with :meth:`FeatureBenchmark.score_features`.
* Any other :class:`Benchmark` scores the whole model itself in :meth:`Benchmark.score_model`:
  brainscore-vision benchmarks (any registered id)
  (:class:`callbacks.brainscore.benchmarks.brainscore_vision.BrainScoreVisionBenchmark`) wrap the model
  in brainscore-vision's ``PytorchWrapper`` / ``ModelCommitment`` there, using
  ``context.model_identifier`` (changes with the weights) and the region -> layer map.

Contract for implementers:

* ``identifier`` -- a unique string (brainscore-vision id, or ``local:<name>``);
* ``region`` -- one of :data:`~callbacks.brainscore.types.REGIONS` or ``"behavior"``; ``kind`` --
  ``"neural"`` or ``"behavior"``;
* :meth:`Benchmark.score_model` returns a :class:`~callbacks.brainscore.types.RegionScore` with finite
  ``ceiled``, ``raw`` and ``ceiling`` or raises (:class:`~neuroalign.core.errors.NeuroAlignError` for
  user-fixable problems); never a silent NaN;
* ``layer`` is the model layer used (the region's entry of the region -> layer map, or the
  behavioural readout layer);
* the ceiled score follows ``context.ceiling_formula``
  (:data:`~callbacks.brainscore.types.CEILING_FORMULAS`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from neuroalign.core.errors import ConfigError

from callbacks.brainscore.features import extract_features
from callbacks.brainscore.types import RegionScore, ScoringContext, StimulusSet

__all__ = ["Benchmark", "FeatureBenchmark"]


class Benchmark(ABC):
    """A Brain-Score benchmark: one region (or behaviour) and how to score a model on it."""

    identifier: str
    region: str
    kind: Literal["neural", "behavior"]

    @property
    def needs_features(self) -> bool:
        """True when the engine must extract features (see :class:`FeatureBenchmark`)."""
        return False

    def layer_for(self, region_layer_map: Mapping[str, str], behavioral_readout_layer: str | None) -> str:
        """The model layer this benchmark reads (``ConfigError`` when the map lacks the region)."""
        if self.kind == "behavior":
            if not behavioral_readout_layer:
                raise ConfigError(f"benchmark {self.identifier} needs `behavioral_readout_layer`")
            return behavioral_readout_layer
        if self.region not in region_layer_map:
            raise ConfigError(f"benchmark {self.identifier} scores {self.region} but `region_layer_map` has no {self.region}")
        return region_layer_map[self.region]

    @abstractmethod
    def score_model(
        self,
        model: nn.Module,
        region_layer_map: Mapping[str, str],
        behavioral_readout_layer: str | None,
        context: ScoringContext,
    ) -> RegionScore:
        """Score ``model`` (any [0,1]-input module) with the given layer assignment."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identifier!r}, region={self.region!r})"


class FeatureBenchmark(Benchmark):
    """A benchmark scored from features the engine extracts in one shared forward pass.

    Subclasses implement :meth:`stimulus_sets` and :meth:`score_features`; :meth:`score_layer` scores
    one layer from extracted features (the engine and the layer sweep call it), and
    :meth:`score_model` (for using one benchmark alone) extracts the features itself through
    :func:`callbacks.brainscore.features.extract_features`.

    Per-split scores: a cross-validated benchmark gives the raw score of each CV split in its score's
    ``extra["per_split"]`` (and ``extra["per_split_ceiled"]`` where it ceils each split itself, as i2n does);
    layer profiles select and report on them (:mod:`callbacks.brainscore.profile`).
    """

    @property
    def needs_features(self) -> bool:
        return True

    @property
    def cross_validated(self) -> bool:
        """``True`` when scores come with per-split scores (see class doc); subclasses whose metric gives one
        whole-set number override it (:class:`~callbacks.brainscore.benchmarks.local_neural.LocalNeuralBenchmark`
        with plain ``cka`` / ``rdm``)."""
        return True

    @abstractmethod
    def stimulus_sets(self) -> dict[str, StimulusSet]:
        """Stimuli by role: ``"stimuli"`` (scored); behaviour also ``"fitting"`` (readout training)."""

    @abstractmethod
    def score_features(self, features: Mapping[str, torch.Tensor], context: ScoringContext) -> RegionScore:
        """Score ``(n_images, n_features)`` features of each role (rows in the stimulus sets' order)."""

    def score_layer(
        self, features: Mapping[str, Mapping[str, torch.Tensor]], layer: str, context: ScoringContext
    ) -> RegionScore:
        """Score ``layer`` from ``{stimulus_set.key: {layer: features}}`` (the output of ``extract_features``).

        The returned score records ``layer``.
        """
        roles = {role: features[s.key][layer] for role, s in self.stimulus_sets().items()}
        score = self.score_features(roles, context)
        score.layer = layer
        return score

    def score_model(
        self,
        model: nn.Module,
        region_layer_map: Mapping[str, str],
        behavioral_readout_layer: str | None,
        context: ScoringContext,
    ) -> RegionScore:
        layer = self.layer_for(region_layer_map, behavioral_readout_layer)
        features = extract_features(model, list(self.stimulus_sets().values()), [layer], context=context)
        return self.score_layer(features, layer, context)

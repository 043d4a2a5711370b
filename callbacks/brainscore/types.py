"""The benchmark interface every Brain-Score benchmark of neuroalign implements, and its result.

Two families share one interface so the engine (:func:`callbacks.brainscore.engine.score_model`) can mix them:

* :class:`FeatureBenchmark` -- scored from features the *engine* extracts: local folder benchmarks
  (:mod:`callbacks.brainscore.benchmarks.local`) and the synthetic benchmark (:mod:`callbacks.brainscore.benchmarks.synthetic`). They
  expose their stimuli as :class:`StimulusSet` objects (one per role: ``"stimuli"``, and for
  behaviour also ``"fitting"``), so benchmarks showing the same images share ONE forward pass, and
  score a ``(n_stimuli, n_features)`` matrix per role with :meth:`FeatureBenchmark.score_features`.
* Any other :class:`Benchmark` scores the whole model itself in :meth:`Benchmark.score_model`:
  brainscore-vision public benchmarks (``callbacks.brainscore.benchmarks.brainscore_vision.BrainScoreVisionBenchmark``)
  wrap the model in brainscore-vision's ``PytorchWrapper`` / ``ModelCommitment`` there, using
  ``context.model_identifier`` (changes with the weights) and the region -> layer map.

Contract for implementers (part B reads this):

* ``identifier`` -- a unique string (brainscore-vision id, or ``local:<name>``);
* ``region`` -- one of :data:`REGIONS` or ``"behavior"``; ``kind`` -- ``"neural"`` or ``"behavior"``;
* :meth:`Benchmark.score_model` returns a :class:`RegionScore` with finite ``ceiled``, ``raw`` and
  ``ceiling`` or raises (:class:`~neuroalign.core.errors.NeuroAlignError` for user-fixable
  problems); never a silent NaN;
* ``layer`` is the model layer used (the region's entry of the region -> layer map, or the
  behavioural readout layer);
* the ceiled score follows ``context.ceiling_formula`` (:data:`CEILING_FORMULAS`, see
  :func:`callbacks.brainscore.metrics.ceiling.ceil_score`).
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from neuroalign.core.errors import ConfigError

__all__ = [
    "REGIONS",
    "BEHAVIOR",
    "CEILING_FORMULAS",
    "CeilingFormula",
    "RegionScore",
    "StimulusSet",
    "ScoringContext",
    "Benchmark",
    "FeatureBenchmark",
    "check_region",
]

#: the neural regions, in hierarchy order (rho-hierarchy correlates their scores with 1..4)
REGIONS: tuple[str, ...] = ("V1", "V2", "V4", "IT")
#: the region name of behavioural benchmarks
BEHAVIOR = "behavior"

CeilingFormula = Literal["r2_over_ceiling", "squared_r_over_ceiling"]
#: ``r2_over_ceiling``: r^2 / ceiling (brainscore-vision 2.4.2, default);
#: ``squared_r_over_ceiling``: (r / ceiling)^2 (releases before 2026, the 2022 leaderboard)
CEILING_FORMULAS: tuple[str, ...] = ("r2_over_ceiling", "squared_r_over_ceiling")


def check_region(region: str, config_key: str = "region", allow_behavior: bool = True) -> str:
    """Return ``region`` if it is V1/V2/V4/IT (or ``behavior``), else raise ``ConfigError``."""
    valid = REGIONS + ((BEHAVIOR,) if allow_behavior else ())
    if region not in valid:
        raise ConfigError(f"unknown region {region!r} in `{config_key}`; valid: {', '.join(valid)}")
    return region


@dataclass
class RegionScore:
    """The score of one benchmark.

    Attributes:
        region: ``V1`` / ``V2`` / ``V4`` / ``IT`` / ``behavior``.
        ceiled: the ceiled score (what Brain-Score reports).
        raw: the raw score (median Pearson r for neural benchmarks; i2n consistency for behaviour).
        ceiling: the benchmark's ceiling.
        benchmark: the benchmark identifier.
        n_neuroids_dropped: neuroids left out (all-NaN responses or undefined correlation).
        layer: the model layer scored.
        ceiling_formula: how ``ceiled`` was obtained from ``raw`` and ``ceiling``.
        error: standard error of the raw score over splits (NaN when not computed).
        extra: anything else worth keeping (per-split scores, counts).
    """

    region: str
    ceiled: float
    raw: float
    ceiling: float
    benchmark: str
    n_neuroids_dropped: int = 0
    layer: str | None = None
    ceiling_formula: str = "r2_over_ceiling"
    error: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("ceiled", "raw", "ceiling"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"benchmark {self.benchmark}: {name} score is not finite ({value})")
            setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return asdict(self)


@dataclass(frozen=True)
class StimulusSet:
    """Images a :class:`FeatureBenchmark` shows the model.

    Attributes:
        paths: image files, in the order of the benchmark's responses.
        stimulus_ids: one id per image.
        visual_degrees: the field of view the images span (placed on the model's screen accordingly).
    """

    paths: tuple[Path, ...]
    stimulus_ids: tuple[str, ...]
    visual_degrees: float

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.stimulus_ids):
            raise ValueError("StimulusSet: paths and stimulus_ids differ in length")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def key(self) -> str:
        """Content key: benchmarks whose stimulus sets have equal keys share one feature extraction."""
        digest = hashlib.sha1(repr((tuple(str(p) for p in self.paths), float(self.visual_degrees))).encode())
        return digest.hexdigest()[:16]


@dataclass
class ScoringContext:
    """What a benchmark may need beyond the model (filled by the engine).

    Attributes:
        model_identifier: unique name of the current weights (e.g. ``run-step1200``); brainscore-vision
            caches activations by it, so it must change whenever the weights change.
        ceiling_formula: one of :data:`CEILING_FORMULAS`.
        model_visual_degrees: field of view of the model's input (Brain-Score: 8 degrees).
        batch_size: images per forward pass.
        device: device of the model (scoring runs there).
        seed: seed of anything random in scoring (projections); splits use Brain-Score's fixed seeds.
    """

    model_identifier: str = "model"
    ceiling_formula: str = "r2_over_ceiling"
    model_visual_degrees: float = 8.0
    batch_size: int = 64
    device: torch.device | None = None
    seed: int = 0


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

    Subclasses implement :meth:`stimulus_sets` and :meth:`score_features`; :meth:`score_model` (for
    using one benchmark alone) extracts the features itself through :mod:`callbacks.brainscore.features`.
    """

    @property
    def needs_features(self) -> bool:
        return True

    @abstractmethod
    def stimulus_sets(self) -> dict[str, StimulusSet]:
        """Stimuli by role: ``"stimuli"`` (scored); behaviour also ``"fitting"`` (readout training)."""

    @abstractmethod
    def score_features(self, features: Mapping[str, torch.Tensor], context: ScoringContext) -> RegionScore:
        """Score ``(n_images, n_features)`` features of each role (rows in the stimulus sets' order)."""

    def score_model(
        self,
        model: nn.Module,
        region_layer_map: Mapping[str, str],
        behavioral_readout_layer: str | None,
        context: ScoringContext,
    ) -> RegionScore:
        from callbacks.brainscore.features import extract_features

        layer = self.layer_for(region_layer_map, behavioral_readout_layer)
        sets = self.stimulus_sets()
        feats = extract_features(model, list(sets.values()), [layer], context=context)
        score = self.score_features({role: feats[s.key][layer] for role, s in sets.items()}, context)
        score.layer = layer
        return score


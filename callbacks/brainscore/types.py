"""The plain types of the Brain-Score room: regions, scores, stimulus sets, the scoring context and
the ceiling formulas.

They import nothing of the room, so every other module of it (metrics, features, benchmarks, the
engine, the callback) can use them. The benchmark interface built on them is
:mod:`callbacks.brainscore.benchmarks.base`.

The ceiling formulas (:data:`CEILING_FORMULAS`) turn a raw neural score ``r`` and a ceiling ``c``
into the ceiled score Brain-Score reports; :func:`check_ceiling_formula` is the one validation of a
formula name (used by the callback, the engine and
:func:`callbacks.brainscore.metrics.ceiling.ceil_score`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from neuroalign.core.errors import ConfigError

__all__ = [
    "REGIONS",
    "BEHAVIOR",
    "CEILING_FORMULAS",
    "CeilingFormula",
    "RegionScore",
    "StimulusSet",
    "ScoringContext",
    "check_region",
    "check_ceiling_formula",
    "ENGINES",
    "Engine",
    "check_engine",
]

#: the neural regions, in hierarchy order (rho-hierarchy correlates their scores with 1..4)
REGIONS: tuple[str, ...] = ("V1", "V2", "V4", "IT")
#: the region name of behavioural benchmarks
BEHAVIOR = "behavior"

CeilingFormula = Literal["r2_over_ceiling", "squared_r_over_ceiling"]


def _r2_over_ceiling(raw: float, ceiling: float) -> float:
    return float(raw) ** 2 / float(ceiling)


def _squared_r_over_ceiling(raw: float, ceiling: float) -> float:
    return (float(raw) / float(ceiling)) ** 2


#: ceiling formula name -> ``f(raw, ceiling)``:
#: ``r2_over_ceiling``: r^2 / ceiling (brainscore-vision 2.4.2, default);
#: ``squared_r_over_ceiling``: (r / ceiling)^2 (releases before 2026, the 2022 leaderboard)
CEILING_FORMULAS: dict[str, Callable[[float, float], float]] = {
    "r2_over_ceiling": _r2_over_ceiling,
    "squared_r_over_ceiling": _squared_r_over_ceiling,
}


def check_ceiling_formula(formula: str, config_key: str = "`ceiling_formula`") -> str:
    """Return ``formula`` if it is a key of :data:`CEILING_FORMULAS`, else raise a one-line ``ConfigError``.

    Args:
        formula: the formula name.
        config_key: the configuration key named in the message (e.g. ``BrainScoreCallback `ceiling_formula```).
    """
    if formula not in CEILING_FORMULAS:
        raise ConfigError(
            f"unknown ceiling formula {formula!r} ({config_key}); valid: {', '.join(CEILING_FORMULAS)}"
        )
    return formula


#: how brainscore-vision benchmarks are scored: ``fast`` -- their own data, splits and ceiling with
#: neuroalign's shared feature pass and torch fits, where the benchmark type is supported
#: (:mod:`callbacks.brainscore.benchmarks.bsv_fast`); ``brainscore-vision`` -- its own model interface and metrics
Engine = Literal["fast", "brainscore-vision"]
ENGINES: tuple[str, ...] = ("fast", "brainscore-vision")


def check_engine(engine: str, config_key: str = "`engine`") -> str:
    """Return ``engine`` if it is one of :data:`ENGINES`, else raise a one-line ``ConfigError``."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown scoring engine {engine!r} ({config_key}); valid: {', '.join(ENGINES)}")
    return engine


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
        config_key: where the images come from, named when one cannot be read.
    """

    paths: tuple[Path, ...]
    stimulus_ids: tuple[str, ...]
    visual_degrees: float
    config_key: str = field(default="stimuli.csv `filename`", compare=False)

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

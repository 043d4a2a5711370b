"""brainscore-vision's own public benchmarks, run on any [0,1]-input model through its model interface.

:class:`BrainScoreVisionBenchmark` scores a model exactly as brainscore-vision 2.4.2 would: the
model goes into brainscore-vision's ``PytorchWrapper`` and ``ModelCommitment``
(:mod:`callbacks.brainscore.model_adapter`) with an explicit region -> layer map (never the layer
search, which needs the network and an ImageNet HDF5), and the benchmark is loaded by id with
``brainscore_vision.load_benchmark``.

* ``BS_INSTALL_DEPENDENCIES=no`` is set before any brainscore-vision plugin is imported (otherwise
  loading a plugin runs ``pip install``); brainscore-vision is imported only when a benchmark loads.
* brainscore-vision caches activations by identifier, not by weights: ``context.model_identifier``
  (which the caller changes with the weights, e.g. by the global step) names the commitment, and the
  on-disk activation cache is off unless ``cache_activations=True``.
* Before loading, :func:`callbacks.brainscore.brainio_data.check_brainio_files` makes a missing data file fail
  within seconds offline, listing every file and where to place it.
* The model's train/eval mode, device and ``requires_grad`` flags are restored afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from torch import nn

from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import get_layer

from callbacks.brainscore.benchmarks.base import Benchmark
from callbacks.brainscore.brainio_data import BENCHMARK_DATA, BRAINIO_FILES, check_brainio_files, files_for, import_brainscore_vision
from callbacks.brainscore.features import preserved_state
from callbacks.brainscore.metrics.ceiling import ceil_score
from callbacks.brainscore.model_adapter import make_model_commitment
from callbacks.brainscore.types import BEHAVIOR, RegionScore, ScoringContext

__all__ = ["BrainScoreVisionBenchmark", "check_public_data", "BENCHMARK_REGIONS"]

#: public benchmark id -> region it scores
BENCHMARK_REGIONS: dict[str, str] = {
    "FreemanZiemba2013public.V1-pls": "V1",
    "FreemanZiemba2013public.V2-pls": "V2",
    "MajajHong2015public.V4-pls": "V4",
    "MajajHong2015public.IT-pls": "IT",
    "Rajalingham2018public-i2n": BEHAVIOR,
}


# -------------------------------------------------------------------------------- the benchmark
def _scalar(value: Any) -> float:
    return float(np.asarray(value).mean())


class BrainScoreVisionBenchmark(Benchmark):
    """A brainscore-vision public benchmark, loaded by id and run through brainscore-vision's model interface.

    Needs the benchmark's BrainIO files in ``$BRAINIO_HOME`` (``~/.brainio``) or network access; see
    ``docs/brainscore_data.md`` for the nine files of the five benchmarks.

    Args:
        identifier: one of ``FreemanZiemba2013public.V1-pls``, ``FreemanZiemba2013public.V2-pls``,
            ``MajajHong2015public.V4-pls``, ``MajajHong2015public.IT-pls``, ``Rajalingham2018public-i2n``.
        visual_degrees: the model's field of view (Brain-Score's standard: 8).
        image_size: side of the images fed to the model (default ``model.input_size`` or 224).
        cache_activations: let brainscore-vision store activations on disk (keyed by the model identifier).
    """

    def __init__(
        self,
        identifier: str,
        visual_degrees: float = 8.0,
        image_size: int | None = None,
        cache_activations: bool = False,
    ) -> None:
        files_for(identifier)  # unknown id: ConfigError naming the supported ones
        self.identifier = identifier
        self.region = BENCHMARK_REGIONS[identifier]
        self.kind = "behavior" if self.region == BEHAVIOR else "neural"
        self.visual_degrees = visual_degrees
        self.image_size = image_size
        self.cache_activations = cache_activations
        self._benchmark = None

    def load(self):
        """Load the brainscore-vision benchmark (once): data files checked first, offline failure within seconds."""
        if self._benchmark is None:
            check_brainio_files([self.identifier])
            brainscore_vision = import_brainscore_vision()
            with self._intact_files():
                self._benchmark = brainscore_vision.load_benchmark(self.identifier)
        return self._benchmark

    @contextlib.contextmanager
    def _intact_files(self) -> Iterator[None]:
        """Turn brainscore-core's ``SHA1 mismatch`` (a corrupt or foreign cached file) into a one-line error."""
        try:
            yield
        except ValueError as err:
            if "SHA1 mismatch" not in str(err):
                raise
            raise self._corrupt_file_error(err) from None

    def _corrupt_file_error(self, err: ValueError) -> ConfigError:
        group = BRAINIO_FILES[BENCHMARK_DATA[self.identifier]]
        bad = [f for f in group if f.sha1 in str(err)] or list(group)
        listing = "; ".join(f"{f.path()} (from {f.url})" for f in bad)
        return ConfigError(
            f"corrupt Brain-Score data file of {self.identifier} in $BRAINIO_HOME ({err}); "
            f"replace it with the original: {listing} (see docs/brainscore_data.md)"
        )

    def score_model(
        self,
        model: nn.Module,
        region_layer_map: Mapping[str, str],
        behavioral_readout_layer: str | None,
        context: ScoringContext,
    ) -> RegionScore:
        """Score ``model`` with brainscore-vision; ``context.model_identifier`` names the weights."""
        layer = self.layer_for(region_layer_map, behavioral_readout_layer)  # same checks as local benchmarks
        regions = {r: region_layer_map[r] for r in (self.region,) if r != BEHAVIOR}
        get_layer(model, layer)
        benchmark = self.load()
        with preserved_state(model):
            commitment = make_model_commitment(
                model,
                identifier=context.model_identifier,
                region_layer_map=regions,
                behavioral_readout_layer=behavioral_readout_layer,
                visual_degrees=self.visual_degrees,
                image_size=self.image_size,
                batch_size=context.batch_size,
                cache_activations=self.cache_activations,
            )
            with self._intact_files():  # some benchmarks load their data lazily, at the first call
                score = benchmark(commitment)
        return self._region_score(score, layer, context)

    def _region_score(self, score, layer: str, context: ScoringContext) -> RegionScore:
        raw = _scalar(score.attrs["raw"])
        ceiling = _scalar(score.attrs["ceiling"])
        if self.kind == "neural":
            formula = context.ceiling_formula
            ceiled = float(ceil_score(raw, ceiling, formula))
        else:  # i2n: brainscore-vision ceils each split by sqrt(ceiling) and averages
            formula = "i2n: mean over splits of raw / sqrt(ceiling)"
            ceiled = _scalar(score)
        error = score.attrs.get("error", float("nan"))
        return RegionScore(
            region=self.region,
            ceiled=ceiled,
            raw=raw,
            ceiling=ceiling,
            benchmark=self.identifier,
            layer=layer,
            ceiling_formula=formula,
            error=_scalar(error),
            extra={"brainscore_vision_ceiled": _scalar(score), "model_identifier": context.model_identifier},
        )


def check_public_data(benchmarks: Sequence[Benchmark]) -> None:
    """Check the data files of every :class:`BrainScoreVisionBenchmark` in ``benchmarks`` at once.

    Offline with files missing, one ``MissingFileError`` lists the missing files of all of them (call
    it before scoring a mix of benchmarks, so a run does not fail benchmark by benchmark).
    """
    ids = [b.identifier for b in benchmarks if isinstance(b, BrainScoreVisionBenchmark)]
    if ids:
        check_brainio_files(ids)

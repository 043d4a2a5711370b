"""Any brainscore-vision benchmark, run on any [0,1]-input model through brainscore-vision's model interface.

:class:`BrainScoreVisionBenchmark` scores a model exactly as brainscore-vision 2.4.2 would: the
benchmark is loaded by id with ``brainscore_vision.load_benchmark`` (any id its registry knows:
:func:`callbacks.brainscore.bsv_registry.check_benchmark_id` lists the nearest ones for an unknown
id), and the model goes into brainscore-vision's ``PytorchWrapper`` and ``ModelCommitment``
(:mod:`callbacks.brainscore.model_adapter`) with an explicit region -> layer map (never the layer
search, which needs the network and an ImageNet HDF5).

* Neural vs behavioural and the region are told from the loaded benchmark
  (:func:`callbacks.brainscore.bsv_registry.benchmark_kind` / ``benchmark_region``, in the order
  documented there); ``region`` overrides them (the ``benchmark_regions`` setting).
* ``BS_INSTALL_DEPENDENCIES=no`` is set before any brainscore-vision plugin is imported (otherwise
  loading a plugin runs ``pip install``); brainscore-vision is imported only when a benchmark loads.
* Data comes from brainscore-vision's own data layer: registered loaders (including a user's own
  data plugin) are used as brainscore-vision uses them; files fetched from S3 and missing offline
  fail within seconds in one line (:mod:`callbacks.brainscore.brainio_offline`).
* A loader whose data lacks a coordinate the benchmark needs fails in one line naming the coordinate.
* The identifier of the commitment is ``context.model_identifier`` plus a hash of the weights and the
  input size (:func:`callbacks.brainscore.identifiers.stale_proof_identifier`), so brainscore-vision's
  caches never return another weight state's activations; the on-disk activation cache is off unless
  ``cache_activations=True``.
* The model's train/eval mode, device and ``requires_grad`` flags are restored afterwards.

``engine="fast"`` (the default) scores the benchmark types the fast engine reads
(:mod:`callbacks.brainscore.benchmarks.bsv_fast`: ``NeuralBenchmark`` with ``pls``, the Rajalingham2018 i2n
benchmarks) from brainscore-vision's own data, splits and ceiling, but with neuroalign's one shared feature pass
and torch fits; the benchmark is then a feature benchmark (``needs_features``) for the engine. Other types
are scored by brainscore-vision's own path, with one log line saying so. ``engine="brainscore-vision"``
always takes brainscore-vision's own path. Either way the ceiling is brainscore-vision's, computed once per
benchmark object (a run) and kept in memory.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
from torch import nn

from neuroalign.core.errors import ConfigError, NeuroAlignError
from neuroalign.core.layers import get_layer

from callbacks.brainscore.benchmarks.base import FeatureBenchmark
from callbacks.brainscore.benchmarks.bsv_fast import FastI2n, FastNeural, fast_reading
from callbacks.brainscore.brainio_data import import_brainscore_vision
from callbacks.brainscore.bsv_registry import REGIONS_KEY, benchmark_kind, benchmark_region, check_benchmark_id
from callbacks.brainscore.features import preserved_state
from callbacks.brainscore.identifiers import stale_proof_identifier
from callbacks.brainscore.metrics.ceiling import ceil_score
from callbacks.brainscore.model_adapter import make_model_commitment, model_input_hw
from callbacks.brainscore.types import BEHAVIOR, Engine, RegionScore, ScoringContext, StimulusSet, check_engine, check_region

__all__ = ["BrainScoreVisionBenchmark"]

log = logging.getLogger(__name__)


def _scalar(value: Any) -> float:
    return float(np.asarray(value).mean())


#: how brainscore-vision / xarray name a coordinate they did not find (``Expected stratification coordinate X``)
_COORD_MESSAGE = re.compile(r"coord(?:inate)?(?: named)? '?([A-Za-z_][A-Za-z0-9_]*)'?")


def _missing_coord(err: Exception) -> str | None:
    """The coordinate a lookup failed on (``KeyError('object_name')``, an assertion naming it), else ``None``."""
    if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str):
        return err.args[0]
    match = _COORD_MESSAGE.search(str(err)) if isinstance(err, (AssertionError, ValueError)) else None
    return match.group(1) if match else None


class BrainScoreVisionBenchmark(FeatureBenchmark):
    """A brainscore-vision benchmark, loaded by id and run through brainscore-vision's model interface.

    Needs the benchmark's data: registered by a data plugin (brainscore-vision's own, or a user's),
    fetched into ``$BRAINIO_HOME`` (``~/.brainio``) or downloadable; see ``docs/brainscore_data.md``.

    Args:
        identifier: any id of ``brainscore_vision.benchmark_registry``, e.g. ``MajajHong2015public.IT-pls``.
        region: the region it scores (``V1``/``V2``/``V4``/``IT``/``behavior``); ``None`` infers it
            from the benchmark (the ``benchmark_regions`` setting).
        visual_degrees: the model's field of view (Brain-Score's standard: 8).
        image_size: side of the images fed to the model (default ``model.input_size`` or 224).
        cache_activations: let brainscore-vision store activations on disk (keyed by the model identifier).
        engine: ``fast`` (default; see module doc) or ``brainscore-vision``.
    """

    def __init__(
        self,
        identifier: str,
        region: str | None = None,
        visual_degrees: float = 8.0,
        image_size: int | None = None,
        cache_activations: bool = False,
        engine: Engine = "fast",
    ) -> None:
        self.engine = check_engine(engine)
        self.identifier = check_benchmark_id(identifier)
        self._region_override = None if region is None else check_region(region, f"{REGIONS_KEY}.{identifier}")
        self.visual_degrees = visual_degrees
        self.image_size = image_size
        self.cache_activations = cache_activations
        self._benchmark = None
        self._described: tuple[str, Literal["neural", "behavior"]] | None = None
        self._reading: FastNeural | FastI2n | None | bool = False  # False: not read yet; None: not fast
        self._ceiling = None

    # ------------------------------------------------------------------ loading
    def load(self):
        """Load the brainscore-vision benchmark (once); missing data fails in one line, offline within seconds."""
        if self._benchmark is None:
            brainscore_vision = import_brainscore_vision()
            registry = brainscore_vision.benchmark_registry
            with self._data_errors("loading"):
                if self.identifier in registry:  # its plugin is imported, or a user registered it at run time
                    self._benchmark = registry[self.identifier]()
                else:
                    self._benchmark = brainscore_vision.load_benchmark(self.identifier)
        return self._benchmark

    def _describe(self) -> tuple[str, Literal["neural", "behavior"]]:
        if self._described is None:
            benchmark = self.load()
            kind = benchmark_kind(benchmark)
            if self._region_override is not None:
                kind = "behavior" if self._region_override == BEHAVIOR else "neural"
            self._described = (benchmark_region(benchmark, self.identifier, kind, self._region_override), kind)
        return self._described

    @property
    def region(self) -> str:  # type: ignore[override]
        """The region scored (the override, else inferred from the loaded benchmark)."""
        return self._describe()[0]

    @property
    def kind(self) -> Literal["neural", "behavior"]:  # type: ignore[override]
        """``neural`` or ``behavior``, told from the loaded benchmark (or from the override)."""
        return self._describe()[1]

    @contextlib.contextmanager
    def _data_errors(self, doing: str) -> Iterator[None]:
        """Turn a coordinate missing from registered data into one line naming the coordinate."""
        try:
            yield
        except NeuroAlignError:
            raise
        except (KeyError, AssertionError, ValueError) as err:
            coord = _missing_coord(err)
            if coord is None:
                raise
            raise ConfigError(
                f"brainscore-vision benchmark {self.identifier} failed while {doing}: its data lacks the coord "
                f"{coord!r} ({type(err).__name__}: {err}); add it to the assembly or stimulus set the data plugin "
                f"registers, or drop the benchmark from `benchmarks`"
            ) from err

    # ------------------------------------------------------------------ fast engine
    def fast(self) -> FastNeural | FastI2n | None:
        """The fast engine's reading of the benchmark, or ``None`` when brainscore-vision's path scores it."""
        if self._reading is False:
            self._reading = None
            if self.engine == "fast":
                benchmark = self.load()
                with self._data_errors("reading its data"):
                    reading = fast_reading(benchmark, self.identifier)
                if isinstance(reading, str):
                    log.info(
                        "Brain-Score benchmark %s: %s, so brainscore-vision's own path scores it (engine: fast covers "
                        "NeuralBenchmark with pls and the Rajalingham2018 i2n benchmarks)", self.identifier, reading,
                    )
                else:
                    self._reading = reading
        return self._reading

    @property
    def needs_features(self) -> bool:
        """True when the fast engine scores this benchmark from the engine's shared feature pass."""
        return self.fast() is not None

    def stimulus_sets(self) -> dict[str, StimulusSet]:
        reading = self.fast()
        if reading is None:
            raise RuntimeError(f"{self.identifier} is scored by brainscore-vision's path, which extracts its own features")
        return reading.stimulus_sets()

    def ceiling(self):
        """brainscore-vision's ceiling ``Score`` of the benchmark, computed once and kept in memory."""
        if self._ceiling is None:
            with self._data_errors("computing its ceiling"):
                self._ceiling = self.load().ceiling
        return self._ceiling

    def score_features(self, features: Mapping[str, Any], context: ScoringContext) -> RegionScore:
        """Score from the engine's features (fast engine; see :mod:`callbacks.brainscore.benchmarks.bsv_fast`)."""
        reading = self.fast()
        benchmark = self.load()
        if isinstance(reading, FastI2n):
            result = reading.score(dict(features), context.device)
            return RegionScore(
                region=self.region,
                ceiled=result["ceiled"],
                raw=result["raw"],
                ceiling=result["ceiling"],
                benchmark=self.identifier,
                ceiling_formula=f"brainscore-vision ({type(benchmark).__name__})",
                error=result["error"],
                extra={"brainscore_vision_ceiled": result["ceiled"], "model_identifier": context.model_identifier,
                       "engine": "fast", "raw_per_split": result["raw_per_split"], "per_split": result["raw_per_split"],
                       "per_split_ceiled": result["ceiled_per_split"]},
            )
        from brainscore_vision.benchmark_helpers.neural_common import explained_variance

        raw = reading.raw_score(dict(features), context.device)
        score = explained_variance(raw, self.ceiling())  # brainscore-vision's own ceiling, once a run
        result = self._region_score(benchmark, score, None, context, context.model_identifier)
        result.n_neuroids_dropped = raw.attrs["n_neuroids_undefined"]
        result.extra["engine"] = "fast"
        result.extra["per_split"] = [float(v) for v in raw.attrs["per_split"]]
        return result

    # ------------------------------------------------------------------ scoring
    def score_model(
        self,
        model: nn.Module,
        region_layer_map: Mapping[str, str],
        behavioral_readout_layer: str | None,
        context: ScoringContext,
    ) -> RegionScore:
        """Score ``model`` alone: the fast engine's own feature pass, else brainscore-vision's path."""
        if self.needs_features:
            return super().score_model(model, region_layer_map, behavioral_readout_layer, context)
        layer = self.layer_for(region_layer_map, behavioral_readout_layer)  # same checks as local benchmarks
        get_layer(model, layer)
        benchmark = self.load()
        regions = {self.region: region_layer_map[self.region]} if self.kind == "neural" else {}
        identifier = stale_proof_identifier(context.model_identifier, model, model_input_hw(model, self.image_size))
        with preserved_state(model):
            commitment = make_model_commitment(
                model,
                identifier=identifier,
                region_layer_map=regions,
                behavioral_readout_layer=behavioral_readout_layer,
                visual_degrees=self.visual_degrees,
                image_size=self.image_size,
                batch_size=context.batch_size,
                cache_activations=self.cache_activations,
            )
            with self._data_errors("scoring"):  # some benchmarks load their data lazily, at the first call
                score = benchmark(commitment)
        return self._region_score(benchmark, score, layer, context, identifier)

    def _region_score(self, benchmark, score, layer: str | None, context: ScoringContext, identifier: str) -> RegionScore:
        bsv_ceiled = _scalar(score)
        raw = _scalar(score.attrs["raw"]) if "raw" in score.attrs else bsv_ceiled
        ceiling = _scalar(score.attrs["ceiling"]) if "ceiling" in score.attrs else 1.0
        if self.kind == "neural" and _explained_variance_benchmark(benchmark):
            formula = context.ceiling_formula
            ceiled = float(ceil_score(raw, ceiling, formula))
        else:  # brainscore-vision's own ceiling (e.g. i2n: mean over splits of raw / sqrt(ceiling))
            formula = f"brainscore-vision ({type(benchmark).__name__})"
            ceiled = bsv_ceiled
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
            extra={"brainscore_vision_ceiled": bsv_ceiled, "model_identifier": identifier, "engine": "brainscore-vision"},
        )


def _explained_variance_benchmark(benchmark: Any) -> bool:
    """brainscore-vision's ``NeuralBenchmark``: ceiled = r^2 / ceiling, so ``ceiling_formula`` applies."""
    from brainscore_vision.benchmark_helpers.neural_common import NeuralBenchmark

    return isinstance(benchmark, NeuralBenchmark)

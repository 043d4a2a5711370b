"""brainscore-vision's own public benchmarks, run on any [0,1]-input model through its model interface.

:class:`BrainScoreVisionBenchmark` scores a model exactly as brainscore-vision 2.4.2 would: the
model goes into brainscore-vision's ``PytorchWrapper`` and ``ModelCommitment`` with an explicit
region -> layer map (never the layer search, which needs the network and an ImageNet HDF5), and the
benchmark is loaded by id with ``brainscore_vision.load_benchmark``.

* ``BS_INSTALL_DEPENDENCIES=no`` is set before any brainscore-vision plugin is imported (otherwise
  loading a plugin runs ``pip install``).
* The wrapper's preprocessing feeds [0,1] RGB tensors at the model's input size: neuroalign models
  normalise inside, so brainscore-vision's ImageNet normalisation must not be applied twice.
* brainscore-vision caches activations by identifier, not by weights: ``context.model_identifier``
  (which the caller changes with the weights, e.g. by the global step) names the commitment, and the
  on-disk activation cache is off unless ``cache_activations=True``.
* Before loading, :func:`callbacks.brainscore.commands.brainio_files.check_brainio_files` makes a missing data file fail
  within seconds offline, listing every file and where to place it.
* The model's train/eval mode, device and ``requires_grad`` flags are restored afterwards.

:func:`neural_assemblies` and :func:`reference_neural_benchmark` build brainscore-vision's own
``NeuralBenchmark`` (``pls`` metric, ``internal_consistency`` ceiling) in memory from plain arrays --
the reference the project's engine is checked against.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import get_layer

from callbacks.brainscore.types import BEHAVIOR, Benchmark, RegionScore, ScoringContext
from callbacks.brainscore.commands.brainio_files import BENCHMARK_DATA, BRAINIO_FILES, brainio_home, check_brainio_files, files_for
from callbacks.brainscore.features import _device_of, model_input_hw, preserved_state

__all__ = [
    "BrainScoreVisionBenchmark",
    "check_public_data",
    "BENCHMARK_REGIONS",
    "import_brainscore_vision",
    "preprocess_unit_range",
    "make_activations_model",
    "make_model_commitment",
    "neural_assemblies",
    "reference_neural_benchmark",
]

#: public benchmark id -> region it scores
BENCHMARK_REGIONS: dict[str, str] = {
    "FreemanZiemba2013public.V1-pls": "V1",
    "FreemanZiemba2013public.V2-pls": "V2",
    "MajajHong2015public.V4-pls": "V4",
    "MajajHong2015public.IT-pls": "IT",
    "Rajalingham2018public-i2n": BEHAVIOR,
}


def import_brainscore_vision():
    """Import ``brainscore_vision`` with plugin dependency installation disabled (``BS_INSTALL_DEPENDENCIES=no``).

    Also points brainscore-core's BrainIO cache at the current ``$BRAINIO_HOME`` (brainscore-core reads
    the variable once per process and would otherwise ignore a later change).
    """
    os.environ["BS_INSTALL_DEPENDENCIES"] = "no"
    import brainscore_vision
    from brainscore_core.supported_data_standards.brainio import fetch

    fetch._local_data_path = str(brainio_home())
    return brainscore_vision


# ------------------------------------------------------------------------------------ model side
def preprocess_unit_range(paths: Sequence[str], size: tuple[int, int]) -> np.ndarray:
    """Load images as RGB, resize to ``size`` (H, W) and return a float32 ``(N, 3, H, W)`` array in [0, 1].

    This is the ``preprocessing`` of the ``PytorchWrapper``: no ImageNet normalisation (neuroalign
    models normalise inside).
    """
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor, resize

    batch = []
    for path in paths:
        with Image.open(path) as image:
            tensor = pil_to_tensor(image.convert("RGB"))
        tensor = resize(tensor, list(size), antialias=True)
        batch.append(tensor.float().div_(255.0))
    return torch.stack(batch).numpy()


def make_activations_model(
    model: nn.Module,
    identifier: str,
    image_size: int | None = None,
    batch_size: int = 64,
    cache_activations: bool = False,
):
    """brainscore-vision's ``PytorchWrapper`` around a [0,1]-input model.

    Layer names are resolved as everywhere in neuroalign (relative to ``ZooModel.net``; unknown names
    list the nearest ones), tuple outputs keep their first tensor, and the model stays on its device.

    Args:
        model: any ``nn.Module`` taking [0,1] RGB images.
        identifier: activations identifier (change it whenever the weights change).
        image_size: side of the images fed to the model (default: ``model.input_size`` or 224).
        batch_size: images per forward pass.
        cache_activations: let brainscore-vision store activations on disk under ``identifier``
            (``~/.result_caching``); off by default so per-epoch scoring writes nothing.
    """
    import_brainscore_vision()
    from brainscore_vision.model_helpers.activations.pytorch import PytorchWrapper

    class _Wrapper(PytorchWrapper):
        def get_layer(self, layer_name: str) -> nn.Module:
            return self._model if layer_name == "logits" else get_layer(self._model, layer_name)

        def register_hook(self, layer, layer_name, target_dict):
            def hook(_layer, _inputs, output, name=layer_name):
                output = output[0] if isinstance(output, (tuple, list)) else output
                target_dict[name] = output.detach().float().cpu().numpy()

            return layer.register_forward_hook(hook)

    device = _device_of(model)
    size = (int(image_size), int(image_size)) if image_size else model_input_hw(model)
    preprocessing = functools.partial(preprocess_unit_range, size=size)
    wrapper = _Wrapper(model=model, preprocessing=preprocessing, identifier=identifier, batch_size=batch_size)
    wrapper._device = device  # PytorchWrapper moves the model to CUDA when available; keep the caller's device
    model.to(device)
    if not cache_activations:
        wrapper._extractor.identifier = False  # brainscore-vision stores nothing without an identifier
    return wrapper


def make_model_commitment(
    model: nn.Module,
    identifier: str,
    region_layer_map: Mapping[str, str],
    behavioral_readout_layer: str | None = None,
    visual_degrees: float = 8,
    image_size: int | None = None,
    batch_size: int = 64,
    cache_activations: bool = False,
):
    """brainscore-vision's ``ModelCommitment`` for ``model`` with an explicit region -> layer map.

    Args:
        model: any ``nn.Module`` taking [0,1] RGB images.
        identifier: the model identifier (must change with the weights).
        region_layer_map: region (``V1``/``V2``/``V4``/``IT``) -> layer name.
        behavioral_readout_layer: layer the behavioural readout is fitted on (default: the last mapped layer).
        visual_degrees: field of view of the model's input.
        image_size: input side (default ``model.input_size`` or 224).
        batch_size: images per forward pass.
        cache_activations: see :func:`make_activations_model`.
    """
    from brainscore_vision.model_helpers.brain_transformation import ModelCommitment

    layers = list(dict.fromkeys([*region_layer_map.values(), *([behavioral_readout_layer] if behavioral_readout_layer else [])]))
    for layer in layers:
        get_layer(model, layer)  # unknown names: ConfigError listing the nearest names
    wrapper = make_activations_model(model, identifier, image_size, batch_size, cache_activations)
    return ModelCommitment(
        identifier=identifier,
        activations_model=wrapper,
        layers=layers,
        region_layer_map=dict(region_layer_map),
        behavioral_readout_layer=behavioral_readout_layer,
        visual_degrees=visual_degrees,
    )


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
            from callbacks.brainscore.metrics.ceiling import ceil_score

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


# --------------------------------------------------------------------- in-memory reference data
def neural_assemblies(
    responses: np.ndarray,
    stimulus_ids: Sequence[str],
    paths: Sequence[str | Path],
    region: str,
    stratify: Sequence[Any] | None = None,
    identifier: str = "neuroalign-local",
):
    """brainscore-vision ``NeuroidAssembly`` objects (per repetition, and repetition-averaged) from arrays.

    Args:
        responses: ``(repetitions, stimuli, neuroids)`` responses (NaN: missing trial).
        stimulus_ids: one id per stimulus.
        paths: image file per stimulus.
        region: the region coordinate of every neuroid.
        stratify: optional per-stimulus labels (coordinate ``stratum``) for stratified splits.
        identifier: stimulus set identifier.

    Returns:
        ``(assembly_repetitions, assembly_averaged)``, both with the stimulus set attached.
    """
    brainscore_vision = import_brainscore_vision()  # noqa: F841 - registries and env first
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet
    from brainscore_vision.benchmark_helpers.neural_common import average_repetition

    reps, n_stimuli, n_neuroids = responses.shape
    stimulus_ids = [str(s) for s in stimulus_ids]
    meta = {"stimulus_id": stimulus_ids, "filename": [Path(p).name for p in paths]}
    if stratify is not None:
        meta["stratum"] = [str(s) for s in stratify]
    stimulus_set = StimulusSet(meta)
    stimulus_set.stimulus_paths = {sid: Path(p) for sid, p in zip(stimulus_ids, paths)}
    stimulus_set.identifier = identifier
    coords = {
        "stimulus_id": ("presentation", np.tile(stimulus_ids, reps)),
        # a second presentation coordinate keeps brainscore-vision's multi-coordinate groupby on `presentation`
        "stimulus_index": ("presentation", np.tile(np.arange(n_stimuli), reps)),
        "repetition": ("presentation", np.repeat(np.arange(reps), n_stimuli)),
        "neuroid_id": ("neuroid", [f"n{i}" for i in range(n_neuroids)]),
        "region": ("neuroid", [region] * n_neuroids),
        "time_bin_start": ("time_bin", [70]),
        "time_bin_end": ("time_bin", [170]),
    }
    if stratify is not None:
        coords["stratum"] = ("presentation", np.tile(meta["stratum"], reps))
    data = np.asarray(responses, dtype=float).reshape(reps * n_stimuli, n_neuroids, 1)
    # one 70-170 ms time bin, squeezed as brainscore-vision's own static benchmarks do
    repetitions = NeuroidAssembly(data, coords=coords, dims=["presentation", "neuroid", "time_bin"]).squeeze("time_bin")
    averaged = average_repetition(repetitions)
    # restore stimulus order (groupby sorts) so rows match `stimulus_ids`
    averaged = averaged.isel(presentation=np.argsort(averaged["stimulus_index"].values))
    for assembly in (repetitions, averaged):
        assembly.attrs["stimulus_set"] = stimulus_set
        assembly.attrs["stimulus_set_identifier"] = identifier
    return repetitions, averaged


def reference_neural_benchmark(
    responses: np.ndarray,
    stimulus_ids: Sequence[str],
    paths: Sequence[str | Path],
    region: str,
    stratify: Sequence[Any] | None = None,
    visual_degrees: float = 8.0,
    identifier: str = "neuroalign-local",
):
    """brainscore-vision's own ``NeuralBenchmark`` (``pls`` metric, ``internal_consistency`` ceiling) on arrays.

    Arguments as in :func:`neural_assemblies`; ``stratify`` becomes the ``pls`` metric's
    stratification coordinate. The benchmark's ceiled score is brainscore-vision 2.4.2's
    ``r^2 / ceiling``; ``score.attrs["raw"]`` and ``score.attrs["ceiling"]`` hold the parts.
    """
    brainscore_vision = import_brainscore_vision()
    from brainscore_vision.benchmark_helpers.neural_common import NeuralBenchmark

    repetitions, averaged = neural_assemblies(responses, stimulus_ids, paths, region, stratify, identifier)
    cv = dict(stratification_coord="stratum" if stratify is not None else None)
    metric = brainscore_vision.load_metric("pls", crossvalidation_kwargs=cv)
    ceiler = brainscore_vision.load_ceiling("internal_consistency")
    return NeuralBenchmark(
        identifier=f"{identifier}.{region}-pls",
        version=1,
        assembly=averaged,
        similarity_metric=metric,
        visual_degrees=visual_degrees,
        number_of_trials=1,
        ceiling_func=lambda: ceiler(repetitions),
        parent=region,
    )

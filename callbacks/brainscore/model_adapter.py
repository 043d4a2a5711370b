"""The model side of brainscore-vision: any [0,1]-input model as a ``PytorchWrapper`` / ``ModelCommitment``.

Used by :class:`callbacks.brainscore.benchmarks.brainscore_vision.BrainScoreVisionBenchmark` and by the
model plugins ``neuroalign export-brainscore`` writes (:mod:`callbacks.brainscore.commands.export`).

* The wrapper's preprocessing (:func:`preprocess_unit_range`) feeds [0,1] RGB tensors at the model's
  input size: neuroalign models normalise inside, so brainscore-vision's ImageNet normalisation must
  not be applied twice.
* Layer names are resolved as everywhere in neuroalign (:func:`neuroalign.core.layers.get_layer`);
  the model stays on its device.
* brainscore-vision caches activations by identifier, not by weights: the on-disk activation cache
  is off unless ``cache_activations=True``.

brainscore-vision itself is imported on first use (:func:`callbacks.brainscore.brainio_data.import_brainscore_vision`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from neuroalign.core.images import read_rgb
from neuroalign.core.layers import get_layer
from neuroalign.core.modules import input_hw, module_device

from callbacks.brainscore.brainio_data import import_brainscore_vision
from callbacks.brainscore.features import DEFAULT_INPUT_SIDE
from callbacks.brainscore.screen import to_model_input

__all__ = ["preprocess_unit_range", "model_input_hw", "make_activations_model", "make_model_commitment"]


def preprocess_unit_range(paths: Sequence[str], size: tuple[int, int]) -> np.ndarray:
    """Load images as RGB, resize to ``size`` (H, W) and return a float32 ``(N, 3, H, W)`` array in [0, 1].

    This is the ``preprocessing`` of the ``PytorchWrapper``: :func:`callbacks.brainscore.screen.to_model_input`
    for each image (8-bit antialiased resize, no ImageNet normalisation: neuroalign models normalise inside),
    the same function every other scoring path uses.
    """
    key = "stimulus images of the brainscore-vision benchmark"
    return torch.stack([to_model_input(read_rgb(path, key), size) for path in paths]).numpy()


def model_input_hw(model: nn.Module, image_size: int | None = None) -> tuple[int, int]:
    """The (H, W) the wrapper feeds ``model``: ``image_size`` squared, else ``model.input_size``, else 224."""
    if image_size:
        return (int(image_size), int(image_size))
    return input_hw(model) or (DEFAULT_INPUT_SIDE, DEFAULT_INPUT_SIDE)


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

    device = module_device(model)
    preprocessing = functools.partial(preprocess_unit_range, size=model_input_hw(model, image_size))
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
    import_brainscore_vision()
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

"""Export a model and its region -> layer map as a brainscore-vision model plugin folder.

``neuroalign export-brainscore --model resnet18 --checkpoint last.ckpt --region_layer_map map.yaml
--output_dir plugins/neuroalign_resnet18 --model_identifier neuroalign-resnet18`` writes::

    <output_dir>/__init__.py                       model_registry['<identifier>'] = lambda: ModelCommitment(...)
    <output_dir>/model.py                          get_model / get_layers / get_bibtex; builds the network
                                                   with neuroalign's zoo and loads weights.pth
    <output_dir>/region_layer_map/<identifier>.json   the layer map (brainscore-vision's own location)
    <output_dir>/weights.pth                       the network's state dict (omitted for published weights)
    <output_dir>/requirements.txt
    <output_dir>/test.py                           brainscore-vision's plugin test

Copy the folder into ``brainscore_vision/models/`` (or submit it to Brain-Score); brainscore-vision's
``load_model('<identifier>')`` then finds the registration and builds the ``ModelCommitment``.
The folder name must be a Python identifier (plugins are imported as ``brainscore_vision.models.<folder>``).
"""

from __future__ import annotations

import json
import pprint
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from lightning_modules.zoo import ZooModel
from lightning_modules.zoo.checkpoint import model_from_checkpoint
from neuroalign.core.errors import ConfigError, MissingFileError
from neuroalign.core.layers import get_layer

from callbacks.brainscore.types import check_region

__all__ = ["export_brainscore", "read_region_layer_map"]


_INIT_TEMPLATE = '''"""Brain-Score model plugin {identifier!r}, exported by neuroalign (``neuroalign export-brainscore``)."""

from brainscore_vision import model_registry
from brainscore_vision.model_helpers.brain_transformation import ModelCommitment

from .model import BEHAVIORAL_READOUT_LAYER, VISUAL_DEGREES, get_layers, get_model, get_region_layer_map

model_registry[{identifier!r}] = lambda: ModelCommitment(identifier={identifier!r}, activations_model=get_model({identifier!r}), layers=get_layers({identifier!r}), region_layer_map=get_region_layer_map({identifier!r}), behavioral_readout_layer=BEHAVIORAL_READOUT_LAYER, visual_degrees=VISUAL_DEGREES)
'''

_MODEL_TEMPLATE = '''"""Builds {identifier!r}: a neuroalign zoo network taking [0,1] RGB images (it normalises inside)."""

import json
from pathlib import Path

import torch

from callbacks.brainscore.model_adapter import make_activations_model
from lightning_modules.zoo import ZooModel, load_weights

HERE = Path(__file__).resolve().parent
IDENTIFIER = {identifier!r}
#: lightning_modules.zoo.ZooModel arguments
ZOO_ARGS = {zoo_args}
#: weights.pth holds the network's state dict; without it the published weights are used
WEIGHTS = HERE / "weights.pth"
BEHAVIORAL_READOUT_LAYER = {readout!r}
VISUAL_DEGREES = {visual_degrees!r}


def build_network() -> torch.nn.Module:
    """The network in eval mode, with the exported weights."""
    model = ZooModel(**ZOO_ARGS, pretrained=not WEIGHTS.is_file())
    if WEIGHTS.is_file():
        load_weights(model.net, torch.load(WEIGHTS, map_location="cpu", weights_only=True), source=str(WEIGHTS))
    return model.eval()


def get_region_layer_map(name: str) -> dict:
    """Region (V1, V2, V4, IT) -> layer name."""
    assert name == IDENTIFIER
    return json.loads((HERE / "region_layer_map" / f"{{name}}.json").read_text())


def get_model(name: str):
    """brainscore-vision's PytorchWrapper around the network ([0,1] inputs at the network's input size)."""
    assert name == IDENTIFIER
    return make_activations_model(build_network(), identifier=name, cache_activations=True)


def get_layers(name: str) -> list:
    """The layers the commitment may read: the mapped ones and the behavioural readout."""
    layers = list(get_region_layer_map(name).values())
    if BEHAVIORAL_READOUT_LAYER:
        layers.append(BEHAVIORAL_READOUT_LAYER)
    return list(dict.fromkeys(layers))


def get_bibtex(name: str) -> str:
    """No publication yet."""
    return ""
'''

_TEST_TEMPLATE = '''import brainscore_vision


def test_has_identifier():
    model = brainscore_vision.load_model({identifier!r})
    assert model.identifier == {identifier!r}
'''


def read_region_layer_map(region_layer_map: str | Path | Mapping[str, str]) -> dict[str, str]:
    """A region -> layer map from a dict or a YAML/JSON file (a top-level ``region_layer_map`` key is unwrapped).

    Regions must be V1, V2, V4 or IT (``ConfigError`` otherwise).
    """
    if isinstance(region_layer_map, (str, Path)):
        path = Path(region_layer_map)
        if not path.is_file():
            raise MissingFileError("region_layer_map file", path, "region_layer_map")
        data = yaml.safe_load(path.read_text())
        if isinstance(data, Mapping) and isinstance(data.get("region_layer_map"), Mapping):
            data = data["region_layer_map"]
    else:
        data = region_layer_map
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f"`region_layer_map` must map regions to layer names, got {data!r}")
    for region in data:
        check_region(str(region), "region_layer_map", allow_behavior=False)
    return {str(region): str(layer) for region, layer in data.items()}


def export_brainscore(
    output_dir: str,
    model_identifier: str,
    region_layer_map: str | dict[str, str],
    model: str | None = None,
    checkpoint: str | None = None,
    behavioral_readout_layer: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    visual_degrees: float = 8.0,
    requirements: list[str] | None = None,
    overwrite: bool = False,
) -> str:
    """Write a brainscore-vision model plugin folder for a neuroalign model.

    Args:
        output_dir: the plugin folder to create; its name must be a Python identifier
            (e.g. ``plugins/neuroalign_resnet18``).
        model_identifier: the Brain-Score model identifier (``model_registry`` key).
        region_layer_map: ``{"V1": layer, "V2": ..., "V4": ..., "IT": ...}`` or a YAML/JSON file with it
            (e.g. the output of ``neuroalign layer-sweep``).
        model: zoo model name (default: the one recorded in ``checkpoint``).
        checkpoint: a neuroalign Lightning checkpoint (``.ckpt``) or a state dict file; without it the
            published weights of ``model`` are used.
        behavioral_readout_layer: layer of the behavioural readout (default: brainscore-vision's, the last layer).
        model_kwargs: extra ``ZooModel`` arguments (``num_classes``, ``input_size``, ``model_kwargs``, ...)
            overriding those found in the checkpoint.
        visual_degrees: the model's field of view.
        requirements: lines of requirements.txt (default: ``neuroalign`` and its torch/timm pins).
        overwrite: replace an existing folder.

    Returns:
        The plugin folder.
    """
    out = Path(output_dir)
    if not out.name.isidentifier():
        suggestion = "".join(c if c.isalnum() else "_" for c in out.name).lstrip("0123456789") or "neuroalign_model"
        raise ConfigError(f"plugin folder name {out.name!r} (`output_dir`) is not a Python identifier; use e.g. {suggestion!r}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"`output_dir` {out} exists and is not empty; pass --overwrite true to replace it")
    layer_map = read_region_layer_map(region_layer_map)

    if checkpoint:
        network = model_from_checkpoint(checkpoint, model, model_kwargs=model_kwargs)
    elif model:
        network = ZooModel(model, **(model_kwargs or {}))
    else:
        raise ConfigError("no model name: pass `model` (a zoo name) or a neuroalign checkpoint that records it")
    for region, layer in layer_map.items():
        try:
            get_layer(network, layer)
        except ConfigError as err:
            raise ConfigError(f"region_layer_map.{region}: {err}") from None
    if behavioral_readout_layer:
        get_layer(network, behavioral_readout_layer)

    if out.exists():
        shutil.rmtree(out)
    (out / "region_layer_map").mkdir(parents=True)
    if checkpoint:
        torch.save(network.net.state_dict(), out / "weights.pth")
    fields = dict(identifier=model_identifier)
    (out / "__init__.py").write_text(_INIT_TEMPLATE.format(**fields))
    (out / "model.py").write_text(
        _MODEL_TEMPLATE.format(
            **fields,
            zoo_args=pprint.pformat(network.architecture(), indent=4, sort_dicts=False),
            readout=behavioral_readout_layer,
            visual_degrees=visual_degrees,
        )
    )
    (out / "region_layer_map" / f"{model_identifier}.json").write_text(json.dumps(layer_map, indent=2) + "\n")
    (out / "requirements.txt").write_text("\n".join(requirements or _default_requirements()) + "\n")
    (out / "test.py").write_text(_TEST_TEMPLATE.format(**fields))
    return str(out)


def _default_requirements() -> list[str]:
    import timm
    import torchvision

    return [
        "# neuroalign is not on PyPI: install it from its repository (pip install <path-or-git-url>)",
        "neuroalign",
        f"torch=={torch.__version__.split('+')[0]}",
        f"torchvision=={torchvision.__version__.split('+')[0]}",
        f"timm=={timm.__version__}",
    ]

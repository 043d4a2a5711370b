"""neuroalign LightningModules and the plain components they use (model zoo, layers, attacks, ...)."""

from .errors import ConfigError, MissingFileError, NeuroAlignError
from .layers import LayerCapture, get_layer, list_layers, resolve_layers
from .zoo import ZooModel, available_models, build_model

__all__ = [
    "ConfigError",
    "MissingFileError",
    "NeuroAlignError",
    "LayerCapture",
    "get_layer",
    "list_layers",
    "resolve_layers",
    "ZooModel",
    "available_models",
    "build_model",
]

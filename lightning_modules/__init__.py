"""neuroalign LightningModules and the plain components they use (model zoo, layers, attacks, ...)."""

from .errors import ConfigError, MissingFileError, NeuroAlignError
from .layers import LayerCapture, get_layer, list_layers, resolve_layers
from .robust_finetune import RobustFinetuneModule
from .zoo import ZooModel, available_models, build_model


def __getattr__(name: str):
    # EvolutionModule lives in a sub-package; import it on first use to keep `import lightning_modules` light
    if name == "EvolutionModule":
        from .evolution import EvolutionModule

        return EvolutionModule
    raise AttributeError(f"module 'lightning_modules' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "MissingFileError",
    "NeuroAlignError",
    "LayerCapture",
    "get_layer",
    "list_layers",
    "resolve_layers",
    "RobustFinetuneModule",
    "EvolutionModule",
    "ZooModel",
    "available_models",
    "build_model",
]

"""Model zoo: build any timm / torchvision / registered model by name, taking [0,1] RGB images.

A registry in the spirit of timm's ``register_model`` / ``create_model``: families of named
architectures (:mod:`~lightning_modules.zoo.timm_models`, :mod:`~lightning_modules.zoo.torchvision_models`,
and :mod:`~lightning_modules.zoo.custom` for networks registered with :func:`register_model`, such as
seed 002's ``cifar_vit``) are looked up by :mod:`~lightning_modules.zoo.registry`;
:class:`ZooModel` (:mod:`~lightning_modules.zoo.wrapper`) builds one and applies its normalisation
inside ``forward``, so attacks, evolution and Brain-Score extraction all work on [0,1] pixels. Mean,
std and input size come from the weights' config (timm ``pretrained_cfg``, torchvision
``Weights.transforms()``, the registration), never hard-coded per caller. Weight files are read and
loaded strictly by :mod:`~lightning_modules.zoo.weights`; checkpoints become networks through
:mod:`~lightning_modules.zoo.checkpoint`.

A network of your own: decorate its builder with :func:`register_model` in an importable module and
name it ``"<package.module>:<name>"`` in a config (see :mod:`lightning_modules.zoo.custom`).

Members are imported on first use, so ``from lightning_modules.zoo import COMMANDS`` stays cheap; the
``list-layers`` command itself lives in :mod:`lightning_modules.zoo.commands` (the commands layer).
"""

from neuroalign.core.lazy import lazy_exports

_EXPORTS = {
    "ZooModel": "lightning_modules.zoo.wrapper",
    "build_model": "lightning_modules.zoo.wrapper",
    "available_models": "lightning_modules.zoo.registry",
    "resolve_model": "lightning_modules.zoo.registry",
    "register_family": "lightning_modules.zoo.registry",
    "register_model": "lightning_modules.zoo.custom",
    "ModelFamily": "lightning_modules.zoo.family",
    "ModelDefaults": "lightning_modules.zoo.family",
    "IMAGENET_MEAN": "lightning_modules.zoo.family",
    "IMAGENET_STD": "lightning_modules.zoo.family",
    "CifarViT": "lightning_modules.zoo.cifar_vit",
    "WEIGHTS_KEY": "lightning_modules.zoo.weights",
    "load_weights": "lightning_modules.zoo.weights",
    "read_state_dict": "lightning_modules.zoo.weights",
    "read_weights_file": "lightning_modules.zoo.weights",
    "state_dict_of": "lightning_modules.zoo.weights",
    "zoo_args_from_checkpoint": "lightning_modules.zoo.checkpoint",
    "load_checkpoint_into": "lightning_modules.zoo.checkpoint",
    "model_from_checkpoint": "lightning_modules.zoo.checkpoint",
}
__all__ = [*_EXPORTS, "COMMANDS"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

#: this room's ``neuroalign`` commands, "name": "module:function" (read by :mod:`neuroalign.cli`)
COMMANDS: dict[str, str] = {"list-layers": "lightning_modules.zoo.commands:list_layers_command"}

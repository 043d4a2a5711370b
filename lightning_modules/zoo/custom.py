"""The ``custom`` family: networks registered by name with :func:`register_model` (seed 002's and a user's own).

In the spirit of timm's ``@register_model``: decorate a function or class that returns an
``nn.Module`` and it can be built by name, wrapped in a :class:`~lightning_modules.zoo.ZooModel`
([0,1] input, normalised inside with the registered ``mean``/``std``)::

    # my_project/nets.py
    from torch import nn
    from lightning_modules.zoo import register_model

    @register_model("tiny_cnn", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=32, num_classes=10)
    def tiny_cnn(num_classes: int = 10, width: int = 8) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(width, num_classes))

A config names it ``my_project.nets:tiny_cnn`` (``"<module>:<registered name>"``): the zoo imports the
module, which runs the registration, and builds the network, so the YAML needs nothing else::

    model:
      class_path: lightning_modules.zoo.ZooModel
      init_args: {name: "my_project.nets:tiny_cnn", model_kwargs: {width: 16}}

Checkpoints record that name, so ``neuroalign score --checkpoint`` and the other commands rebuild the
network the same way. Once the module is imported, the bare name (``tiny_cnn``) works too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from lightning_modules.zoo.family import IMAGENET_MEAN, IMAGENET_STD, ModelDefaults, ModelFamily
from lightning_modules.zoo.weights import WEIGHTS_KEY
from neuroalign.core.errors import ConfigError

__all__ = ["RegisteredModel", "CustomFamily", "CUSTOM", "register_model"]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class RegisteredModel:
    """A network registered with :func:`register_model`.

    Attributes:
        builder: function or class returning the ``nn.Module``; called with the model's
            ``model_kwargs`` (and ``num_classes`` when one is asked for).
        defaults: its normalisation, input size (the ``img_size`` keyword overrides it) and class count.
        hint: how to obtain its weights, shown when ``pretrained=True`` is asked for (it has none to download).
    """

    builder: Callable[..., nn.Module]
    defaults: ModelDefaults
    hint: str = ""


class CustomFamily(ModelFamily):
    """The family of networks registered with :func:`register_model`; they have no downloadable weights."""

    name = "custom"

    def __init__(self) -> None:
        self._models: dict[str, RegisteredModel] = {}

    def names(self) -> list[str]:
        return sorted(self._models)

    def has(self, name: str) -> bool:
        return name in self._models

    def add(self, name: str, model: RegisteredModel) -> None:
        """Register ``model`` under ``name``; registering the same builder again (a re-imported module) is allowed."""
        old = self._models.get(name)
        if old is not None and _qualified(old.builder) != _qualified(model.builder):
            raise ConfigError(f"model name {name!r} is already registered by {_qualified(old.builder)}")
        self._models[name] = model

    def build(self, name: str, pretrained: bool, num_classes: int | None, kwargs: dict[str, Any]) -> tuple[nn.Module, ModelDefaults]:
        model = self._models[name]
        if pretrained:
            hint = f"; {model.hint}" if model.hint else ""
            raise ConfigError(f"{name} has no downloadable weights{hint}; set {WEIGHTS_KEY}")
        kwargs = dict(kwargs)
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        net = model.builder(**kwargs)
        if not isinstance(net, nn.Module):
            raise ConfigError(f"the builder of {name!r} ({_qualified(model.builder)}) returned a {type(net).__name__}, not an nn.Module")
        d = model.defaults
        classes = int(getattr(net, "num_classes", num_classes or d.num_classes))
        return net, ModelDefaults(d.mean, d.std, int(kwargs.get("img_size", d.input_size)), classes)


#: the one registry of :func:`register_model`
CUSTOM = CustomFamily()


def _qualified(obj: Callable[..., Any]) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def register_model(
    name: str | None = None,
    *,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    input_size: int = 224,
    num_classes: int = 1000,
    hint: str = "",
) -> Callable[[Builder], Builder]:
    """Decorator registering a function or class that returns an ``nn.Module`` as zoo model ``name``.

    Args:
        name: the zoo name (default: the decorated object's ``__name__``).
        mean: per-channel mean the network's [0,1] input is normalised with.
        std: per-channel std.
        input_size: side in pixels of the images it expects (the ``img_size`` keyword, when given, wins).
        num_classes: its class count when none is asked for (a ``num_classes`` attribute of the built
            network wins).
        hint: how to obtain its weights (it has none to download), shown when ``pretrained=True``.

    Returns:
        The decorator; it returns the decorated object unchanged.
    """

    def decorate(builder: Builder) -> Builder:
        defaults = ModelDefaults(tuple(mean), tuple(std), int(input_size), int(num_classes))
        CUSTOM.add(name or builder.__name__, RegisteredModel(builder, defaults, hint))
        return builder

    return decorate

"""The model registry: families in resolution order, name lookup, and errors that list the nearest names.

A name is resolved (:func:`resolve_model`) as

* ``<family>:<name>`` -- that family's architecture (``timm:vit_tiny_patch16_224``,
  ``torchvision:alexnet``, ``custom:cifar_vit``);
* ``<package.module>:<name>`` -- a network the module registers with
  :func:`~lightning_modules.zoo.custom.register_model` (the module is imported first), so that a
  YAML config can name a user's own network;
* ``<name>`` -- the first family that has it: ``custom`` (registered networks such as
  ``cifar_vit``), then ``torchvision``, then ``timm``, then families added with :func:`register_family`.
"""

from __future__ import annotations

import fnmatch
import importlib

import lightning_modules.zoo.cifar_vit  # noqa: F401 - its @register_model adds cifar_vit to the custom family
import lightning_modules.zoo.mlp  # noqa: F401 - adds mlp to the custom family
from lightning_modules.zoo.custom import CUSTOM
from lightning_modules.zoo.family import ModelFamily
from lightning_modules.zoo.timm_models import TimmFamily
from lightning_modules.zoo.torchvision_models import TorchvisionFamily
from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import nearest_names

__all__ = ["register_family", "families", "resolve_model", "available_models"]

_FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Add a model family; its names resolve after those of the families registered before it.

    Raises:
        ConfigError: another family already has ``family.name``.
    """
    old = _FAMILIES.get(family.name)
    if old is not None and type(old) is not type(family):
        raise ConfigError(f"model family {family.name!r} is already registered ({type(old).__name__})")
    _FAMILIES[family.name] = family
    return family


register_family(CUSTOM)
register_family(TorchvisionFamily())
register_family(TimmFamily())


def families() -> dict[str, ModelFamily]:
    """The registered families by name, in resolution order."""
    return dict(_FAMILIES)


def available_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Every bare name a model can be built by (all families, or only ``family``) matching a glob ``pattern``.

    A name two families share is listed once, for the family it resolves to.
    """
    pool = [_family_named(family, family)] if family is not None else list(_FAMILIES.values())
    names = list(dict.fromkeys(n for f in pool for n in f.names()))
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def _family_named(prefix: str, name: str) -> ModelFamily:
    if prefix not in _FAMILIES:
        raise _unknown_family(prefix, name)
    return _FAMILIES[prefix]


def _unknown_family(prefix: str, name: str) -> ConfigError:
    return ConfigError(
        f"unknown model family {prefix!r} in {name!r} (nor an importable module); nearest valid families: {', '.join(nearest_names(prefix, _FAMILIES))}"
        " (a network of your own is named '<package.module>:<name>', the module registering it with @register_model)"
    )


def _import_registering_module(module: str, name: str) -> None:
    """Import ``module`` so that its ``@register_model`` decorators run; not importable -> unknown family error."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        parts = module.split(".")
        if err.name not in {".".join(parts[: i + 1]) for i in range(len(parts))}:
            raise  # the module exists but one of its own imports is missing: the user's error to see
        raise _unknown_family(module, name) from None


def resolve_model(name: str) -> tuple[ModelFamily, str]:
    """``(family, bare name)`` of a model name (see the module docstring for the forms).

    Raises:
        ConfigError: unknown family, module or name; the message lists the nearest valid names.
    """
    if ":" in name:
        prefix, _, bare = name.partition(":")
        if prefix not in _FAMILIES:
            _import_registering_module(prefix, name)
            family = CUSTOM
            if not family.has(bare):
                near = ", ".join(nearest_names(bare, family.names()))
                raise ConfigError(f"module {prefix!r} registers no model {bare!r} (decorate its builder with @register_model); nearest registered names: {near}")
            return family, bare
        family = _FAMILIES[prefix]
        if not family.has(bare):
            raise ConfigError(f"unknown {prefix} model {bare!r}; nearest valid names: {', '.join(nearest_names(bare, family.names()))}")
        return family, bare
    for family in _FAMILIES.values():
        if family.has(name):
            return family, name
    raise ConfigError(f"unknown model {name!r}; nearest valid names: {', '.join(nearest_names(name, available_models()))}")

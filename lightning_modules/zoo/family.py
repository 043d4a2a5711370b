"""What a model family is: a source of named architectures (timm, torchvision, registered networks).

A :class:`ModelFamily` knows its names and builds a raw network by name, with its library's
published weights when asked (``pretrained=True``). It does not read weight files: the zoo loads a
``weights_path`` in one place after building (:mod:`lightning_modules.zoo.wrapper`), strictly, for
every family. A family describes what it built with :class:`ModelDefaults` (normalisation, input
size, class count), so no caller hard-codes them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_modules.zoo.heads import last_linear_name

__all__ = ["ModelDefaults", "ModelFamily", "IMAGENET_MEAN", "IMAGENET_STD", "hub_cache_file"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelDefaults:
    """The input a built network expects and what it outputs.

    Attributes:
        mean: per-channel normalisation mean of its [0,1] RGB input.
        std: per-channel normalisation std.
        input_size: side in pixels of the (square) images it is fed.
        num_classes: classifier outputs of the network as built.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    num_classes: int


class ModelFamily:
    """Base class of a model family; subclasses set :attr:`name` and implement :meth:`names` and :meth:`build`.

    Register an instance with :func:`lightning_modules.zoo.registry.register_family`; its names then
    work in ``ZooModel(name=...)``, and ``<family>:<name>`` picks it when two families share a name.
    """

    #: the family's prefix in model names (``timm`` in ``timm:vit_tiny_patch16_224``)
    name: str = ""

    def names(self) -> list[str]:
        """Every architecture name this family builds, sorted."""
        raise NotImplementedError

    def has(self, name: str) -> bool:
        """Whether this family builds ``name``."""
        return name in self.names()

    def build(self, name: str, pretrained: bool, num_classes: int | None, kwargs: dict[str, Any]) -> tuple[nn.Module, ModelDefaults]:
        """Build the raw network ``name`` and describe it.

        Args:
            name: one of :meth:`names`.
            pretrained: load the family's published weights (its library's download or cache); an
                offline machine without a cached copy fails within seconds naming the file.
            num_classes: classifier outputs (``None``: the published weights' count).
            kwargs: extra keyword arguments of the network constructor.
        """
        raise NotImplementedError

    def classifier_keys(self, net: nn.Module) -> list[str]:
        """The state-dict keys of ``net``'s classification head (default: those of its last ``nn.Linear``).

        When a model is built with another ``num_classes`` than a weights file's, these keys keep
        their fresh values instead of the file's (see :func:`~lightning_modules.zoo.weights.load_weights`).
        """
        name = last_linear_name(net)
        return [] if name is None else [k for k in net.state_dict() if k.startswith(name + ".")]

    def convert_state_dict(self, name: str, state_dict: Mapping[str, torch.Tensor], num_classes: int | None, kwargs: dict[str, Any]) -> Mapping[str, torch.Tensor] | None:
        """``state_dict`` rewritten into the keys and shapes of the network ``name``, or ``None`` if the family cannot.

        Called only when a weights file does not fit the built network as it is (e.g. a checkpoint in
        an architecture's original format); the result is then loaded as strictly as the file.
        """
        return None


def hub_cache_file(url: str) -> Path:
    """Where ``torch.hub`` keeps the download of ``url`` (timm's URL weights, torchvision's weights)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)

"""The zoo's model: :class:`ZooModel` builds a registered network by name and feeds it [0,1] RGB images.

One path for every family: resolve the name (:func:`~lightning_modules.zoo.registry.resolve_model`),
let the family build the architecture (with its library's published weights for ``pretrained=True``),
then load a ``weights_path`` strictly with :func:`~lightning_modules.zoo.weights.load_weights`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_modules.zoo.family import ModelFamily
from lightning_modules.zoo.heads import replace_last_linear
from lightning_modules.zoo.registry import resolve_model
from lightning_modules.zoo.weights import WEIGHTS_KEY, load_weights, read_state_dict
from neuroalign.core.errors import ConfigError

__all__ = ["ZooModel", "build_model"]


def _load_state(net: nn.Module, family: ModelFamily, name: str, state: Mapping[str, torch.Tensor], source: str, num_classes: int | None, kwargs: dict[str, Any]) -> None:
    """Load the tensors of a weights file into the freshly built ``net``, strictly (the one weights-file path).

    With an explicit ``num_classes`` the family's classifier keys may keep their fresh values (a file of
    another class count); a file that does not fit as it is gets one chance through the family's own
    converter (:meth:`~lightning_modules.zoo.family.ModelFamily.convert_state_dict`), loaded as strictly.
    """
    head = family.classifier_keys(net) if num_classes is not None else ()
    try:
        load_weights(net, state, source=source, new_head=head)
    except ConfigError:
        converted = family.convert_state_dict(name, state, num_classes, kwargs)
        if converted is None:
            raise
        load_weights(net, converted, source=source, new_head=head)


class ZooModel(nn.Module):
    """A named network from the zoo that takes [0,1] RGB images and normalises them itself.

    Layer names (for Brain-Score maps, evolution units, :func:`~neuroalign.core.layers.list_layers`)
    are the raw network's ``named_modules()`` paths, e.g. ``blocks.1.blocks.1.0.norm1`` for CrossViT.

    Weights, in order of precedence:

    * ``weights_path``: a local file -- a plain state dict (``.pth``/``.pt``/``.bin``/``.safetensors``),
      a timm checkpoint, or a neuroalign Lightning checkpoint (``.ckpt``; the network's weights are
      found by key prefix). Loaded strictly after building, for every family. Works offline.
    * ``pretrained=True``: the real timm (Hugging Face hub) / torchvision download, or the copy already
      in their caches. Offline without a cached copy it fails within seconds naming the file and the
      config key to set (never minutes of hub retries).

    Args:
        name: a timm name (``crossvit_18_dagger_408``, ``vit_tiny_patch16_224``, ...), a torchvision name
            (``alexnet``, ``vit_b_16``, ``resnet101``, ...), a registered name (``cifar_vit``, seed 002),
            or ``<package.module>:<name>`` for a network that module registers with ``@register_model``.
            Prefix ``timm:``, ``torchvision:`` or ``custom:`` to pick a family when several have the name.
        pretrained: load the published ImageNet weights (download, or the hub cache offline).
        weights_path: a local weights file (state dict, timm checkpoint or neuroalign ``.ckpt``);
            takes precedence over ``pretrained``.
        num_classes: classifier outputs; a different value than the weights' replaces the head.
        input_size: side of the images the model is fed (default: the weights' config). CrossViT-18
            dagger 408 was fine-tuned on 224 crops (it rescales internally).
        mean: per-channel normalisation mean (default: the weights' config).
        std: per-channel normalisation std (default: the weights' config).
        resize_input: resize inputs of another size to ``input_size`` (bilinear, antialiased) before
            normalising.
        model_kwargs: extra keyword arguments for the network constructor (e.g. ``depth`` for
            ``cifar_vit``, ``drop_path_rate`` for timm).
    """

    _names_relative_to_net = True

    def __init__(
        self,
        name: str,
        pretrained: bool = False,
        weights_path: str | None = None,
        num_classes: int | None = None,
        input_size: int | None = None,
        mean: tuple[float, float, float] | None = None,
        std: tuple[float, float, float] | None = None,
        resize_input: bool = False,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        family, bare = resolve_model(name)
        if num_classes is not None and num_classes < 1:
            raise ConfigError(f"num_classes must be positive, got {num_classes}")
        kwargs = dict(model_kwargs or {})
        # a missing or corrupt file fails before a large network is built
        state = read_state_dict(Path(weights_path).expanduser(), WEIGHTS_KEY) if weights_path else None
        self.net, cfg = family.build(bare, pretrained and state is None, num_classes, kwargs)
        if state is not None:
            _load_state(self.net, family, bare, state, f"weights file {Path(weights_path).expanduser()}", num_classes, kwargs)
        self.name, self.source = name, family.name
        given = dict(name=name, num_classes=num_classes, input_size=input_size, mean=mean, std=std, resize_input=resize_input, model_kwargs=model_kwargs)
        self._architecture = {k: v for k, v in given.items() if v not in (None, False, {})}
        self.num_classes = cfg.num_classes
        side = int(input_size or cfg.input_size)
        self.input_size: tuple[int, int, int] = (3, side, side)
        self.resize_input = resize_input
        self.register_buffer("mean", torch.tensor(mean or cfg.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std or cfg.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def architecture(self) -> dict[str, Any]:
        """The arguments given for this network's architecture and input wrapper, without its weights:
        ``ZooModel(**model.architecture())`` rebuilds it with random weights."""
        return dict(self._architecture)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map [0,1] RGB images to the network's input space (resize if configured, then normalise)."""
        if self.resize_input and tuple(x.shape[-2:]) != self.input_size[1:]:
            x = nn.functional.interpolate(x, size=self.input_size[1:], mode="bilinear", antialias=True, align_corners=False)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of [0,1] RGB images of shape (B, 3, H, W)."""
        return self.net(self.normalize(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classification head with a fresh ``num_classes``-way layer."""
        if hasattr(self.net, "reset_classifier"):
            self.net.reset_classifier(num_classes)
        else:
            replace_last_linear(self.net, num_classes)
        self.num_classes = num_classes

    def extra_repr(self) -> str:
        return f"name={self.name!r}, source={self.source}, input_size={self.input_size}"


def build_model(
    name: str,
    pretrained: bool = False,
    weights_path: str | None = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> ZooModel:
    """Build a [0,1]-input model by name; see :class:`ZooModel` for the arguments.

    Keyword arguments that are :class:`ZooModel` parameters (``input_size``, ``mean``, ``std``,
    ``resize_input``) go to the wrapper; all others to the network constructor.
    """
    own = {k: kwargs.pop(k) for k in ("input_size", "mean", "std", "resize_input") if k in kwargs}
    return ZooModel(name, pretrained=pretrained, weights_path=weights_path, num_classes=num_classes, model_kwargs=kwargs, **own)

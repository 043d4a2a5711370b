"""The ``torchvision`` family: every ``torchvision.models`` classifier, with its ``Weights`` transforms.

``pretrained=True`` loads the ``DEFAULT`` weights through torchvision (the torch hub cache, else a
download; offline without a copy it fails within seconds naming the file). Mean, std and crop size
come from ``Weights.transforms()``; another ``num_classes`` replaces the last linear layer.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from lightning_modules.zoo.family import ModelDefaults, ModelFamily, hub_cache_file
from lightning_modules.zoo.heads import replace_last_linear
from lightning_modules.zoo.weights import WEIGHTS_KEY
from neuroalign.core.offline import require_download

__all__ = ["TorchvisionFamily"]


class TorchvisionFamily(ModelFamily):
    """Classifiers of ``torchvision.models`` (``get_model``)."""

    name = "torchvision"

    def names(self) -> list[str]:
        import torchvision

        return sorted(torchvision.models.list_models(module=torchvision.models))

    def build(self, name: str, pretrained: bool, num_classes: int | None, kwargs: dict[str, Any]) -> tuple[nn.Module, ModelDefaults]:
        import torchvision

        weights = torchvision.models.get_model_weights(name).DEFAULT
        transform = weights.transforms()
        default_classes = len(weights.meta.get("categories", [])) or 1000
        if pretrained:
            cached = hub_cache_file(weights.url)
            if not cached.is_file():
                require_download(f"ImageNet weights of {name}", cached, WEIGHTS_KEY, weights.url)
            net = torchvision.models.get_model(name, weights=weights, **kwargs)
        else:
            net = torchvision.models.get_model(name, weights=None, num_classes=default_classes, **kwargs)
        if num_classes is not None and num_classes != default_classes:
            replace_last_linear(net, num_classes)
        size = transform.crop_size[0] if hasattr(transform, "crop_size") else 224
        return net, ModelDefaults(tuple(transform.mean), tuple(transform.std), size, num_classes or default_classes)

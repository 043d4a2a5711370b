"""The ``timm`` family: every ``timm.list_models()`` architecture, with its ``pretrained_cfg``.

``pretrained=True`` loads the published weights through timm itself: from the Hugging Face cache
(or torch hub cache) when a copy is there, else by download; offline without a copy it fails within
seconds naming the file and the config key (never minutes of hub retries). Mean, std and input size
come from the model's ``pretrained_cfg``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lightning_modules.zoo.family import IMAGENET_MEAN, IMAGENET_STD, ModelDefaults, ModelFamily, hub_cache_file
from lightning_modules.zoo.weights import WEIGHTS_KEY
from neuroalign.core.errors import ConfigError
from neuroalign.core.offline import require_download

__all__ = ["TimmFamily"]


class TimmFamily(ModelFamily):
    """Architectures of timm (``timm.create_model``); ``num_classes`` other than 1000 gets timm's fresh head."""

    name = "timm"

    def names(self) -> list[str]:
        import timm

        return list(timm.list_models())

    def has(self, name: str) -> bool:
        import timm

        return bool(timm.is_model(name))

    def build(self, name: str, pretrained: bool, num_classes: int | None, kwargs: dict[str, Any]) -> tuple[nn.Module, ModelDefaults]:
        import timm

        extra = _create_args(num_classes, kwargs)
        net = _pretrained(name, extra) if pretrained else timm.create_model(name, pretrained=False, **extra)
        cfg = getattr(net, "pretrained_cfg", None) or _cfg(name)
        side = cfg.get("input_size", (3, 224, 224))[-1]
        return net, ModelDefaults(tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD)), side, net.num_classes)

    def classifier_keys(self, net: nn.Module) -> list[str]:
        """The keys under the ``pretrained_cfg`` classifier names (``head``, or CrossViT's ``head.0``/``head.1``)."""
        heads = (getattr(net, "pretrained_cfg", None) or {}).get("classifier")
        if not heads:
            return super().classifier_keys(net)
        heads = (heads,) if isinstance(heads, str) else tuple(heads)
        return [k for k in net.state_dict() if any(k.startswith(h + ".") for h in heads)]

    def convert_state_dict(self, name: str, state_dict: Mapping[str, torch.Tensor], num_classes: int | None, kwargs: dict[str, Any]) -> Mapping[str, torch.Tensor] | None:
        """timm's own loader applied to a checkpoint that does not fit as it is.

        Runs the architecture's checkpoint filter (original-format keys such as CrossViT's
        ``pos_embed.0``, position embeddings resampled to another ``img_size``) by loading the tensors
        with ``timm.create_model(pretrained=True)`` into a second network, whose state dict is
        returned; ``None`` when timm cannot load them either. That network keeps the weights' own class
        count whatever ``num_classes`` is asked for, so timm loads strictly (it relaxes strictness when
        it drops a classifier); a fresh head of another size is kept by the caller's strict load.
        """
        import timm

        overlay = {"state_dict": dict(state_dict)}
        extra = {k: v for k, v in kwargs.items() if k != "num_classes"}
        try:
            net = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **extra)
        except (RuntimeError, KeyError, ValueError):
            return None
        return net.state_dict()


def _create_args(num_classes: int | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    extra = dict(kwargs)
    if num_classes is not None:
        extra["num_classes"] = num_classes
    return extra


def _cfg(name: str) -> dict[str, Any]:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}


def _pretrained(name: str, extra: dict[str, Any]) -> nn.Module:
    """The network with its published weights: from the Hugging Face / torch hub cache, else downloaded."""
    import timm

    cfg = _cfg(name)
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
            cached = try_to_load_from_cache(hub_id, filename)
            if isinstance(cached, str):
                return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=cached), **extra)
        url = f"https://huggingface.co/{hub_id}"
        target = f"the Hugging Face cache (repo {hub_id}, file model.safetensors) or a local file"
    else:
        url = cfg.get("url") or ""
        if url and hub_cache_file(url).is_file():
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(hub_cache_file(url))), **extra)
        target = str(hub_cache_file(url)) if url else None
    if not url:
        raise ConfigError(f"timm model {name!r} has no pretrained weights to download; set {WEIGHTS_KEY}")
    require_download(f"ImageNet weights of {name}", target, WEIGHTS_KEY, url)
    return timm.create_model(name, pretrained=True, **extra)

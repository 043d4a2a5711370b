"""Address layers by name and capture their outputs with forward hooks.

Layer names are ``named_modules()`` paths of the raw network -- the strings timm and Brain-Score use
(``blocks.1.blocks.1.0.norm1``). On a :class:`~lightning_modules.zoo.ZooModel` they are resolved
relative to its ``net``; on any other module relative to the module itself. Hooks work for every
architecture (unlike FX tracing, which fails on CrossViT).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from torch import nn

from neuroalign.core.errors import ConfigError

__all__ = [
    "list_layers",
    "get_layer",
    "resolve_layers",
    "nearest_names",
    "LayerCapture",
    "reduce_tokens",
    "TokenReduction",
]

TokenReduction = Literal["none", "flatten", "cls", "mean_patch", "mean"]


def _root(model: nn.Module) -> nn.Module:
    """The module whose ``named_modules()`` define the layer names (``ZooModel.net`` or the model)."""
    net = getattr(model, "net", None)
    return net if isinstance(net, nn.Module) and getattr(model, "_names_relative_to_net", False) else model


def list_layers(model: nn.Module, leaves_only: bool = False) -> list[str]:
    """Names of every addressable layer of ``model`` in forward-definition order.

    Args:
        model: a ``ZooModel`` (names are relative to its raw ``net``) or any ``nn.Module``.
        leaves_only: only modules without children.
    """
    names = []
    for name, module in _root(model).named_modules():
        if not name:
            continue
        if leaves_only and next(module.children(), None) is not None:
            continue
        names.append(name)
    return names


def nearest_names(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """The ``n`` candidates closest to ``name`` (difflib ratio, then shared prefix)."""
    candidates = list(candidates)
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.0)
    return close[:n]


def _unknown(name: str, model: nn.Module, what: str = "layer") -> ConfigError:
    near = nearest_names(name, list_layers(model))
    return ConfigError(f"unknown {what} {name!r}; nearest valid names: {', '.join(near) or '(model has no layers)'}")


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule called ``name``; an unknown name raises ``ConfigError`` listing the nearest names."""
    modules = dict(_root(model).named_modules())
    if name not in modules or not name:
        raise _unknown(name, model)
    return modules[name]


def resolve_layers(model: nn.Module, patterns: str | Sequence[str]) -> list[str]:
    """Expand layer names and glob patterns (``blocks.*.norm1``) into existing layer names, in model order.

    Raises ``ConfigError`` for a name or pattern that matches nothing.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    names = list_layers(model)
    chosen: set[str] = set()
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            hits = fnmatch.filter(names, pattern)
            if not hits:
                raise _unknown(pattern, model, "layer pattern")
            chosen.update(hits)
        else:
            get_layer(model, pattern)
            chosen.add(pattern)
    return [n for n in names if n in chosen]


def reduce_tokens(x: torch.Tensor, mode: TokenReduction = "flatten") -> torch.Tensor:
    """Turn a layer output into a (B, features) matrix, handling transformer token outputs explicitly.

    ``(B, tokens, C)`` outputs: ``cls`` keeps token 0, ``mean_patch`` averages tokens 1..T-1,
    ``mean`` averages all tokens, ``flatten`` keeps everything. ``none`` returns ``x`` unchanged.
    Conv maps ``(B, C, H, W)`` and vectors are flattened for every mode but ``none``.
    """
    if mode == "none":
        return x
    if x.dim() == 3 and mode != "flatten":
        if mode == "cls":
            return x[:, 0]
        if mode == "mean_patch":
            if x.shape[1] < 2:
                raise ConfigError(f"mean over patch tokens needs at least 2 tokens, got output shape {tuple(x.shape)}")
            return x[:, 1:].mean(1)
        if mode == "mean":
            return x.mean(1)
        raise ConfigError(f"unknown token reduction {mode!r}; valid: none, flatten, cls, mean_patch, mean")
    return x.flatten(1)


class LayerCapture:
    """Context manager recording the outputs of named layers during forward passes.

    Outputs are cloned (in-place ops such as ``ReLU(inplace=True)`` would overwrite them) and, by
    default, detached. Tuple outputs keep their first tensor. Each forward overwrites the previous
    outputs; use ``outputs`` after the forward pass::

        with LayerCapture(model, ["features.3", "classifier.6"]) as cap:
            logits = model(x)
        feats = cap.outputs["features.3"]

    Args:
        model: the model whose layers are captured (a ``ZooModel`` or any module).
        layers: layer names (see :func:`get_layer`).
        detach: detach the captured tensors from the graph.
        clone: clone the captured tensors.
        stop_early: raise internally after the last requested layer ran, skipping the rest of the
            forward pass (only valid when the model's output is not needed).
    """

    class _Stop(Exception):
        pass

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str],
        detach: bool = True,
        clone: bool = True,
        stop_early: bool = False,
    ) -> None:
        self.model = model
        self.layers = list(dict.fromkeys(layers))
        self.modules = {name: get_layer(model, name) for name in self.layers}
        self.detach, self.clone, self.stop_early = detach, clone, stop_early
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def _hook(self, name: str):
        def hook(_module, _inputs, output):
            if isinstance(output, (tuple, list)):
                output = output[0]
            if self.detach:
                output = output.detach()
            if self.clone:
                output = output.clone()
            self.outputs[name] = output
            if self.stop_early and len(self.outputs) == len(self.layers):
                raise LayerCapture._Stop

        return hook

    def __enter__(self) -> "LayerCapture":
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules.items()]
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return exc_type is LayerCapture._Stop

    def run(self, *args, **kwargs) -> dict[str, torch.Tensor]:
        """Run the model once on ``args`` and return the captured outputs (hooks must be active)."""
        self.outputs = {}
        try:
            self.model(*args, **kwargs)
        except LayerCapture._Stop:
            pass
        missing = [n for n in self.layers if n not in self.outputs]
        if missing:
            raise ConfigError(f"layers {missing} did not run during the forward pass")
        return dict(self.outputs)

"""Model zoo: build any timm / torchvision / seed-002 model by name, taking [0,1] RGB images.

:class:`ZooModel` wraps the raw network (``.net``) and applies the network's own normalisation inside
``forward``, so attacks, evolution and Brain-Score extraction all work on [0,1] pixels. Mean, std and
input size come from the weights' config (timm ``pretrained_cfg``, torchvision ``Weights.transforms()``),
never hard-coded per caller.

Weights, in order of precedence:

* ``weights_path``: a local file -- a plain state dict (``.pth``/``.pt``/``.bin``/``.safetensors``),
  a timm checkpoint, or a neuroalign Lightning checkpoint (``.ckpt``; the network's weights are found by
  key prefix). Works offline.
* ``pretrained=True``: the real timm (Hugging Face hub) / torchvision download, or the copy already in
  their caches. Offline without a cached copy it fails within seconds naming the file and the
  config key to set (never minutes of hub retries).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neuroalign.core.checkpoints import read_checkpoint, resolve_checkpoint
from lightning_modules.zoo.cifar_vit import CifarViT
from neuroalign.core.errors import ConfigError, MissingFileError
from neuroalign.core.layers import get_layer, list_layers, nearest_names
from neuroalign.core.offline import require_download

__all__ = [
    "ZooModel",
    "build_model",
    "available_models",
    "load_weights",
    "read_state_dict",
    "state_dict_of",
    "zoo_args_from_checkpoint",
    "model_from_checkpoint",
    "list_layers_command",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

#: config key shown in errors (the usual nesting: RobustFinetuneModule -> ZooModel)
WEIGHTS_KEY = "weights_path (config: model.init_args.model.init_args.weights_path)"


@dataclass(frozen=True)
class _Config:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    num_classes: int


# ----------------------------------------------------------------------------------------- names
def _torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


_CUSTOM = {"cifar_vit": _Config(CIFAR10_MEAN, CIFAR10_STD, 32, 10)}


def available_models(pattern: str = "*") -> list[str]:
    """Every name :func:`build_model` accepts (custom, torchvision, timm) matching a glob ``pattern``."""
    import fnmatch

    import timm

    names = list(_CUSTOM) + _torchvision_names() + [n for n in timm.list_models() if n not in _torchvision_names()]
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def _resolve_source(name: str) -> tuple[str, str]:
    """``(source, name)`` with source in custom / torchvision / timm; ``timm:``/``torchvision:`` prefixes force one."""
    import timm

    if ":" in name:
        source, _, bare = name.partition(":")
        if source not in ("timm", "torchvision"):
            raise ConfigError(f"unknown model source {source!r} in {name!r}; use timm:<name> or torchvision:<name>")
        known = timm.is_model(bare) if source == "timm" else bare in _torchvision_names()
        if not known:
            pool = timm.list_models() if source == "timm" else _torchvision_names()
            raise ConfigError(f"unknown {source} model {bare!r}; nearest valid names: {', '.join(nearest_names(bare, pool))}")
        return source, bare
    if name in _CUSTOM:
        return "custom", name
    if name in _torchvision_names():
        return "torchvision", name
    if timm.is_model(name):
        return "timm", name
    raise ConfigError(f"unknown model {name!r}; nearest valid names: {', '.join(nearest_names(name, available_models()))}")


# --------------------------------------------------------------------------------------- weights
def _load_file(path: str | Path, config_key: str, what: str = "weights file") -> Any:
    """Load a weights file / checkpoint (``weights_only``); missing -> MissingFileError, corrupt -> ConfigError."""
    path = Path(path).expanduser()
    if path.suffix != ".safetensors":
        return read_checkpoint(path, config_key, what=what)
    if not path.is_file():
        raise MissingFileError(what, path, config_key)
    try:
        from safetensors.torch import load_file

        return load_file(str(path))
    except Exception as err:  # noqa: BLE001 - any reader failure means the file is unusable
        raise ConfigError(f"cannot read {what} {path} (`{config_key}`): {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None


def state_dict_of(obj: Any, path: str | Path) -> Mapping[str, torch.Tensor]:
    """The flat state dict in a loaded file: itself, or under ``state_dict``/``model``/``model_state_dict``/``module``."""
    for key in ("state_dict", "model", "model_state_dict", "module"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"weights file {path} holds no state dict of tensors")
    return obj


#: the former private name, still used by callbacks/export.py
_state_dict_of = state_dict_of


def read_state_dict(path: str | Path, config_key: str = WEIGHTS_KEY) -> Mapping[str, torch.Tensor]:
    """Read a weights file or checkpoint into a flat state dict (``weights_only`` loading).

    Accepts plain state dicts, ``.safetensors``, and checkpoints holding one under ``state_dict`` /
    ``model`` / ``model_state_dict`` / ``module``. A missing file raises MissingFileError naming
    ``config_key``; a corrupt or foreign file a ConfigError naming the file.
    """
    return state_dict_of(_load_file(path, config_key), path)


def load_weights(net: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "weights", strict: bool = True) -> None:
    """Load ``state_dict`` into ``net``, finding the key prefix (``model.net.``, ``module.``, ...) that fits.

    Strict about the architecture: under that prefix every tensor must have the model's shape and no
    key may be left over (the tensors of a deeper network of the same family), and with ``strict``
    every key of the model must be present. Otherwise one ConfigError line names ``source`` and what
    differs (shape mismatches, missing and unexpected keys, each counted with a first example).
    """
    own = net.state_dict()
    prefixes = {""} | {k[: k.index(suffix)] for k in state_dict for suffix in own if k.endswith("." + suffix)}
    best = max(prefixes, key=lambda p: sum(1 for k in own if p + k in state_dict))
    under = {k[len(best):]: v for k, v in state_dict.items() if k.startswith(best)}
    mapped = {k: v for k, v in under.items() if k in own}
    if not mapped:
        raise ConfigError(f"{source} does not fit this model: none of its {len(state_dict)} keys match (first: {next(iter(state_dict), None)!r})")
    shapes = [k for k, v in mapped.items() if own[k].shape != v.shape]
    missing = [k for k in own if k not in mapped] if strict else []
    unexpected = [k for k in under if k not in own]
    if shapes or missing or unexpected:
        parts = []
        if shapes:
            first = shapes[0]
            more = f" (and {len(shapes) - 1} more shape mismatches)" if len(shapes) > 1 else ""
            parts.append(f"{first!r} has shape {tuple(mapped[first].shape)}, the model expects {tuple(own[first].shape)}{more}")
        if missing:
            parts.append(f"{len(missing)} missing keys (first {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first {best + unexpected[0]!r})")
        raise ConfigError(f"{source} does not fit this model: {'; '.join(parts)}")
    net.load_state_dict(mapped, strict=False)


def _hub_cache_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


# -------------------------------------------------------------------------------------- builders
def _build_timm(name: str, pretrained: bool, weights_path: Path | None, num_classes: int | None, kwargs: dict) -> tuple[nn.Module, _Config]:
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    cfg = cfg.to_dict() if cfg is not None else {}
    extra: dict[str, Any] = dict(kwargs)
    if num_classes is not None:
        extra["num_classes"] = num_classes
    lightning_ckpt = weights_path is not None and weights_path.suffix == ".ckpt"
    if weights_path is not None and not lightning_ckpt:
        if not weights_path.is_file():
            raise MissingFileError(f"weights file for {name}", weights_path, WEIGHTS_KEY)
        read_state_dict(weights_path)  # names a corrupt file before timm's own loader gets it
        net = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(weights_path)), **extra)
    elif pretrained and not lightning_ckpt:
        net = _timm_pretrained(name, cfg, extra)
    else:
        net = timm.create_model(name, pretrained=False, **extra)
        if lightning_ckpt:
            load_weights(net, read_state_dict(weights_path), source=f"checkpoint {weights_path}")
    pcfg = getattr(net, "pretrained_cfg", None) or cfg
    size = pcfg.get("input_size", (3, 224, 224))[-1]
    return net, _Config(tuple(pcfg.get("mean", IMAGENET_MEAN)), tuple(pcfg.get("std", IMAGENET_STD)), size, net.num_classes)


def _timm_pretrained(name: str, cfg: dict, extra: dict) -> nn.Module:
    import timm

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
        if url and _hub_cache_file(url).is_file():
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(_hub_cache_file(url))), **extra)
        target = str(_hub_cache_file(url)) if url else None
    if not url:
        raise ConfigError(f"timm model {name!r} has no pretrained weights to download; set {WEIGHTS_KEY}")
    require_download(f"ImageNet weights of {name}", target, WEIGHTS_KEY, url)
    return timm.create_model(name, pretrained=True, **extra)


def _replace_last_linear(net: nn.Module, num_classes: int) -> None:
    """Swap the last ``nn.Linear`` of a torchvision classifier for a fresh ``num_classes``-way one."""
    name = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    old = get_layer(net, name)
    parent_name, _, attr = name.rpartition(".")
    parent = get_layer(net, parent_name) if parent_name else net
    setattr(parent, attr, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))


def _build_torchvision(name: str, pretrained: bool, weights_path: Path | None, num_classes: int | None, kwargs: dict) -> tuple[nn.Module, _Config]:
    import torchvision

    weights_enum = torchvision.models.get_model_weights(name).DEFAULT
    transform = weights_enum.transforms()
    default_classes = len(weights_enum.meta.get("categories", [])) or 1000
    if pretrained and weights_path is None:
        cached = _hub_cache_file(weights_enum.url)
        if not cached.is_file():
            require_download(f"ImageNet weights of {name}", cached, WEIGHTS_KEY, weights_enum.url)
        net = torchvision.models.get_model(name, weights=weights_enum, **kwargs)
    else:
        net = torchvision.models.get_model(name, weights=None, num_classes=default_classes, **kwargs)
        if weights_path is not None:
            load_weights(net, read_state_dict(weights_path), source=f"weights file {weights_path}", strict=num_classes in (None, default_classes))
    if num_classes is not None and num_classes != default_classes:
        _replace_last_linear(net, num_classes)
    size = transform.crop_size[0] if hasattr(transform, "crop_size") else 224
    return net, _Config(tuple(transform.mean), tuple(transform.std), size, num_classes or default_classes)


def _build_custom(name: str, pretrained: bool, weights_path: Path | None, num_classes: int | None, kwargs: dict) -> tuple[nn.Module, _Config]:
    cfg = _CUSTOM[name]
    if pretrained and weights_path is None:
        raise ConfigError(f"{name} has no downloadable weights; train it (configs/seed002/cifar_vit.yaml) and set {WEIGHTS_KEY}")
    kwargs = dict(kwargs)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    net = CifarViT(**kwargs)
    if weights_path is not None:
        load_weights(net, read_state_dict(weights_path), source=f"weights file {weights_path}")
    size = kwargs.get("img_size", cfg.input_size)
    return net, _Config(cfg.mean, cfg.std, size, net.num_classes)


_BUILDERS = {"timm": _build_timm, "torchvision": _build_torchvision, "custom": _build_custom}


# ------------------------------------------------------------------------------------- the model
class ZooModel(nn.Module):
    """A named network from the zoo that takes [0,1] RGB images and normalises them itself.

    Layer names (for Brain-Score maps, evolution units, :func:`~neuroalign.core.layers.list_layers`)
    are the raw network's ``named_modules()`` paths, e.g. ``blocks.1.blocks.1.0.norm1`` for CrossViT.

    Args:
        name: a timm name (``crossvit_18_dagger_408``, ``vit_tiny_patch16_224``, ...), a torchvision name
            (``alexnet``, ``vit_b_16``, ``resnet101``, ...), or ``cifar_vit`` (seed 002). Prefix
            ``timm:`` or ``torchvision:`` to pick a source when both have the name.
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
        source, bare = _resolve_source(name)
        if num_classes is not None and num_classes < 1:
            raise ConfigError(f"num_classes must be positive, got {num_classes}")
        path = Path(weights_path).expanduser() if weights_path else None
        self.net, cfg = _BUILDERS[source](bare, pretrained, path, num_classes, dict(model_kwargs or {}))
        self.name, self.source = name, source
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
            _replace_last_linear(self.net, num_classes)
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


def list_layers_command(model: str, pattern: str = "*", shapes: bool = False, image_size: int | None = None, model_kwargs: dict[str, Any] | None = None) -> None:
    """Print the layer names of a zoo model (random weights), optionally with output shapes.

    Args:
        model: zoo model name.
        pattern: glob pattern the names must match.
        shapes: run one forward pass on a blank image and print each layer's output shape.
        image_size: side of that image (default: the model's input size).
        model_kwargs: extra network constructor arguments.
    """
    import fnmatch

    net = ZooModel(model, model_kwargs=model_kwargs).eval()
    names = [n for n in list_layers(net) if fnmatch.fnmatch(n, pattern)]
    if not shapes:
        print("\n".join(names))
        return
    from neuroalign.core.layers import LayerCapture

    side = image_size or net.input_size[-1]
    with torch.no_grad(), LayerCapture(net, names) as cap:
        outputs = cap.run(torch.zeros(1, 3, side, side))
    for n in names:
        print(f"{n:60s} {tuple(outputs[n].shape)}")


#: this room's ``neuroalign`` commands, "name": "module:function" (read by :mod:`neuroalign.cli`)
COMMANDS: dict[str, str] = {"list-layers": "lightning_modules.zoo:list_layers_command"}

"""Weight files to network: read a file into a flat state dict, and load one strictly.

Every zoo path goes through these functions: ``ZooModel(weights_path=...)`` after building,
:mod:`lightning_modules.zoo.checkpoint` for Lightning checkpoints, and exported Brain-Score plugins.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neuroalign.core.checkpoints import read_checkpoint
from neuroalign.core.errors import ConfigError, MissingFileError

__all__ = ["WEIGHTS_KEY", "read_weights_file", "state_dict_of", "read_state_dict", "load_weights"]

#: config key shown in errors (the usual nesting: RobustFinetuneModule -> ZooModel)
WEIGHTS_KEY = "weights_path (config: model.init_args.model.init_args.weights_path)"


def read_weights_file(path: str | Path, config_key: str, what: str = "weights file") -> Any:
    """The object stored in a weights file or checkpoint, loaded ``weights_only``.

    ``.safetensors`` files are read with safetensors, all others with
    :func:`~neuroalign.core.checkpoints.read_checkpoint`. A missing file raises
    :class:`~neuroalign.core.errors.MissingFileError` naming ``config_key``; a corrupt one a
    :class:`~neuroalign.core.errors.ConfigError` naming the file.
    """
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


def read_state_dict(path: str | Path, config_key: str = WEIGHTS_KEY) -> Mapping[str, torch.Tensor]:
    """Read a weights file or checkpoint into a flat state dict (``weights_only`` loading).

    Accepts plain state dicts, ``.safetensors``, and checkpoints holding one under ``state_dict`` /
    ``model`` / ``model_state_dict`` / ``module``. A missing file raises MissingFileError naming
    ``config_key``; a corrupt or foreign file a ConfigError naming the file.
    """
    return state_dict_of(read_weights_file(path, config_key), path)


def load_weights(
    net: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    source: str = "weights",
    strict: bool = True,
    new_head: Collection[str] = (),
) -> None:
    """Load ``state_dict`` into ``net``, finding the key prefix (``model.net.``, ``module.``, ...) that fits.

    Strict about the architecture: under that prefix every tensor must have the model's shape and no
    key may be left over (the tensors of a deeper network of the same family), and with ``strict``
    every key of the model must be present. Otherwise one ConfigError line names ``source`` and what
    differs (shape mismatches, missing and unexpected keys, each counted with a first example); nothing
    is loaded then.

    Args:
        net: the network to load into.
        state_dict: the tensors, keyed like ``net.state_dict()`` under some prefix.
        source: what the tensors are, for the error message (e.g. ``weights file run.pth``).
        strict: require every key of ``net``.
        new_head: keys of ``net`` (its classifier, built for another class count) that keep their
            fresh values where ``state_dict`` lacks them or has another shape; where they fit they load.
    """
    own = net.state_dict()
    prefixes = {""} | {k[: k.index(suffix)] for k in state_dict for suffix in own if k.endswith("." + suffix)}
    best = max(prefixes, key=lambda p: sum(1 for k in own if p + k in state_dict))
    under = {k[len(best):]: v for k, v in state_dict.items() if k.startswith(best)}
    mapped = {k: v for k, v in under.items() if k in own and not (k in new_head and own[k].shape != v.shape)}
    if not mapped:
        raise ConfigError(f"{source} does not fit this model: none of its {len(state_dict)} keys match (first: {next(iter(state_dict), None)!r})")
    shapes = [k for k, v in mapped.items() if own[k].shape != v.shape]
    missing = [k for k in own if k not in mapped and k not in new_head] if strict else []
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

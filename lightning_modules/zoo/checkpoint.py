"""The one path from a checkpoint to a network: every command and the evolution target use it.

:func:`load_checkpoint_into` loads a checkpoint's network weights into a network that exists (strict,
weights-only, ``latest:<run>`` resolved); :func:`model_from_checkpoint` first rebuilds the zoo model
the checkpoint records (or the one the caller names) and then loads it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from lightning_modules.zoo.weights import load_weights, read_weights_file, state_dict_of
from lightning_modules.zoo.wrapper import ZooModel
from neuroalign.core.checkpoints import describe_checkpoint, resolve_checkpoint
from neuroalign.core.errors import ConfigError

__all__ = ["zoo_args_from_checkpoint", "load_checkpoint_into", "model_from_checkpoint"]


#: ZooModel arguments recorded in a checkpoint's hyper-parameters
_ZOO_KEYS = ("name", "num_classes", "input_size", "mean", "std", "resize_input", "model_kwargs")


def zoo_args_from_checkpoint(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ZooModel`` arguments a neuroalign Lightning checkpoint was trained with (``{}`` if absent).

    Reads ``hyper_parameters.model`` as LightningCLI stores it (``class_path`` / ``init_args``) or as a
    plain dict of ``ZooModel`` arguments.
    """
    hparams = checkpoint.get("hyper_parameters") or {}
    model = hparams.get("model") if isinstance(hparams, Mapping) else None
    if isinstance(model, Mapping):
        args = model.get("init_args", model)
        if isinstance(args, Mapping) and "name" in args:
            return {k: args[k] for k in _ZOO_KEYS if args.get(k) is not None}
    return {}


def model_from_checkpoint(
    checkpoint: str | Path,
    model: str | None = None,
    num_classes: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    config_key: str = "checkpoint",
) -> ZooModel:
    """Rebuild the [0,1]-input network of a neuroalign checkpoint (e.g. a RobustFinetuneModule ``.ckpt``).

    The architecture comes from the checkpoint's LightningCLI hyper-parameters, or from ``model``
    (a zoo name, with ``num_classes`` / ``model_kwargs``) when given or when the checkpoint records
    none; ``num_classes`` defaults to the checkpoint's. The weights are loaded strictly with
    :func:`load_weights`: another architecture is a one-line error that names both. ``checkpoint`` may
    be ``latest:<save_dir>/<name>`` (:func:`~neuroalign.core.checkpoints.resolve_checkpoint`).
    The network is returned in eval mode. Used by every command that takes a ``checkpoint``.
    """
    path = resolve_checkpoint(checkpoint, config_key)
    raw = read_weights_file(path, config_key, what="checkpoint")
    kwargs = dict(model_kwargs or {})
    num_classes = kwargs.pop("num_classes", num_classes)
    recorded = zoo_args_from_checkpoint(raw) if isinstance(raw, Mapping) else {}
    args = dict(recorded)
    if model is not None:
        args = {"name": model, "num_classes": num_classes or recorded.get("num_classes"), "model_kwargs": kwargs or None}
    if "name" not in args:
        raise ConfigError(f"checkpoint {path} records no zoo model; name its architecture with `model`")
    net = ZooModel(**args, pretrained=False)
    try:
        _load_into(net.net, raw, path)
    except ConfigError as err:
        trained = recorded.get("name")
        if model is None or not trained or trained == model:
            raise
        raise ConfigError(f"{err}; the checkpoint holds a {trained}, not a {model}: leave `model` out to rebuild the checkpoint's own network") from None
    return net.eval()


def _load_into(net: nn.Module, raw: Any, path: Path) -> dict[str, Any]:
    load_weights(net, state_dict_of(raw, path), source=f"checkpoint {path}")
    info = raw if isinstance(raw, Mapping) else {}
    fingerprint = float(sum(v.double().sum() for v in net.state_dict().values() if v.is_floating_point()))
    return {"path": str(path.resolve()), "global_step": info.get("global_step"), "epoch": info.get("epoch"), "fingerprint": fingerprint}


def load_checkpoint_into(net: nn.Module, checkpoint: str | Path, config_key: str = "checkpoint") -> dict[str, Any]:
    """Load the network weights of ``checkpoint`` into ``net`` (strictly, weights-only).

    ``checkpoint`` is a neuroalign Lightning checkpoint (a ``RobustFinetuneModule`` ``.ckpt``, whose
    ``model.*`` keys hold the network; the key prefix is found automatically), a plain state dict or a
    ``.safetensors`` file, or ``latest:<save_dir>/<name>`` (the newest complete checkpoint of a run,
    :func:`~neuroalign.core.checkpoints.resolve_checkpoint`). Another architecture is a one-line
    :class:`~neuroalign.core.errors.ConfigError` naming what differs.

    Returns:
        ``path``, ``global_step``, ``epoch``, a ``fingerprint`` of the loaded weights (their sum), by
        which a resumed run checks that it has the same network, and a ``description`` for the console
        (file, global step, epoch and time).
    """
    path = resolve_checkpoint(checkpoint, config_key)
    raw = read_weights_file(path, config_key, what="checkpoint")
    return {**_load_into(net, raw, path), "description": describe_checkpoint(path, raw)}

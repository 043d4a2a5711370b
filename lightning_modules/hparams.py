"""Hyper-parameters that are plain config data, shared by the LightningModules.

Under LightningCLI a module's hyper-parameters are its config (networks, generators and optimisers as
``class_path`` / ``init_args`` dicts), so a checkpoint records what built the run and
``NeuroAlignCLI`` can refuse a resume that changes it (:mod:`neuroalign.resume`). A module built
in Python receives objects instead; those are dropped, so checkpoints stay readable weights-only.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch import LightningModule

__all__ = ["is_plain_config", "save_plain_hyperparameters"]


def is_plain_config(value: Any) -> bool:
    """Whether a hyper-parameter value is plain config data (not a module / callable object)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, Mapping):
        return all(is_plain_config(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(is_plain_config(v) for v in value)
    return False


def save_plain_hyperparameters(module: LightningModule, objects: Sequence[str], logger: bool = True) -> None:
    """``module.save_hyperparameters()`` from the caller's ``__init__``, then drop those of ``objects``
    that are not plain config data (objects passed from Python)."""
    with warnings.catch_warnings():  # the objects are dropped just below
        warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
        module.save_hyperparameters(logger=logger, frame=_caller_frame())
    module.remove_ignored_hparams([k for k in objects if not is_plain_config(module.hparams.get(k))])


def _caller_frame():
    frame = inspect.currentframe()
    return frame.f_back.f_back if frame is not None and frame.f_back is not None else None

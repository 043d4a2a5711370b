"""Resuming a run with ``--ckpt_path``: what may change, where the run's checkpoints are, how to resume.

Semantics (``neuroalign fit|validate|test|predict -c CONFIG --ckpt_path CKPT``):

* The config is what runs. A model init argument that differs from the checkpoint's recorded
  hyper-parameters is refused, in one line naming every differing key, unless the module class lists
  it in its ``resumable_hparams`` (evaluation settings of ``RobustFinetuneModule``; ``n_generations``
  and a few others of ``EvolutionModule``, where more generations continue the run). Lightning's own
  behaviour -- silently replacing the configured model with the checkpoint's -- is not used.
* ``--ckpt_path last`` is the most recently written complete checkpoint of the config's run, in any of
  its version folders (:func:`run_folders`): it works after a kill that left no ``last.ckpt``.
* A resumed run logs to a new version folder (``version_N+1``); its checkpoints go there too.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["resume_differences", "checkpoint_model_config", "run_folders", "resume_command"]


def checkpoint_model_config(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``hyper_parameters`` in config form: ``{class_path, init_args}``.

    LightningCLI stores the model's config flattened, with the class under ``_class_path``.
    """
    args = {k: v for k, v in hparams.items() if k not in ("_instantiator", "_class_path")}
    config: dict[str, Any] = {"init_args": args}
    if hparams.get("_class_path"):
        config["class_path"] = hparams["_class_path"]
    return config


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(_plain(value), default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _differences(configured: Any, recorded: Any, key: str) -> list[tuple[str, Any, Any]]:
    if isinstance(configured, Mapping) and isinstance(recorded, Mapping):
        if "class_path" in configured and "class_path" in recorded and configured["class_path"] != recorded["class_path"]:
            return [(f"{key}.class_path", configured["class_path"], recorded["class_path"])]  # other classes: nothing else compares
        found = []
        for name, value in recorded.items():  # what the checkpoint recorded (a newer release may add arguments)
            if name in configured:
                found += _differences(configured[name], value, f"{key}.{name}")
        return found
    return [] if _plain(configured) == _plain(recorded) else [(key, configured, recorded)]


def resume_differences(configured: Mapping[str, Any], hparams: Mapping[str, Any], resumable: Sequence[str] = ()) -> list[str]:
    """``model.init_args.<key>: config X, checkpoint Y`` for every setting a resume would silently change.

    Args:
        configured: the model's config (``{class_path, init_args}``, as ``parser.dump`` writes it).
        hparams: the checkpoint's ``hyper_parameters`` (LightningCLI's flattened form or plain).
        resumable: top-level init arguments that may change (the module's ``resumable_hparams``).
    """
    found = _differences(configured, checkpoint_model_config(hparams), "model")
    lines = []
    for key, mine, theirs in found:
        parts = key.split(".")
        if len(parts) > 2 and parts[1] == "init_args" and parts[2] in resumable:
            continue
        lines.append(f"{key}: config {_show(mine)}, checkpoint {_show(theirs)}")
    return lines


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if hasattr(obj, "get") else None


def run_folders(trainer_config: Mapping[str, Any]) -> list[Path]:
    """Folders that hold the checkpoints of a config's runs, read from its ``trainer`` section.

    A ``ModelCheckpoint`` ``dirpath``; else the first logger's ``<save_dir>/<name>`` (W&B: ``project``),
    whose ``version_N/checkpoints/`` Lightning fills; else ``<default_root_dir>/checkpoints``.
    """
    root = Path(_get(trainer_config, "default_root_dir") or ".")
    folders: list[Path] = []
    for callback in _items(_get(trainer_config, "callbacks")):
        if str(_get(callback, "class_path") or "").endswith("ModelCheckpoint"):
            dirpath = _get(_get(callback, "init_args") or {}, "dirpath")
            if dirpath:
                folders.append(Path(dirpath))
    loggers = _get(trainer_config, "logger")
    first = _items(loggers)[0] if _items(loggers) else loggers
    if first is True or first is None:
        folders.append(root / "lightning_logs")
    elif first is False:
        folders.append(root / "checkpoints")
    else:
        args = _get(first, "init_args") or {}
        wandb = str(_get(first, "class_path") or "").endswith("WandbLogger")  # its folder is named by the project
        name = _get(args, "project" if wandb else "name") or "lightning_logs"
        folders.append(Path(_get(args, "save_dir") or root) / str(name))
    return folders


def resume_command(argv: Sequence[str], checkpoint: str | Path) -> str:
    """``neuroalign <argv without --ckpt_path> --ckpt_path <checkpoint>``, quoted for a shell."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--ckpt_path":
            skip = True
            continue
        if arg.startswith("--ckpt_path="):
            continue
        args.append(arg)
    return shlex.join(["neuroalign", *args, "--ckpt_path", str(checkpoint)])

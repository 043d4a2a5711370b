"""Checkpoint files of runs: read one safely, name "the latest run of config X", describe what was loaded.

A run of ``neuroalign fit`` keeps its checkpoints in its own version folder,
``<save_dir>/<name>/version_N/checkpoints/`` (Lightning's default when ``ModelCheckpoint`` has no
``dirpath``), so a re-train never mixes its files with an older run's. Wherever a checkpoint path is
configured it may be written as ``latest:<save_dir>/<name>`` -- e.g. ``latest:runs/quickstart`` -- for
the newest version folder there that holds a complete checkpoint (its ``last.ckpt``, else its newest
complete ``.ckpt``). A checkpoint is *complete* when its zip directory (the last record ``torch.save``
writes) is present, so a file cut short by a kill is never chosen.

Checkpoints are read weights-only (tensors and plain data, no pickled code); a missing, truncated or
foreign file is a one-line :class:`~neuroalign.core.errors.MissingFileError` / ``ConfigError``.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from neuroalign.core.errors import ConfigError, MissingFileError

__all__ = ["LATEST", "read_checkpoint", "is_complete", "latest_checkpoint", "newest_checkpoint", "resolve_checkpoint", "describe_checkpoint"]

#: prefix of a checkpoint spec that names the latest run under a folder (``latest:runs/quickstart``)
LATEST = "latest:"

_VERSION = re.compile(r"version_(\d+)$")


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (its zip directory, written last, is present)."""
    path = Path(path)
    return path.is_file() and zipfile.is_zipfile(path)


def _why_unreadable(path: Path, err: Exception) -> str:
    """Why torch could not read ``path``, in words a user can act on (never torch's ``weights_only`` advice)."""
    if path.stat().st_size == 0:
        return "the file is empty"
    with open(path, "rb") as handle:
        head = handle.read(2)
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":  # neither a zip checkpoint nor a legacy pickle
        return "it is truncated or not a file written by torch.save"
    text = str(err)
    if "Weights only load failed" in text or "weights_only" in text:
        return "it holds Python objects other than tensors and plain data, which are not loaded (untrusted code could run)"
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return f"it is corrupted ({type(err).__name__}: {first[:200]})"


def read_checkpoint(path: str | Path, config_key: str, what: str = "checkpoint") -> Any:
    """Load a ``torch.save`` file weights-only onto the CPU.

    A missing file raises :class:`MissingFileError` naming ``config_key``; an empty, truncated,
    corrupted or pickled-code file a one-line :class:`ConfigError` naming the file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(what, path, config_key)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure means the file is unusable
        raise ConfigError(f"cannot read {what} {path} (`{config_key}`): {_why_unreadable(path, err)}") from None


def _version_folders(run_dir: Path) -> list[Path]:
    """``run_dir/version_N`` folders, highest N first."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("version_*") if p.is_dir() and (m := _VERSION.search(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def _newest_complete(paths: Iterable[Path]) -> Path | None:
    """The most recently written complete file of ``paths`` (``last.ckpt`` first among equal times)."""
    complete = [p for p in paths if is_complete(p)]
    if not complete:
        return None
    return max(complete, key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt"))


def latest_checkpoint(run_dir: str | Path, config_key: str) -> Path:
    """The checkpoint of the newest run under ``run_dir`` (``<save_dir>/<name>``).

    That is the highest ``version_N`` holding a complete checkpoint: its ``checkpoints/last.ckpt``
    when complete, else its most recently written complete ``checkpoints/*.ckpt``.
    """
    run_dir = Path(run_dir).expanduser()
    for version in _version_folders(run_dir):
        folder = version / "checkpoints"
        if is_complete(folder / "last.ckpt"):
            return folder / "last.ckpt"
        newest = _newest_complete(folder.glob("*.ckpt"))
        if newest is not None:
            return newest
    raise MissingFileError(
        f"complete checkpoint of a run under {run_dir}",
        run_dir / "version_N" / "checkpoints" / "last.ckpt",
        config_key,
        hint="Train that config first (`neuroalign fit -c <its config>`), or give a checkpoint file",
    )


def newest_checkpoint(folders: Iterable[str | Path]) -> Path | None:
    """The most recently written complete ``.ckpt`` in ``folders`` or their ``*/checkpoints/`` subfolders."""
    paths: list[Path] = []
    for folder in folders:
        folder = Path(folder).expanduser()
        paths += [*folder.glob("*.ckpt"), *folder.glob("*/checkpoints/*.ckpt")]
    return _newest_complete(paths)


def resolve_checkpoint(spec: str | Path, config_key: str) -> Path:
    """The file a checkpoint spec names: ``latest:<folder>`` (:func:`latest_checkpoint`) or a path.

    A plain path that does not exist raises :class:`MissingFileError` naming ``config_key``.
    """
    text = str(spec)
    if text.startswith(LATEST):
        return latest_checkpoint(text[len(LATEST):], config_key)
    path = Path(text).expanduser()
    if not path.is_file():
        raise MissingFileError("checkpoint", path, config_key)
    return path


def describe_checkpoint(path: str | Path, checkpoint: Mapping[str, Any] | None = None) -> str:
    """``<path> (global step S, epoch E, written YYYY-MM-DD HH:MM:SS)`` for a console line."""
    path = Path(path)
    facts = []
    if isinstance(checkpoint, Mapping):
        for key, label in (("global_step", "global step"), ("epoch", "epoch")):
            if checkpoint.get(key) is not None:
                facts.append(f"{label} {checkpoint[key]}")
    if path.is_file():
        facts.append(f"written {datetime.fromtimestamp(path.stat().st_mtime):%Y-%m-%d %H:%M:%S}")
    return f"{path} ({', '.join(facts)})" if facts else str(path)

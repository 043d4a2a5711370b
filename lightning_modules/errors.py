"""User-facing errors: one line that names the bad value and the config key that fixes it.

The ``neuroalign`` command prints any :class:`NeuroAlignError` as a single line and exits with
status 2 instead of showing a traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["NeuroAlignError", "ConfigError", "MissingFileError"]


class NeuroAlignError(Exception):
    """Base class of every error a user can fix by changing a config value or placing a file."""


class ConfigError(NeuroAlignError, ValueError):
    """A config value is invalid (unknown name, out of range, inconsistent with the data)."""


class MissingFileError(NeuroAlignError, FileNotFoundError):
    """A file or folder the run needs is absent and cannot be downloaded here.

    Args:
        what: what is missing, e.g. ``"ImageNet weights of crossvit_18_dagger_408"``.
        path: the file or folder to place.
        config_key: the config key that points at a local copy, e.g. ``model.init_args.weights_path``.
        hint: optional extra sentence (where to get the file).
    """

    def __init__(self, what: str, path: str | Path | None, config_key: str, hint: str = "") -> None:
        self.what, self.path, self.config_key, self.hint = what, path, config_key, hint
        where = f" at {path}" if path else ""
        msg = f"{what} not found{where} and cannot be downloaded (offline); place it there or set `{config_key}`"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)

    def __reduce__(self):  # keep picklable across DataLoader workers / DDP
        return (type(self), (self.what, self.path, self.config_key, self.hint))

"""User-facing errors: one line that names the bad value and the config key that fixes it.

The ``neuroalign`` command prints any :class:`NeuroAlignError` as a single line and exits with
status 2 instead of showing a traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["NeuroAlignError", "ConfigError", "MissingFileError", "find_user_error"]


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
        offline: the file would be downloaded if the network were reachable (adds "cannot be downloaded").
    """

    def __init__(self, what: str, path: str | Path | None, config_key: str, hint: str = "", offline: bool = False) -> None:
        self.what, self.path, self.config_key, self.hint, self.offline = what, path, config_key, hint, offline
        where = f" at {path}" if path else ""
        why = " and cannot be downloaded (offline)" if offline else ""
        msg = f"{what} not found{where}{why}; place it there or set `{config_key}`"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)

    def __reduce__(self):  # keep picklable across DataLoader workers / DDP
        return (type(self), (self.what, self.path, self.config_key, self.hint, self.offline))


def find_user_error(err: BaseException) -> NeuroAlignError | None:
    """The :class:`NeuroAlignError` behind ``err`` (itself or along its ``__cause__``/``__context__`` chain).

    jsonargparse and Lightning wrap exceptions raised while instantiating classes; the CLI uses this to
    print the user's error as one line instead of the wrapper's traceback.
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, NeuroAlignError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None

"""Output folders and files a command writes: an unwritable place is a one-line error naming it and its key.

``mkdir`` under a regular file, a read-only mount or a full disk raise ``OSError`` deep inside a
command (20-60 lines of traceback). :func:`output_dir` creates a folder and :func:`writing` wraps the
writes of a command, turning such an ``OSError`` into a :class:`~neuroalign.core.errors.ConfigError`
that names the path and the config key (or command-line option) that chooses it.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from neuroalign.core.errors import ConfigError, NeuroAlignError

__all__ = ["output_dir", "writing", "unwritable"]


def unwritable(path: str | Path, config_key: str, err: OSError) -> ConfigError:
    """The one-line error for ``err`` raised while writing ``path`` (chosen by ``config_key``)."""
    where = err.filename or path
    reason = err.strerror or type(err).__name__
    return ConfigError(f"cannot write {where} ({reason}); set `{config_key}` to a writable folder")


def output_dir(path: str | Path, config_key: str) -> Path:
    """Create the folder ``path`` (with its parents) and return it.

    Raises:
        ConfigError: the folder cannot be created or written to (the message names it and ``config_key``).
    """
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # a real write: permissions, read-only mounts, full disks
            pass
    except OSError as err:
        raise unwritable(folder, config_key, err) from None
    return folder


@contextlib.contextmanager
def writing(path: str | Path, config_key: str) -> Iterator[None]:
    """Context manager: an ``OSError`` raised inside becomes :func:`unwritable`'s one-line error.

    Wrap only the writes (a missing input is a :class:`~neuroalign.core.errors.MissingFileError`,
    itself an ``OSError``, and passes through unchanged).
    """
    try:
        yield
    except NeuroAlignError:
        raise
    except OSError as err:
        raise unwritable(path, config_key, err) from None

"""Local copy first, download second, fail fast offline: shared by the downloadable DataModules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from neuroalign.core.errors import MissingFileError
from neuroalign.core.offline import require_download

from datamodules.image_folder import DATA_DIR_KEY

__all__ = ["local_or_download"]


def local_or_download(
    local: Path | None, data_dir: Path | None, folder: str, what: str, url: str, download: bool, fetch: Callable[[], object]
) -> Path:
    """Return ``local`` if found, else download into ``data_dir / folder`` with ``fetch()``.

    Args:
        local: the already present dataset folder, or ``None``.
        data_dir: the configured ``data_dir``.
        folder: name of the folder the download creates under ``data_dir``.
        what: dataset name for messages.
        url: archive address (its host is probed before downloading).
        download: whether downloading is allowed (``data.init_args.download``).
        fetch: performs the download and extraction (e.g. a torchvision dataset with ``download=True``).

    Raises:
        MissingFileError: no local copy and downloading is off or impossible (offline, within seconds).
    """
    if local is not None:
        return local
    target = (data_dir or Path(".")) / folder
    if not download:
        raise MissingFileError(what, target, DATA_DIR_KEY, "or set `data.init_args.download: true`")
    require_download(f"{what} archive {url}", target, DATA_DIR_KEY, url)
    fetch()
    return target

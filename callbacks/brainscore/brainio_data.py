"""The nine BrainIO data files behind the five public brainscore-vision benchmarks, and brainscore-vision's import.

brainscore-vision 2.4.2 downloads every assembly and stimulus set from S3 and caches it as
``$BRAINIO_HOME/<sha1>/<filename>`` (default ``~/.brainio``); a file already there is used without any
network access (its sha1 is verified on every load). The table below is what the data plugins
``brainscore_vision/data/{freemanziemba2013,majajhong2015,rajalingham2018}/__init__.py`` declare
(``tests/test_brainio_files.py`` checks it against the installed package).

The table serves ``neuroalign brainio-files`` (which files of the public benchmarks are cached) and
``docs/brainscore_data.md``; it is no pre-check: any benchmark's missing file is reported by the
guard on brainscore-core's own S3 access (:mod:`callbacks.brainscore.brainio_offline`), which
:func:`import_brainscore_vision` installs together with that cache and without plugin installs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import nearest_names

from callbacks.brainscore.brainio_offline import BRAINIO_HOME_ENV, install_offline_guard, s3_address

__all__ = [
    "BrainIOFile",
    "BRAINIO_FILES",
    "BENCHMARK_DATA",
    "PUBLIC_BENCHMARKS",
    "brainio_home",
    "files_for",
    "missing_brainio_files",
    "brainio_files_markdown",
    "import_brainscore_vision",
]

_BUCKET = "brainscore-storage"
_FOLDER = "brainio-brainscore"


@dataclass(frozen=True)
class BrainIOFile:
    """One data file as brainscore-vision declares it.

    Args:
        data: the brainscore-vision registry id that loads the file (``data_registry`` or
            ``stimulus_set_registry`` key), e.g. ``MajajHong2015.public`` or ``hvm-public``.
        kind: ``assembly`` (NetCDF recordings), ``stimuli csv`` (metadata) or ``stimuli zip`` (images).
        filename: the file name, both on S3 and in the cache.
        sha1: the sha1 brainscore-vision verifies; also the name of the cache sub-folder.
        version_id: the S3 object version brainscore-vision requests (``null``: the unversioned object).
    """

    data: str
    kind: Literal["assembly", "stimuli csv", "stimuli zip"]
    filename: str
    sha1: str
    version_id: str = "null"

    @property
    def url(self) -> str:
        """The S3 address the file is downloaded from."""
        return s3_address(_BUCKET, f"{_FOLDER}/{self.filename}", self.version_id)

    def path(self, home: str | Path | None = None) -> Path:
        """Where brainscore-vision looks for the file: ``<home>/<sha1>/<filename>``."""
        return Path(home if home is not None else brainio_home()) / self.sha1 / self.filename


def _stimuli(data: str, stem: str, csv_sha1: str, zip_sha1: str) -> tuple[BrainIOFile, BrainIOFile]:
    return (
        BrainIOFile(data, "stimuli csv", f"stimulus_{stem}.csv", csv_sha1),
        BrainIOFile(data, "stimuli zip", f"stimulus_{stem}.zip", zip_sha1),
    )


#: data group (the assembly's registry id) -> its assembly file and its stimulus set's csv and zip
BRAINIO_FILES: dict[str, tuple[BrainIOFile, ...]] = {
    "FreemanZiemba2013.public": (
        BrainIOFile(
            "FreemanZiemba2013.public",
            "assembly",
            "assy_movshon_FreemanZiemba2013_public.nc",
            "761c08f796db4e342555cdb60eef23a4f19ead43",
            "W2vx7jdh9utZdVumHHarXa4L1zOrA8Fd",
        ),
        *_stimuli(
            "FreemanZiemba2013.aperture-public",
            "FreemanZiemba2013_aperture-public",
            "194c9b301a4e3e9cff02481d4c19b39331d52660",
            "3a6fec1fc28c212882d6833e267ea8654d289611",
        ),
    ),
    "MajajHong2015.public": (
        BrainIOFile(
            "MajajHong2015.public",
            "assembly",
            "assy_dicarlo_MajajHong2015_public.nc",
            "13d28ca0ce88ee550b54db3004374ae19096e9b9",
        ),
        *_stimuli(
            "hvm-public",
            "hvm-public",
            "5ca7a3da00d8e9c694a9cd725df5ba0ad6d735af",
            "8aa44e038d7b551efa8077467622f9d48d72e473",
        ),
    ),
    "Rajalingham2018.public": (
        BrainIOFile(
            "Rajalingham2018.public",
            "assembly",
            "assy_dicarlo_Rajalingham2018_public.nc",
            "34c6a8b6f7c523589c1861e4123232e5f7c7df4c",
        ),
        # also the benchmark's fitting stimuli (objectome.public)
        *_stimuli(
            "objectome.public",
            "objectome_public",
            "47884e17106a3be471d6481279cab33889b80850",
            "064f2955f98e63867755fee2e3ead8cddf6bfab8",
        ),
    ),
}

#: public benchmark id -> the data group it loads
BENCHMARK_DATA: dict[str, str] = {
    "FreemanZiemba2013public.V1-pls": "FreemanZiemba2013.public",
    "FreemanZiemba2013public.V2-pls": "FreemanZiemba2013.public",
    "MajajHong2015public.V4-pls": "MajajHong2015.public",
    "MajajHong2015public.IT-pls": "MajajHong2015.public",
    "Rajalingham2018public-i2n": "Rajalingham2018.public",
}

#: the supported brainscore-vision benchmark ids, in region order V1, V2, V4, IT, behaviour
PUBLIC_BENCHMARKS: tuple[str, ...] = tuple(BENCHMARK_DATA)


def brainio_home() -> Path:
    """The BrainIO cache folder: ``$BRAINIO_HOME`` or ``~/.brainio``."""
    return Path(os.path.expanduser(os.environ.get(BRAINIO_HOME_ENV, "~/.brainio")))


def files_for(benchmark_ids: str | Iterable[str]) -> list[BrainIOFile]:
    """The data files the given public benchmarks need (each file once).

    Raises:
        ConfigError: an id that is not one of :data:`PUBLIC_BENCHMARKS` (nearest ids listed).
    """
    if isinstance(benchmark_ids, str):
        benchmark_ids = [benchmark_ids]
    files: dict[str, BrainIOFile] = {}
    for benchmark_id in benchmark_ids:
        if benchmark_id not in BENCHMARK_DATA:
            near = ", ".join(nearest_names(benchmark_id, PUBLIC_BENCHMARKS, n=3))
            raise ConfigError(
                f"no BrainIO file table for {benchmark_id!r} (`benchmarks`); the table covers the public benchmarks "
                f"{', '.join(PUBLIC_BENCHMARKS)} (nearest: {near}); a lab's own data goes in a local benchmark folder"
            )
        for file in BRAINIO_FILES[BENCHMARK_DATA[benchmark_id]]:
            files.setdefault(file.sha1, file)
    return list(files.values())


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def missing_brainio_files(
    benchmark_ids: str | Iterable[str], home: str | Path | None = None, verify: bool = False
) -> list[BrainIOFile]:
    """The files of ``benchmark_ids`` that are absent from ``home`` (or, with ``verify``, whose sha1 differs)."""
    missing = []
    for file in files_for(benchmark_ids):
        path = file.path(home)
        if not path.is_file() or (verify and _sha1(path) != file.sha1):
            missing.append(file)
    return missing


def brainio_files_markdown(home: str | Path | None = None) -> str:
    """The nine-file table as Markdown: benchmarks, kind, file, sha1, cache path and S3 address.

    Args:
        home: show cache paths under this folder; ``None`` shows them as ``$BRAINIO_HOME/...``.
    """
    users: dict[str, list[str]] = {}
    for benchmark_id, group in BENCHMARK_DATA.items():
        users.setdefault(group, []).append(benchmark_id)
    lines = [
        "| benchmarks | kind | file | sha1 | place at | download from |",
        "|---|---|---|---|---|---|",
    ]
    for group, files in BRAINIO_FILES.items():
        benchmarks = ", ".join(f"`{b}`" for b in users[group])
        for file in files:
            where = str(file.path(home)) if home is not None else f"$BRAINIO_HOME/{file.sha1}/{file.filename}"
            lines.append(
                f"| {benchmarks} | {file.kind} (`{file.data}`) | `{file.filename}` | `{file.sha1}` | "
                f"`{where}` | {file.url} |"
            )
    return "\n".join(lines)


def import_brainscore_vision():
    """Import ``brainscore_vision`` with plugin dependency installation disabled (``BS_INSTALL_DEPENDENCIES=no``).

    Also points brainscore-core's BrainIO cache at the current ``$BRAINIO_HOME`` (brainscore-core reads
    the variable once per process and would otherwise ignore a later change) and installs the offline
    guard on its S3 access (:func:`callbacks.brainscore.brainio_offline.install_offline_guard`).
    """
    os.environ["BS_INSTALL_DEPENDENCIES"] = "no"
    import brainscore_vision
    from brainscore_core.supported_data_standards.brainio import fetch

    fetch._local_data_path = str(brainio_home())
    install_offline_guard()
    return brainscore_vision

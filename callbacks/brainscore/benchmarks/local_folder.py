"""The lab folder format of local benchmarks, its one reader, and the base class of local benchmarks.

Folder format::

    <folder>/benchmark.yaml   kind: neural | behavior, region (V1|V2|V4|IT, neural only) and
                              visual_degrees are required (all missing ones are listed at once);
                              optional: name (default: the folder name), stratify_by (a stimuli.csv column);
                              neural also: metric (pls | ridge | ridgecv | linear | neuron_to_neuron | cka |
                              cka_cv | rdm | rdm_cv; default pls), metric_args (a mapping, see
                              callbacks.brainscore.metrics.neural_metric), ceiling (a known ceiling in (0, 1];
                              needed when responses.npy has one repetition)
    <folder>/stimuli.csv      columns stimulus_id, filename (relative to the folder), any others
    <folder>/responses.npy    neural: float array (repetitions, stimuli, neuroids), rows in
                              stimuli.csv order; NaN marks a missing trial; (stimuli, neuroids) is
                              one repetition
    <folder>/trials.csv       behavior: one row per human trial: stimulus_id, truth, choice
                              [, subject][, distractor]
    <folder>/fitting.csv      behavior: stimulus_id, filename, label -- images to fit the readout

:func:`read_local_folder` reads and checks what every kind shares (``benchmark.yaml``);
:func:`read_csv` and :func:`read_stimulus_set` read the CSV files. The two kinds are
:class:`~callbacks.brainscore.benchmarks.local_neural.LocalNeuralBenchmark` and
:class:`~callbacks.brainscore.benchmarks.local_behavioural.LocalBehaviouralBenchmark`;
:func:`callbacks.brainscore.benchmarks.local.open_local_benchmark` opens a folder as the right one.
Every bad input is caught when the folder is loaded, before any model runs.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from neuroalign.core.errors import ConfigError, MissingFileError

from callbacks.brainscore.benchmarks.base import FeatureBenchmark
from callbacks.brainscore.types import StimulusSet

__all__ = ["KINDS", "REQUIRED_KEYS", "LocalFolder", "read_local_folder", "read_csv", "read_stimulus_set", "LocalBenchmark"]

#: the ``kind`` values of benchmark.yaml
KINDS: tuple[str, ...] = ("neural", "behavior")

#: keys every benchmark.yaml needs -> what they hold (``region``: neural benchmarks only)
REQUIRED_KEYS: dict[str, str] = {
    "kind": "neural | behavior",
    "region": "V1 | V2 | V4 | IT, for kind: neural",
    "visual_degrees": "degrees of visual angle the images span",
}


@dataclass(frozen=True)
class LocalFolder:
    """A benchmark folder whose ``benchmark.yaml`` was read and checked.

    Attributes:
        path: the folder.
        meta: the contents of ``benchmark.yaml``.
        kind: ``neural`` or ``behavior``.
        name: ``meta["name"]``, else the folder name.
        visual_degrees: the degrees of visual angle the images span (positive).
    """

    path: Path
    meta: dict[str, Any]
    kind: str
    name: str
    visual_degrees: float

    @property
    def meta_path(self) -> Path:
        """The folder's ``benchmark.yaml``."""
        return self.path / "benchmark.yaml"


def read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts; ``MissingFileError`` / ``ConfigError`` for a missing file or column."""
    if not path.is_file():
        raise MissingFileError(f"benchmark file {path.name}", path, "benchmark folder")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        missing = [c for c in required if c not in columns]
        if missing:
            raise ConfigError(f"{path} lacks column(s) {missing}; it needs {list(required)}")
        rows = list(reader)
    if not rows:
        raise ConfigError(f"{path} has no rows")
    return rows


def read_stimulus_set(folder: Path, rows: list[dict[str, str]], visual_degrees: float, csv_name: str) -> StimulusSet:
    """The stimulus set of CSV ``rows`` (``stimulus_id``, ``filename`` relative to ``folder``); every image must exist."""
    ids = [r["stimulus_id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"{folder / csv_name}: stimulus_id {dup!r} appears more than once")
    paths = tuple((folder / r["filename"]).resolve() for r in rows)
    for path in paths:
        if not path.is_file():
            raise MissingFileError(f"stimulus image listed in {csv_name}", path, f"{csv_name} `filename`")
    return StimulusSet(paths=paths, stimulus_ids=tuple(ids), visual_degrees=visual_degrees)


def _check_required_keys(meta: Mapping[str, Any], meta_path: Path) -> None:
    """One ``ConfigError`` listing every required key ``benchmark.yaml`` lacks (``region`` unless kind is behavior)."""
    needed = [k for k in REQUIRED_KEYS if not (k == "region" and meta.get("kind") == "behavior")]
    missing = [k for k in needed if meta.get(k) is None]
    if missing:
        listing = ", ".join(f"{k} ({REQUIRED_KEYS[k]})" for k in missing)
        raise ConfigError(f"{meta_path} lacks {len(missing)} required key(s): {listing}")


def read_local_folder(path: str | Path) -> LocalFolder:
    """Read and check a benchmark folder's ``benchmark.yaml`` (the keys every kind shares).

    Raises:
        MissingFileError: no folder, or no ``benchmark.yaml`` in it.
        ConfigError: required keys missing (all listed at once), an unknown ``kind``, or a
            ``visual_degrees`` that is not a positive number.
    """
    path = Path(path)
    if not path.is_dir():
        raise MissingFileError("local benchmark folder", path, "benchmarks")
    meta_path = path / "benchmark.yaml"
    if not meta_path.is_file():
        raise MissingFileError("benchmark.yaml of the local benchmark", meta_path, "benchmarks")
    meta = yaml.safe_load(meta_path.read_text()) or {}
    if not isinstance(meta, dict):
        raise ConfigError(f"{meta_path} must be a mapping (name, kind, region, visual_degrees)")
    _check_required_keys(meta, meta_path)
    kind = meta["kind"]
    if kind not in KINDS:
        raise ConfigError(f"{meta_path}: kind {kind!r} is invalid; valid: {', '.join(KINDS)}")
    try:
        visual_degrees = float(meta["visual_degrees"])
    except (TypeError, ValueError):
        raise ConfigError(f"{meta_path}: visual_degrees {meta.get('visual_degrees')!r} is not a number") from None
    if not visual_degrees > 0:
        raise ConfigError(f"{meta_path}: visual_degrees must be positive, got {visual_degrees}")
    return LocalFolder(path=path, meta=meta, kind=kind, name=str(meta.get("name") or path.name), visual_degrees=visual_degrees)


class LocalBenchmark(FeatureBenchmark):
    """A benchmark read from a lab folder (format in the module docstring): what both kinds share.

    Open a folder with :func:`callbacks.brainscore.benchmarks.local.open_local_benchmark`, which
    returns the subclass of the folder's ``kind``.

    Args:
        folder: the folder, as :func:`read_local_folder` returns it.

    Attributes:
        path, meta, name, visual_degrees: from the folder; ``identifier`` is ``local:<name>``.
        n_dropped: neuroids left out when loading (0 for behaviour).
    """

    def __init__(self, folder: LocalFolder) -> None:
        if folder.kind != self.kind:
            raise ConfigError(f"{folder.meta_path}: kind {folder.kind!r}, but {type(self).__name__} reads kind {self.kind!r}")
        self.path = folder.path
        self.meta: dict[str, Any] = folder.meta
        self.name = folder.name
        self.identifier = f"local:{self.name}"
        self.visual_degrees = folder.visual_degrees
        self.n_dropped = 0

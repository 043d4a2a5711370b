"""Stand-in data of the real public schema in brainscore-vision's own registries (tests and benchmarks only).

The real public Brain-Score data cannot be downloaded here. :func:`standins` registers, the way a
data plugin does (the plugin module imported first, then its registry entries replaced), stand-in
assemblies and stimulus sets with the coords, dims and classes of the real public data, so that
**brainscore-vision's own benchmark factories** (``brainscore_vision.load_benchmark``) load them:

* ``MajajHong2015.public`` + ``hvm-public``: a ``NeuronRecordingAssembly`` (presentation x neuroid x
  time_bin, one bin 70-170 ms); presentation coords ``stimulus_id``, ``object_name`` (the PLS
  stratification coord), ``category_name``, ``variation``, ``repetition``; neuroid coords
  ``neuroid_id``, ``region`` (V4, IT), ``animal``, ``arr``;
* ``FreemanZiemba2013.public`` + ``FreemanZiemba2013.aperture-public``: 1-ms ``time_bin`` start/end
  pairs covering 50-200 ms; ``texture_type`` (texture / noise, the stratification coord),
  ``texture_family``, ``sample``, ``resolution``, ``repetition``; neuroid coords ``neuroid_id`` and
  ``region`` (V1, V2) only (brainscore-vision stacks ``neuroid_id`` after selecting the region);
* ``Rajalingham2018.public`` (a ``BehavioralAssembly`` of trials whose values are the choices, with
  ``stimulus_id``, ``sample_obj``, ``dist_obj``, ``choice``, ``truth``, ``repetition``) and its
  ``objectome.public`` stimuli (``image_label``), which the i2n benchmark also fits its readout on.

Responses are noisy linear functions of each image's mean colour, so a model's features predict
them. Each loader builds fresh objects (benchmarks change their assemblies in place), and the
previous registry entries come back when the context ends. ``RESULTCACHING_DISABLE=1`` must be set
(``tests/conftest.py`` sets it): brainscore-vision caches some loaders with ``result_caching``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from callbacks.brainscore.brainio_data import import_brainscore_vision

__all__ = ["StandinSizes", "TEST_SIZES", "REAL_SIZES", "PUBLIC_BENCHMARK_IDS", "standins"]

#: the five public benchmarks the stand-ins serve
PUBLIC_BENCHMARK_IDS: tuple[str, ...] = (
    "FreemanZiemba2013public.V1-pls",
    "FreemanZiemba2013public.V2-pls",
    "MajajHong2015public.V4-pls",
    "MajajHong2015public.IT-pls",
    "Rajalingham2018public-i2n",
)
#: data plugin module -> the registry entries the stand-ins replace
_PLUGINS = {
    "brainscore_vision.data.majajhong2015": ("MajajHong2015.public", "hvm-public"),
    "brainscore_vision.data.freemanziemba2013": ("FreemanZiemba2013.public", "FreemanZiemba2013.aperture-public"),
    "brainscore_vision.data.rajalingham2018": ("Rajalingham2018.public", "objectome.public"),
}


@dataclass(frozen=True)
class StandinSizes:
    """Sizes of the stand-in data (tests use :data:`TEST_SIZES`, benchmark scripts :data:`REAL_SIZES`)."""

    hvm_stimuli: int = 40
    hvm_objects: int = 4
    hvm_repetitions: int = 3
    v4_neuroids: int = 6
    it_neuroids: int = 8
    fz_stimuli: int = 40
    fz_repetitions: int = 3
    v1_neuroids: int = 6
    v2_neuroids: int = 6
    objectome_stimuli: int = 40
    objectome_objects: int = 4
    trials_per_stimulus: int = 8
    image_side: int = 24


#: small enough for the test suite (a few seconds per benchmark on a tiny model)
TEST_SIZES = StandinSizes()
#: the sizes of the real public data (3200 HVM images, 88 V4 / 168 IT neuroids, 135 FreemanZiemba
#: images x 20 repetitions, 102 V1 / 103 V2 neuroids, 240 objectome images of 24 objects)
REAL_SIZES = StandinSizes(
    hvm_stimuli=3200, hvm_objects=64, hvm_repetitions=28, v4_neuroids=88, it_neuroids=168,
    fz_stimuli=135, fz_repetitions=20, v1_neuroids=102, v2_neuroids=103,
    objectome_stimuli=240, objectome_objects=24, trials_per_stimulus=60, image_side=256,
)


def _images(folder: Path, n: int, groups: Sequence[int], side: int, seed: int) -> tuple[list[Path], np.ndarray]:
    """``n`` PNG images whose colour depends on their group; returns the paths and each image's mean colour."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centres = rng.uniform(40, 215, size=(max(groups) + 1, 3))
    paths, colours = [], []
    for i in range(n):
        colour = np.clip(centres[groups[i]] + rng.normal(scale=25, size=3), 0, 255)
        pixels = np.clip(colour + rng.normal(scale=20, size=(side, side, 3)), 0, 255).astype(np.uint8)
        path = folder / f"im{i:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
        colours.append(pixels.reshape(-1, 3).mean(0) / 255.0)
    return paths, np.asarray(colours)


def _stimulus_set(identifier: str, paths: Sequence[Path], columns: dict[str, Sequence]):
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

    ids = [f"{identifier}-{i:05d}" for i in range(len(paths))]
    stimuli = StimulusSet({"stimulus_id": ids, "filename": [p.name for p in paths], **{k: list(v) for k, v in columns.items()}})
    stimuli.stimulus_paths = {sid: str(p) for sid, p in zip(ids, paths)}
    stimuli.identifier = identifier
    return stimuli


def _responses(colours: np.ndarray, n_neuroids: int, repetitions: int, rng: np.random.Generator) -> np.ndarray:
    """``(repetitions, stimuli, neuroids)``: a linear function of the colours plus trial noise."""
    signal = (colours - colours.mean(0)) @ rng.normal(size=(3, n_neuroids)) * 10 + 5
    noise = rng.normal(scale=signal.std(0) * 0.6 + 1e-3, size=(repetitions, *signal.shape))
    return signal[None] + noise


def _neural(
    stimuli,
    responses_by_region: dict[str, np.ndarray],
    time_bins: Sequence[tuple[int, int]],
    drop: Sequence[str],
    neuroid_meta: Sequence[str] = (),
):
    """A ``NeuronRecordingAssembly`` with the stimulus set's columns merged in, as brainscore-core's loader does."""
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuronRecordingAssembly

    regions = list(responses_by_region)
    data = np.concatenate([responses_by_region[r] for r in regions], axis=2)  # (reps, stimuli, neuroids)
    reps, n, n_neuroids = data.shape
    meta = {c: ("presentation", np.tile(stimuli[c].values, reps)) for c in stimuli.columns if c != "filename"}
    coords = {
        **meta,
        "repetition": ("presentation", np.repeat(np.arange(reps), n)),
        "neuroid_id": ("neuroid", [f"{r}_{i}" for r in regions for i in range(responses_by_region[r].shape[2])]),
        "region": ("neuroid", [r for r in regions for _ in range(responses_by_region[r].shape[2])]),
        **{c: ("neuroid", [f"{c}0"] * n_neuroids) for c in neuroid_meta},
        "time_bin_start": ("time_bin", [t[0] for t in time_bins]),
        "time_bin_end": ("time_bin", [t[1] for t in time_bins]),
    }
    coords = {k: v for k, v in coords.items() if k not in drop}
    values = np.repeat(data.reshape(reps * n, n_neuroids)[:, :, None], len(time_bins), axis=2)
    assembly = NeuronRecordingAssembly(values, coords=coords, dims=["presentation", "neuroid", "time_bin"])
    assembly.attrs["stimulus_set"] = stimuli
    assembly.attrs["stimulus_set_identifier"] = stimuli.identifier
    return assembly


class _Builders:
    """Fresh stand-in objects on every call (benchmarks change assemblies in place)."""

    def __init__(self, root: Path, sizes: StandinSizes, drop: Sequence[str], seed: int) -> None:
        self.sizes, self.drop, self.seed = sizes, tuple(drop), seed
        s = sizes
        self.hvm_objects = [i % s.hvm_objects for i in range(s.hvm_stimuli)]
        self.hvm_paths, self.hvm_colours = _images(root / "hvm", s.hvm_stimuli, self.hvm_objects, s.image_side, seed)
        self.fz_groups = [i % 2 for i in range(s.fz_stimuli)]
        self.fz_paths, self.fz_colours = _images(root / "fz", s.fz_stimuli, self.fz_groups, s.image_side, seed + 1)
        self.obj_labels = [i % s.objectome_objects for i in range(s.objectome_stimuli)]
        self.obj_paths, self.obj_colours = _images(root / "objectome", s.objectome_stimuli, self.obj_labels, s.image_side, seed + 2)

    def _cols(self, columns: dict[str, Sequence]) -> dict[str, Sequence]:
        return {k: v for k, v in columns.items() if k not in self.drop}

    def hvm(self):
        objects = [f"obj{o:02d}" for o in self.hvm_objects]
        return _stimulus_set("hvm-public", self.hvm_paths, self._cols({
            "object_name": objects, "category_name": [f"cat{o % 8}" for o in self.hvm_objects],
            "variation": [3] * len(objects)}))

    def majajhong(self):
        rng = np.random.default_rng(self.seed + 10)
        s = self.sizes
        responses = {
            "V4": _responses(self.hvm_colours, s.v4_neuroids, s.hvm_repetitions, rng),
            "IT": _responses(self.hvm_colours, s.it_neuroids, s.hvm_repetitions, rng),
        }
        return _neural(self.hvm(), responses, [(70, 170)], self.drop, neuroid_meta=("animal", "arr"))

    def freemanziemba_stimuli(self):
        kinds = ["texture" if g == 0 else "noise" for g in self.fz_groups]
        return _stimulus_set("FreemanZiemba2013.aperture-public", self.fz_paths, self._cols({
            "texture_type": kinds, "texture_family": [i // 2 % 5 for i in range(len(kinds))],
            "sample": [i // 10 for i in range(len(kinds))], "resolution": [320] * len(kinds)}))

    def freemanziemba(self):
        rng = np.random.default_rng(self.seed + 11)
        s = self.sizes
        responses = {
            "V1": _responses(self.fz_colours, s.v1_neuroids, s.fz_repetitions, rng),
            "V2": _responses(self.fz_colours, s.v2_neuroids, s.fz_repetitions, rng),
        }
        return _neural(self.freemanziemba_stimuli(), responses, [(t, t + 1) for t in range(50, 200)], self.drop)

    def objectome(self):
        labels = [f"obj{o:02d}" for o in self.obj_labels]
        return _stimulus_set("objectome.public", self.obj_paths, self._cols({"image_label": labels, "object_name": labels}))

    def rajalingham(self):
        from brainscore_core.supported_data_standards.brainio.assemblies import BehavioralAssembly

        stimuli = self.objectome()
        rng = np.random.default_rng(self.seed + 12)
        labels = sorted(set(f"obj{o:02d}" for o in self.obj_labels))
        colours = self.obj_colours
        centres = np.stack([colours[[o == k for o in self.obj_labels]].mean(0) for k in range(len(labels))])
        rows = {"stimulus_id": [], "sample_obj": [], "dist_obj": [], "choice": [], "truth": [], "repetition": [], "worker_id": []}
        for i, sid in enumerate(stimuli["stimulus_id"].values):
            truth = labels[self.obj_labels[i]]
            for trial in range(self.sizes.trials_per_stimulus):
                d = rng.choice([k for k in range(len(labels)) if labels[k] != truth])
                gap = np.linalg.norm(colours[i] - centres[d]) - np.linalg.norm(colours[i] - centres[self.obj_labels[i]])
                correct = rng.uniform() < 1 / (1 + np.exp(-12 * gap))
                rows["stimulus_id"].append(sid)
                rows["sample_obj"].append(truth)
                rows["dist_obj"].append(labels[d])
                rows["truth"].append(truth)
                rows["choice"].append(truth if correct else labels[d])
                rows["repetition"].append(trial % 2)
                rows["worker_id"].append(f"w{trial % 3}")
        coords = {k: ("presentation", v) for k, v in rows.items() if k not in self.drop}
        assembly = BehavioralAssembly(rows["choice"], coords=coords, dims=["presentation"])
        assembly.attrs["stimulus_set"] = stimuli
        assembly.attrs["stimulus_set_identifier"] = stimuli.identifier
        return assembly

    def loaders(self) -> dict[str, tuple[str, Callable[[], object]]]:
        return {
            "MajajHong2015.public": ("data", self.majajhong),
            "hvm-public": ("stimulus_set", self.hvm),
            "FreemanZiemba2013.public": ("data", self.freemanziemba),
            "FreemanZiemba2013.aperture-public": ("stimulus_set", self.freemanziemba_stimuli),
            "Rajalingham2018.public": ("data", self.rajalingham),
            "objectome.public": ("stimulus_set", self.objectome),
        }


@contextlib.contextmanager
def standins(root: str | Path, sizes: StandinSizes = TEST_SIZES, drop_coords: Sequence[str] = (), seed: int = 0) -> Iterator[dict[str, Callable[[], object]]]:
    """Register the stand-ins in brainscore-vision's registries for the duration of the context.

    Args:
        root: folder for the stand-in images.
        sizes: :data:`TEST_SIZES` or :data:`REAL_SIZES` (or any).
        drop_coords: coords left out of every stand-in (to test the error naming a missing coord).
        seed: seed of images, responses and trials.

    Yields:
        ``{registry id: loader}`` of the registered stand-ins.
    """
    os.environ["RESULTCACHING_DISABLE"] = "1"
    brainscore_vision = import_brainscore_vision()
    for module in _PLUGINS:  # as a data plugin does: the plugin registers first, then is overridden
        importlib.import_module(module)
    registries = {"data": brainscore_vision.data_registry, "stimulus_set": brainscore_vision.stimulus_set_registry}
    builders = _Builders(Path(root), sizes, drop_coords, seed)
    saved = {}
    for identifier, (kind, loader) in builders.loaders().items():
        saved[(kind, identifier)] = registries[kind].get(identifier)
        registries[kind][identifier] = loader
    try:
        yield {identifier: loader for identifier, (_, loader) in builders.loaders().items()}
    finally:
        for (kind, identifier), loader in saved.items():
            if loader is None:
                registries[kind].pop(identifier, None)
            else:
                registries[kind][identifier] = loader

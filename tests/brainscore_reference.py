"""Test-only references: brainscore-vision's own ``NeuralBenchmark`` built in memory from plain arrays.

:func:`neural_assemblies` and :func:`reference_neural_benchmark` build brainscore-vision's
``NeuralBenchmark`` (``pls`` metric, ``internal_consistency`` ceiling) from ``(repetitions, stimuli,
neuroids)`` responses -- the reference the project's engine is checked against
(``tests/test_reference_equivalence.py``, ``tests/test_export.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from callbacks.brainscore.brainio_data import import_brainscore_vision

__all__ = ["neural_assemblies", "reference_neural_benchmark"]


def neural_assemblies(
    responses: np.ndarray,
    stimulus_ids: Sequence[str],
    paths: Sequence[str | Path],
    region: str,
    stratify: Sequence[Any] | None = None,
    identifier: str = "neuroalign-local",
):
    """brainscore-vision ``NeuroidAssembly`` objects (per repetition, and repetition-averaged) from arrays.

    Args:
        responses: ``(repetitions, stimuli, neuroids)`` responses (NaN: missing trial).
        stimulus_ids: one id per stimulus.
        paths: image file per stimulus.
        region: the region coordinate of every neuroid.
        stratify: optional per-stimulus labels (coordinate ``stratum``) for stratified splits.
        identifier: stimulus set identifier.

    Returns:
        ``(assembly_repetitions, assembly_averaged)``, both with the stimulus set attached.
    """
    brainscore_vision = import_brainscore_vision()  # noqa: F841 - registries and env first
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet
    from brainscore_vision.benchmark_helpers.neural_common import average_repetition

    reps, n_stimuli, n_neuroids = responses.shape
    stimulus_ids = [str(s) for s in stimulus_ids]
    meta = {"stimulus_id": stimulus_ids, "filename": [Path(p).name for p in paths]}
    if stratify is not None:
        meta["stratum"] = [str(s) for s in stratify]
    stimulus_set = StimulusSet(meta)
    stimulus_set.stimulus_paths = {sid: Path(p) for sid, p in zip(stimulus_ids, paths)}
    stimulus_set.identifier = identifier
    coords = {
        "stimulus_id": ("presentation", np.tile(stimulus_ids, reps)),
        # a second presentation coordinate keeps brainscore-vision's multi-coordinate groupby on `presentation`
        "stimulus_index": ("presentation", np.tile(np.arange(n_stimuli), reps)),
        "repetition": ("presentation", np.repeat(np.arange(reps), n_stimuli)),
        "neuroid_id": ("neuroid", [f"n{i}" for i in range(n_neuroids)]),
        "region": ("neuroid", [region] * n_neuroids),
        "time_bin_start": ("time_bin", [70]),
        "time_bin_end": ("time_bin", [170]),
    }
    if stratify is not None:
        coords["stratum"] = ("presentation", np.tile(meta["stratum"], reps))
    data = np.asarray(responses, dtype=float).reshape(reps * n_stimuli, n_neuroids, 1)
    # one 70-170 ms time bin, squeezed as brainscore-vision's own static benchmarks do
    repetitions = NeuroidAssembly(data, coords=coords, dims=["presentation", "neuroid", "time_bin"]).squeeze("time_bin")
    averaged = average_repetition(repetitions)
    # restore stimulus order (groupby sorts) so rows match `stimulus_ids`
    averaged = averaged.isel(presentation=np.argsort(averaged["stimulus_index"].values))
    for assembly in (repetitions, averaged):
        assembly.attrs["stimulus_set"] = stimulus_set
        assembly.attrs["stimulus_set_identifier"] = identifier
    return repetitions, averaged


def reference_neural_benchmark(
    responses: np.ndarray,
    stimulus_ids: Sequence[str],
    paths: Sequence[str | Path],
    region: str,
    stratify: Sequence[Any] | None = None,
    visual_degrees: float = 8.0,
    identifier: str = "neuroalign-local",
):
    """brainscore-vision's own ``NeuralBenchmark`` (``pls`` metric, ``internal_consistency`` ceiling) on arrays.

    Arguments as in :func:`neural_assemblies`; ``stratify`` becomes the ``pls`` metric's
    stratification coordinate. The benchmark's ceiled score is brainscore-vision 2.4.2's
    ``r^2 / ceiling``; ``score.attrs["raw"]`` and ``score.attrs["ceiling"]`` hold the parts.
    """
    brainscore_vision = import_brainscore_vision()
    from brainscore_vision.benchmark_helpers.neural_common import NeuralBenchmark

    repetitions, averaged = neural_assemblies(responses, stimulus_ids, paths, region, stratify, identifier)
    cv = dict(stratification_coord="stratum" if stratify is not None else None)
    metric = brainscore_vision.load_metric("pls", crossvalidation_kwargs=cv)
    ceiler = brainscore_vision.load_ceiling("internal_consistency")
    return NeuralBenchmark(
        identifier=f"{identifier}.{region}-pls",
        version=1,
        assembly=averaged,
        similarity_metric=metric,
        visual_degrees=visual_degrees,
        number_of_trials=1,
        ceiling_func=lambda: ceiler(repetitions),
        parent=region,
    )

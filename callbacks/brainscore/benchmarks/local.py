"""Open a local benchmark folder as the benchmark of its kind (neural or behavioural).

The folder format is described in :mod:`callbacks.brainscore.benchmarks.local_folder`; neural folders
become :class:`~callbacks.brainscore.benchmarks.local_neural.LocalNeuralBenchmark`, behavioural ones
:class:`~callbacks.brainscore.benchmarks.local_behavioural.LocalBehaviouralBenchmark`.
"""

from __future__ import annotations

from pathlib import Path

from callbacks.brainscore.benchmarks.local_behavioural import LocalBehaviouralBenchmark
from callbacks.brainscore.benchmarks.local_folder import LocalBenchmark, read_local_folder
from callbacks.brainscore.benchmarks.local_neural import LocalNeuralBenchmark

__all__ = ["LOCAL_BENCHMARK_CLASSES", "open_local_benchmark"]

#: ``kind`` of benchmark.yaml -> the benchmark class reading such a folder
LOCAL_BENCHMARK_CLASSES: dict[str, type[LocalBenchmark]] = {
    "neural": LocalNeuralBenchmark,
    "behavior": LocalBehaviouralBenchmark,
}


def open_local_benchmark(path: str | Path) -> LocalBenchmark:
    """The benchmark in folder ``path``: every file read and checked, before any model runs.

    Raises:
        MissingFileError: the folder or one of its files is missing.
        ConfigError: a file is malformed (the message names the file and what to fix).
    """
    folder = read_local_folder(path)
    return LOCAL_BENCHMARK_CLASSES[folder.kind](folder)

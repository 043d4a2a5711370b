"""Brain-Score for neuroalign: the :class:`BrainScoreCallback` and the scoring engine it calls.

``from callbacks import BrainScoreCallback, score_model, make_synthetic_benchmark``. Imports are lazy
so that ``import callbacks`` stays cheap (brainscore-vision is only imported for its benchmarks).
"""

from __future__ import annotations

import importlib

__all__ = [
    "BrainScoreCallback",
    "score_model",
    "make_synthetic_benchmark",
    "layer_sweep",
    "write_layer_sweep",
    "load_benchmark",
    "LocalBenchmark",
    "Benchmark",
    "FeatureBenchmark",
    "RegionScore",
]

_WHERE = {
    "BrainScoreCallback": "callbacks.brainscore_callback",
    "score_model": "callbacks.scoring",
    "load_benchmark": "callbacks.scoring",
    "make_synthetic_benchmark": "callbacks.synthetic",
    "layer_sweep": "callbacks.layer_sweep",
    "write_layer_sweep": "callbacks.layer_sweep",
    "LocalBenchmark": "callbacks.local_benchmark",
    "Benchmark": "callbacks.benchmark",
    "FeatureBenchmark": "callbacks.benchmark",
    "RegionScore": "callbacks.benchmark",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'callbacks' has no attribute {name!r}")

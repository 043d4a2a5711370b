"""neuroalign's Callbacks, and the Brain-Score room they call (:mod:`callbacks.brainscore`).

``from callbacks import BrainScoreCallback, score_model, make_synthetic_benchmark, open_local_benchmark``. Members are
imported on first use, so ``import callbacks`` stays cheap (brainscore-vision is imported only for
its benchmarks).
"""

from neuroalign.core.lazy import lazy_exports

_EXPORTS = {
    "BrainScoreCallback": "callbacks.brainscore_callback",
    "CatastrophicOverfittingMonitor": "callbacks.catastrophic_overfitting",
    "NeuroAlignProgressBar": "callbacks.progress",
    "score_model": "callbacks.brainscore.engine",
    "load_benchmark": "callbacks.brainscore.engine",
    "make_synthetic_benchmark": "callbacks.brainscore.benchmarks.synthetic",
    "layer_sweep": "callbacks.brainscore.commands.layer_sweep",
    "write_layer_sweep": "callbacks.brainscore.commands.layer_sweep",
    "LocalBenchmark": "callbacks.brainscore.benchmarks.local_folder",
    "open_local_benchmark": "callbacks.brainscore.benchmarks.local",
    "Benchmark": "callbacks.brainscore.benchmarks.base",
    "FeatureBenchmark": "callbacks.brainscore.benchmarks.base",
    "RegionScore": "callbacks.brainscore.types",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Peak memory of scoring one CrossViT-18-dagger-wide layer exactly (no random projection) with the PLS metric.

Brain-Score's Table-2 layer ``blocks.1.blocks.1.0.norm1`` of CrossViT-18 dagger 408 has 577 x 448 =
258,496 values per image; on 3200 MajajHong stimuli its float32 features take 3.3 GB. This script
scores a stand-in of exactly that shape with :func:`callbacks.brainscore.metrics.pls.pls_cv_correlations`
(which takes its kernel path: a float64 Gram matrix built by chunks of columns, no copy of the
features) against 168 neuroids on 10 splits, and measures the real peak resident memory:

* the features are one preallocated float32 ``(n, p)`` CPU tensor filled by chunks of rows with a
  low-rank signal (40 latents with a power-law spectrum) plus noise; the neuroids are a noisy
  nonlinear read-out of the same latents, so the score is meaningful;
* the peak is the process's ``ru_maxrss`` and, to isolate the scoring step, a psutil sampler of the
  resident set every 20 ms while scoring;
* it prints the peak RSS in GB against the 8 GB budget, the scoring time and score, and
  :func:`~callbacks.brainscore.metrics.pls.pls_memory_bytes` (the estimate a caller can check before any
  work) next to the measured growth.

On a GPU machine the stand-in could be replaced by the real timm ``crossvit_18_dagger_408`` features
of the layer (one hooked pass over the stimuli); on a 2-core CPU that pass takes hours, the scoring
below a few minutes.

    python benchmarks/bench_feature_memory.py [--stimuli 3200] [--features 258496] [--neuroids 168] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import threading
import time

import psutil
import torch

from callbacks.brainscore.metrics.correlation import nanmedian
from callbacks.brainscore.metrics.pls import pls_cv_correlations, pls_memory_bytes, uses_kernel
from callbacks.brainscore.metrics.splits import brainscore_splits

GB = 1024**3


def make_features(n: int, p: int, q: int, rank: int = 40, rows: int = 64, seed: int = 0):
    """``(n, p)`` float32 features (one preallocated tensor, filled by chunks of rows), ``(n, q)`` responses."""
    gen = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, rank, generator=gen) / torch.arange(1, rank + 1).sqrt()
    basis = torch.randn(rank, p, generator=gen)
    X = torch.empty(n, p, dtype=torch.float32)
    for i in range(0, n, rows):
        chunk = X[i : i + rows]
        torch.randn(chunk.shape, generator=gen, out=chunk).mul_(2.0)
        chunk.addmm_(latent[i : i + rows], basis)
    readout = torch.randn(rank, q, generator=gen, dtype=torch.float64)
    Y = torch.tanh(latent.double() @ readout / 2) + 0.5 * torch.randn(n, q, generator=gen, dtype=torch.float64)
    return X, Y.numpy()


class PeakSampler:
    """Samples the resident set size of this process in a background thread."""

    def __init__(self, every: float = 0.02) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self.every)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stimuli", type=int, default=3200)
    parser.add_argument("--features", type=int, default=577 * 448)
    parser.add_argument("--neuroids", type=int, default=168)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n, p, q = args.stimuli, args.features, args.neuroids

    start = time.perf_counter()
    X, Y = make_features(n, p, q)
    splits = brainscore_splits(n)
    print(f"stand-in features {n} x {p} float32 ({X.numel() * 4 / GB:.2f} GB) -> {q} neuroids, "
          f"generated in {time.perf_counter() - start:.1f} s; torch threads {args.threads}")
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    with PeakSampler() as sampler:
        r = pls_cv_correlations(X, Y, splits, n_components=25)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    score = float(nanmedian(r, dim=1).mean())
    estimate = pls_memory_bytes(n, p, q, len(splits))
    path = "kernel (Gram matrix)" if uses_kernel(n, p) else "primal"
    print(f"path: {path}; scoring took {seconds:.1f} s; score (mean over splits of the median r) {score:.4f}")
    print(f"RSS before scoring {before / GB:.2f} GB; peak while scoring (sampled) {sampler.peak / GB:.2f} GB; "
          f"process peak (ru_maxrss) {peak / GB:.2f} GB; budget 8 GB")
    print(f"growth while scoring {(sampler.peak - before) / GB:.3f} GB; pls_memory_bytes estimate {estimate / GB:.3f} GB")


if __name__ == "__main__":
    main()

"""Peak memory of one-pass feature extraction through CrossViT-18 dagger's Table-2 layers.

Brain-Score feeds 3200 MajajHong stimuli through ``blocks.1.blocks.1.0.norm1`` (577 x 448 values an
image): raw float32 features alone would take 3200 * 577 * 448 * 4 B = 3.3 GB per layer. The engine
streams each batch through a fixed sparse projection to ``max_features`` values, so what grows with the
number of stimuli is only ``n * max_features * 4`` bytes per layer.

Running 3200 CrossViT images takes hours on a 2-core CPU, so this script measures peak RSS at two small
stimulus counts (same batch size), derives the growth per stimulus from them, and projects the peak at
``--target`` stimuli. It prints the measured peaks, the projection and the 8 GB budget.

    python benchmarks/bench_feature_memory.py [--n 32 64] [--batch-size 16] [--target 3200]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
from pathlib import Path

LAYERS = ["blocks.1.blocks.1.0.norm1", "blocks.1.blocks.1.4.norm2", "blocks.2.revert_projs.1.2"]


def _peak_rss_for(n: int, batch_size: int, queue) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from callbacks.brainscore.types import ScoringContext, StimulusSet
    from callbacks.brainscore.features import extract_features
    from lightning_modules import build_model

    torch.set_num_threads(2)
    model = build_model("crossvit_18_dagger_408", input_size=224)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        paths = []
        for i in range(n):
            path = Path(tmp) / f"{i}.png"
            Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(path)
            paths.append(path)
        stimuli = StimulusSet(tuple(paths), tuple(map(str, range(n))), 8.0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        feats = extract_features(model, [stimuli], LAYERS, ScoringContext(batch_size=batch_size))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stored = sum(t.numel() * t.element_size() for d in feats.values() for t in d.values())
    queue.put((before * 1024, peak * 1024, stored))


def measure(n: int, batch_size: int) -> tuple[int, int, int]:
    """(RSS before extraction, peak RSS, bytes of stored features) in a fresh process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_rss_for, args=(n, batch_size, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs=2, default=[32, 64], help="two stimulus counts to measure")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--target", type=int, default=3200)
    args = parser.parse_args()
    gb = 1024**3
    rows = []
    for n in args.n:
        before, peak, stored = measure(n, args.batch_size)
        rows.append((n, peak, stored))
        print(f"n={n:5d}: RSS before extraction {before / gb:.2f} GB, peak {peak / gb:.2f} GB, stored features {stored / 2**20:.1f} MB")
    (n1, p1, s1), (n2, p2, s2) = rows
    per_stimulus_stored = (s2 - s1) / (n2 - n1)
    projected = p2 + (args.target - n2) * per_stimulus_stored
    raw = args.target * 577 * 448 * 4 * 2 + args.target * 448 * 4
    print(f"stored features grow by {per_stimulus_stored / 1024:.1f} KB per stimulus (all {len(LAYERS)} layers)")
    print(f"projected peak at {args.target} stimuli: {projected / gb:.2f} GB (budget 8 GB; ratio {projected / (8 * gb):.2f})")
    print(f"for comparison, raw float32 features of these layers at {args.target} stimuli: {raw / gb:.1f} GB")


if __name__ == "__main__":
    main()

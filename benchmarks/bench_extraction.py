"""One-pass extraction of every region's features vs one plain forward pass over the same stimuli.

Both runs load the same images from disk through the same loader; the project's run additionally
hooks, clones, flattens and (for wide layers) projects the outputs of all mapped layers (V1, V2, V4,
IT and the behavioural readout). Prints the ratio (target <= 1.25).

    python benchmarks/bench_extraction.py [--model vit_tiny_patch16_224] [--n 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from callbacks.brainscore.types import ScoringContext, StimulusSet
from callbacks.brainscore.features import DEFAULT_INPUT_SIDE, extract_features, image_batches, preserved_state
from neuroalign.core.modules import input_hw


def _stimuli(folder: Path, n: int) -> StimulusSet:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return StimulusSet(tuple(paths), tuple(map(str, range(n))), 8.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="vit_tiny_patch16_224")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions; the fastest of each counts")
    args = parser.parse_args()
    from lightning_modules.zoo import build_model

    model = build_model(args.model)
    depth = len(model.net.blocks)
    layers = [f"blocks.{i}.norm1" for i in (0, 1, depth // 2)] + [f"blocks.{depth - 2}.norm2", "fc_norm" if hasattr(model.net, "fc_norm") and not isinstance(model.net.fc_norm, torch.nn.Identity) else "norm"]
    context = ScoringContext(batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        stimuli = _stimuli(Path(tmp), args.n)
        hw = input_hw(model) or (DEFAULT_INPUT_SIDE, DEFAULT_INPUT_SIDE)
        extract_features(model, [stimuli], layers[:1], context)  # warm-up
        plain_times, ours_times = [], []
        for _ in range(args.repeats):  # interleaved, so drifts of the machine hit both alike
            t0 = time.perf_counter()
            with preserved_state(model):
                for batch in image_batches(stimuli, hw, args.batch_size):
                    model(batch)
            plain_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            feats = extract_features(model, [stimuli], layers, context)
            ours_times.append(time.perf_counter() - t0)
    plain, ours = min(plain_times), min(ours_times)
    shapes = {k: tuple(v.shape) for k, v in feats[stimuli.key].items()}
    print(f"model {args.model}, {args.n} stimuli, layers {shapes}")
    print(f"plain forward: {plain:.2f} s   all-regions extraction: {ours:.2f} s   ratio: {ours / plain:.2f}x (target <= 1.25)"
          f"   [fastest of {args.repeats}; all plain {[round(t, 2) for t in plain_times]}, ours {[round(t, 2) for t in ours_times]}]")


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    main()

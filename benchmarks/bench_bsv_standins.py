"""The five public brainscore-vision benchmarks on stand-in data of the real sizes: neuroalign vs brainscore-vision.

Stand-ins (``tests/bsv_standins.py``, :data:`REAL_SIZES`: 3200 HVM images, 88 V4 / 168 IT neuroids,
135 FreemanZiemba images x 20 repetitions with 150 1-ms bins, 240 objectome images of 24 objects)
are registered in brainscore-vision's registries; one tiny network is then scored on each benchmark

* by neuroalign: :func:`callbacks.brainscore.engine.score_model` (the path of ``BrainScoreCallback``);
* by brainscore-vision itself: ``load_benchmark(id)(commitment)`` on a commitment of the same weights.

Prints both times per benchmark, their ratio, and the largest difference of raw, ceiling and ceiled
(target: within 0.005). Minutes on a laptop CPU; not part of the test suite.

Usage: ``RESULTCACHING_DISABLE=1 PYTHONPATH=. python benchmarks/bench_bsv_standins.py [--sizes real|test]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RESULTCACHING_DISABLE", "1")
os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")
os.environ.setdefault("NEUROALIGN_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402

from bsv_standins import PUBLIC_BENCHMARK_IDS, REAL_SIZES, TEST_SIZES, standins  # noqa: E402
from callbacks.brainscore.brainio_data import import_brainscore_vision  # noqa: E402
from callbacks.brainscore.engine import load_benchmark, score_benchmarks  # noqa: E402
from callbacks.brainscore.model_adapter import make_model_commitment  # noqa: E402
from callbacks.brainscore.types import ScoringContext  # noqa: E402
from lightning_modules.zoo import build_model  # noqa: E402

LAYERS = {"V1": "patch_embed", "V2": "patch_embed", "V4": "blocks.0.norm1", "IT": "blocks.0"}
READOUT = "blocks.0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", choices=("real", "test"), default="real")
    args = parser.parse_args()
    sizes = REAL_SIZES if args.sizes == "real" else TEST_SIZES
    model = build_model("cifar_vit", num_classes=24, depth=1, embed_dim=32, num_heads=2, mlp_dim=32, img_size=32).eval()
    brainscore_vision = import_brainscore_vision()
    worst = 0.0
    with tempfile.TemporaryDirectory() as root, standins(root, sizes):
        for identifier in PUBLIC_BENCHMARK_IDS:
            start = time.perf_counter()
            (ours,), _ = score_benchmarks(model, load_benchmark(identifier), LAYERS, READOUT, ScoringContext(model_identifier="bench"))
            t_ours = time.perf_counter() - start
            start = time.perf_counter()
            commitment = make_model_commitment(model, f"reference-{identifier}", LAYERS, READOUT)
            score = brainscore_vision.load_benchmark(identifier)(commitment)
            t_theirs = time.perf_counter() - start
            theirs = (float(np.mean(score.attrs["raw"])), float(np.mean(score.attrs["ceiling"])), float(np.mean(score)))
            diff = max(abs(a - b) for a, b in zip((ours.raw, ours.ceiling, ours.ceiled), theirs))
            worst = max(worst, diff)
            print(f"{identifier:34s} neuroalign {t_ours:7.1f} s  brainscore-vision {t_theirs:7.1f} s  "
                  f"ratio {t_theirs / t_ours:5.2f}  ceiled {ours.ceiled:.4f} vs {theirs[2]:.4f}  max |diff| {diff:.2e}")
    print(f"largest difference over raw, ceiling and ceiled: {worst:.2e} (target <= 0.005)")


if __name__ == "__main__":
    main()

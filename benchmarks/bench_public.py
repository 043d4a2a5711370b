"""Per-epoch Brain-Score on the five public benchmarks: ``engine: fast`` vs ``engine: brainscore-vision`` (target >= 20x).

Stand-ins of the real sizes (``tests/bsv_standins.py``, :data:`REAL_SIZES`: 3200 HVM images, 88 V4 / 168
IT neuroids; 135 FreemanZiemba images x 20 repetitions with 150 1-ms bins, 102 V1 / 103 V2 neuroids; 240
objectome images of 24 objects) are registered in brainscore-vision's registries, and brainscore-vision's
own factories load the five benchmarks. A small CNN (64-px input; V1 and V2 read a 16 x 32 x 32 = 16,384-value
layer, V4 a 32 x 16 x 16 = 8,192-value one, IT and the behavioural readout a 64 x 4 x 4 one) is scored as
``BrainScoreCallback`` scores it each epoch (:func:`callbacks.brainscore.engine.score_benchmarks`), once per
engine, each engine in its own process so that its peak RSS (``ru_maxrss``) is its own:

* epoch 1 includes computing the ceilings (brainscore-vision's own, in both engines);
* epoch 2 is what every later epoch costs: the fast engine keeps the ceilings in memory; for
  brainscore-vision's path the ceilings are kept too (its ``result_caching`` store would keep them on disk
  in a user's setup, and is off here because the stand-ins are rebuilt on every load).

Prints each engine's time per epoch and per benchmark, the ratios, the peak RSS of both and the largest
difference of raw, ceiling and ceiled between the engines (target <= 0.005). Several minutes: the
brainscore-vision path is the slow part. Not part of the test suite.

Usage: ``python benchmarks/bench_public.py [--threads 2] [--sizes real|test]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RESULTCACHING_DISABLE", "1")
os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")
os.environ.setdefault("NEUROALIGN_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

LAYERS = {"V1": "conv1", "V2": "conv1", "V4": "conv2", "IT": "pool"}
READOUT = "pool"


class SmallCNN(nn.Module):
    """Three strided convolutions and a pooled readout; [0,1] 64-px input."""

    input_size = (3, 64, 64)

    def __init__(self, classes: int = 24) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
        self.conv3 = nn.Sequential(nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Linear(64 * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.conv3(self.conv2(self.conv1(x)))).flatten(1))


def _keep_ceilings(benchmarks) -> None:
    """brainscore-vision's own path: keep each benchmark's ceiling after its first computation (see module doc)."""
    for bench in benchmarks:
        inner = bench.load()
        ceiling = inner.ceiling
        inner._ceiling = functools.partial(lambda identifier, value: value, value=ceiling)


def child(engine: str, sizes_name: str, root: str) -> None:
    """Score two epochs with one engine; print one JSON line."""
    from bsv_standins import PUBLIC_BENCHMARK_IDS, REAL_SIZES, TEST_SIZES, standins
    from callbacks.brainscore.engine import load_benchmarks, score_benchmarks
    from callbacks.brainscore.types import ScoringContext

    sizes = REAL_SIZES if sizes_name == "real" else TEST_SIZES
    model = SmallCNN().eval()
    out: dict = {"engine": engine, "epochs": [], "per_benchmark": [], "scores": {}}
    with standins(root, sizes):
        benchmarks = load_benchmarks(list(PUBLIC_BENCHMARK_IDS), engine=engine)
        for bench in benchmarks:
            bench.kind  # load the benchmarks (data) before timing, as the callback does at setup
        for epoch in range(2):
            if engine == "brainscore-vision" and epoch == 1:
                _keep_ceilings(benchmarks)
            start = time.perf_counter()
            times = {}
            scores = []
            if engine == "fast":  # one call: the shared feature pass is the point
                scores, failures = score_benchmarks(model, benchmarks, LAYERS, READOUT, ScoringContext(model_identifier=f"e{epoch}"))
            else:
                failures = {}
                for bench in benchmarks:
                    t0 = time.perf_counter()
                    got, failed = score_benchmarks(model, [bench], LAYERS, READOUT, ScoringContext(model_identifier=f"e{epoch}"))
                    times[bench.identifier] = time.perf_counter() - t0
                    scores += got
                    failures.update(failed)
            out["epochs"].append(time.perf_counter() - start)
            out["per_benchmark"].append(times)
            assert not failures, failures
            out["scores"] = {s.benchmark: [s.raw, s.ceiling, s.ceiled] for s in scores}
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print("RESULT " + json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", choices=("real", "test"), default="real")
    parser.add_argument("--child", choices=("fast", "brainscore-vision"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        child(args.child, args.sizes, args.root)
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    results = {}
    for engine in ("fast", "brainscore-vision"):
        with tempfile.TemporaryDirectory() as root:
            cmd = [sys.executable, __file__, "--child", engine, "--sizes", args.sizes, "--threads", str(args.threads), "--root", root]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode or not lines:
                sys.exit(f"{engine} failed:\n{proc.stderr[-3000:]}")
            results[engine] = json.loads(lines[-1][len("RESULT "):])
    fast, theirs = results["fast"], results["brainscore-vision"]
    print(f"five public benchmarks, {args.sizes} sizes, {args.threads} thread(s), SmallCNN")
    for epoch in range(2):
        a, b = fast["epochs"][epoch], theirs["epochs"][epoch]
        print(f"epoch {epoch + 1}: fast {a:7.1f} s   brainscore-vision {b:7.1f} s   ratio {b / a:6.1f}x")
    for identifier, seconds in theirs["per_benchmark"][1].items():
        print(f"  brainscore-vision epoch 2, {identifier:34s} {seconds:7.1f} s")
    print(f"peak RSS: fast {fast['peak_rss_gb']:.2f} GB   brainscore-vision {theirs['peak_rss_gb']:.2f} GB")
    worst = 0.0
    for identifier, mine in fast["scores"].items():
        other = theirs["scores"][identifier]
        diff = max(abs(x - y) for x, y in zip(mine, other))
        worst = max(worst, diff)
        print(f"  {identifier:34s} ceiled fast {mine[2]:.4f}  brainscore-vision {other[2]:.4f}  max |diff| {diff:.1e}")
    print(f"largest difference over raw, ceiling and ceiled: {worst:.1e} (target <= 0.005)")


if __name__ == "__main__":
    main()

"""Per-image cost of the quickstart's robust training step, for each sizing choice.

The main job must finish within 5 minutes on a slow 2-core CPU (AMD EPYC, AVX2, no AVX-512). This
times one FGSM-RS training step -- :func:`lightning_modules.robust.fgsm.fgsm_rs_step` then forward,
backward and Adam step, as ``RobustFinetuneModule`` does -- at 32 px for:

* reference: the first quickstart (torchvision ResNet-18, batch 64, contiguous memory);
* each choice alone: ResNet-10-T (timm), batch 128, channels-last;
* ours: all three together (``configs/quickstart.yaml``).

Repeats are interleaved (every variant once per round) and the fastest of each is kept (load only
adds time); medians are printed beside. The ratio is reference / ours per image.

Usage: ``python benchmarks/bench_quickstart_step.py [--repeats 6]`` (prints the CPU model first).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lightning_modules.robust.fgsm import fgsm_rs_step
from lightning_modules.zoo import ZooModel

EPS, ALPHA = 2 / 255, 2.5 / 255
VARIANTS = {  # name: (model, batch, channels_last)
    "reference resnet18 b64": ("resnet18", 64, False),
    "resnet10t b64": ("resnet10t", 64, False),
    "resnet18 b128 channels-last": ("resnet18", 128, True),
    "ours resnet10t b128 channels-last": ("resnet10t", 128, True),
}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def make(name: str, batch: int, channels_last: bool):
    torch.manual_seed(0)
    model = ZooModel(name, num_classes=10, input_size=32).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    x = torch.rand(batch, 3, 32, 32).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    return model, opt, x, y


def step(model, opt, x, y) -> None:
    x_adv = fgsm_rs_step(model, x, y, EPS, ALPHA).x_adv
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x_adv), y).backward()
    opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    setups = {name: make(*spec) for name, spec in VARIANTS.items()}
    for s in setups.values():  # warm-up (oneDNN primitive creation)
        step(*s)
        step(*s)
    times: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.repeats):
        for name, s in setups.items():
            start = time.perf_counter()
            step(*s)
            times[name].append((time.perf_counter() - start) / VARIANTS[name][1])
    best = {name: min(t) for name, t in times.items()}
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, 32 px, {args.repeats} interleaved repeats (per image)")
    ref = "reference resnet18 b64"
    for name in setups:
        print(f"  {name:34s} min {best[name] * 1e3:6.2f} ms/image  median {statistics.median(times[name]) * 1e3:6.2f}  {best[ref] / best[name]:.2f}x faster than reference")
    print(f"ratio reference/ours = {best[ref] / best['ours resnet10t b128 channels-last']:.2f}")


if __name__ == "__main__":
    main()

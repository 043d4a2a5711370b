"""Optimiser cost per generation at code size 4096 and lambda 40 (target: <= 5 %).

Times, on one device:

* ours: :class:`CholeskyCMAES` ``ask`` + ``tell`` (mean over generations 1.., including the rank-1
  A / A^-1 updates every 10 generations; the slowest such generation is printed too);
* model: DeePSim fc6 (random init) on the 40 codes, resize to 224, AlexNet (torchvision, random
  init, normalisation inside) forward, one logit as the score;
* pycma: full and diagonal (``CMA_diagonal``) CMA-ES ``ask`` + ``tell`` on the same problem.

A generation = model + ours; the script prints every time and the ratios.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_cmaes.py [--dim 4096] [--generations 20]
[--model-generations 3] [--pycma-generations 5] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lightning_modules.evolution import CholeskyCMAES, DeepSimGenerator, PyCMA
from lightning_modules.zoo import build_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ask_tell(es, generations: int, device: torch.device) -> list[float]:
    """Seconds of ``ask`` + ``tell`` for each generation after the first."""
    times = []
    codes = es.ask()
    es.tell(codes, -(codes**2).sum(-1))
    for _ in range(generations):
        _sync(device)
        start = time.perf_counter()
        codes = es.ask()
        _sync(device)
        ask = time.perf_counter() - start
        scores = -(codes**2).sum(-1)  # stands for the model, not timed
        _sync(device)
        start = time.perf_counter()
        es.tell(codes, scores)
        _sync(device)
        times.append(ask + time.perf_counter() - start)
    return times


def time_model(generations: int, dim: int, population: int, device: torch.device) -> list[float]:
    """Seconds of generator + resize + AlexNet on ``population`` codes per generation."""
    generator = DeepSimGenerator(pretrained=False).to(device)
    model = build_model("alexnet", pretrained=False).to(device).eval()
    codes = 3.0 * torch.randn(population, dim, device=device)
    times = []
    with torch.inference_mode():
        for _ in range(generations + 1):  # the first one warms up
            _sync(device)
            start = time.perf_counter()
            images = F.interpolate(generator(codes), size=(224, 224), mode="bilinear", align_corners=False)
            model(images)[:, 0].float().cpu()
            _sync(device)
            times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--generations", type=int, default=20, help="timed generations of CholeskyCMAES")
    parser.add_argument("--model-generations", type=int, default=3)
    parser.add_argument("--pycma-generations", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, dim {args.dim}")

    ours = CholeskyCMAES(args.dim, seed=0, device=device)
    lam = ours.population_size
    ours_times = time_ask_tell(ours, args.generations, device)
    ours_mean = statistics.mean(ours_times)
    print(f"CholeskyCMAES ask+tell: {ours_mean * 1e3:.1f} ms per generation (lambda {lam}, {args.generations} generations; "
          f"slowest {max(ours_times) * 1e3:.1f} ms)")

    model_times = time_model(args.model_generations, args.dim, lam, device)
    model_mean = statistics.median(model_times)
    generation = model_mean + ours_mean
    print(f"DeePSim fc6 + AlexNet on {lam} codes: {model_mean:.3f} s per generation (median of {len(model_times)})")
    print(f"optimiser share of a generation: {100 * ours_mean / generation:.2f} % (target <= 5 %)")

    for label, diagonal, gens in (("full", False, args.pycma_generations), ("diagonal", True, args.generations)):
        es = PyCMA(args.dim, population_size=lam, seed=0, diagonal=diagonal, device=device)
        t = statistics.mean(time_ask_tell(es, gens, device))
        print(f"pycma {label} ask+tell: {t * 1e3:.1f} ms per generation ({gens} generations); "
              f"{t / ours_mean:.2f}x ours, {100 * t / (model_mean + t):.1f} % of its generation")


if __name__ == "__main__":
    main()

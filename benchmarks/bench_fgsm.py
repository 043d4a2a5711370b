"""Cost of one FGSM-RS training step relative to a clean step (target: <= 1.8x).

Three step kinds on one small ViT (timm ``vit_tiny_patch16_224``, random init, at 112 px by default so
that many short repeats fit in a minute on a busy 2-core CPU) and one batch, timed
interleaved (clean, ours, reference, clean, ...) so machine load hits all three alike; the ratios use
the fastest repeat of each kind (load only adds time), medians are printed beside them:

* clean: forward, backward, Adam step;
* ours: :func:`lightning_modules.robust.fgsm.fgsm_rs_step` (gradient w.r.t. the input only), then a clean
  step on the adversarial batch;
* reference style: the attack backward also fills the parameter gradients (``loss.backward()`` with
  the perturbation as a leaf), which are then zeroed before the training step.

Usage: ``OMP_NUM_THREADS=2 python benchmarks/bench_fgsm.py [--model vit_tiny_patch16_224]
[--image-size 112] [--batch 16] [--repeats 15]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
import torch.nn.functional as F

from lightning_modules.robust.fgsm import fgsm_rs_step

EPS, ALPHA = 2 / 255, 2.5 / 255


def clean_step(model, opt, x, y) -> None:
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()


def ours_step(model, opt, x, y) -> None:
    clean_step(model, opt, fgsm_rs_step(model, x, y, EPS, ALPHA).x_adv, y)


def reference_step(model, opt, x, y) -> None:
    delta = torch.empty_like(x).uniform_(-EPS, EPS).requires_grad_(True)
    F.cross_entropy(model(torch.clamp(x + delta, 0, 1)), y).backward()  # also into the parameters
    delta = torch.clamp(delta.detach() + ALPHA * delta.grad.sign(), -EPS, EPS)
    opt.zero_grad(set_to_none=True)
    clean_step(model, opt, torch.clamp(x + delta, 0, 1), y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_tiny_patch16_224")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False, img_size=args.image_size, num_classes=10).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, weight_decay=1e-4)
    x = torch.rand(args.batch, 3, args.image_size, args.image_size)
    y = torch.randint(0, 10, (args.batch,))
    steps = {"clean": clean_step, "ours (input-only grad)": ours_step, "reference (param grads)": reference_step}
    for fn in steps.values():  # warm-up
        fn(model, opt, x, y)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, fn in steps.items():
            start = time.perf_counter()
            fn(model, opt, x, y)
            times[name].append(time.perf_counter() - start)
    # the fastest repeat is the least disturbed by other processes (load only ever adds time)
    best = {name: min(t) for name, t in times.items()}
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.model} img {args.image_size} batch {args.batch}, {torch.get_num_threads()} threads, {args.repeats} repeats")
    for name in steps:
        print(
            f"  {name:26s} min {best[name] * 1000:8.1f} ms  {best[name] / best['clean']:.2f}x clean"
            f"   | median {med[name] * 1000:8.1f} ms  {med[name] / med['clean']:.2f}x"
        )
    ours, ref = "ours (input-only grad)", "reference (param grads)"
    print(f"ratio ours/clean = {best[ours] / best['clean']:.2f} (target <= 1.8; median {med[ours] / med['clean']:.2f})")
    print(f"ratio reference/clean = {best[ref] / best['clean']:.2f} (median {med[ref] / med['clean']:.2f})")

if __name__ == "__main__":
    main()

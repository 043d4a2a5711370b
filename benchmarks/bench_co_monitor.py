"""Overhead of :class:`~callbacks.catastrophic_overfitting.CatastrophicOverfittingMonitor` on the quickstart.

The quickstart's model and data (``configs/quickstart.yaml``: timm ResNet-10-T at 32 px, channels-last,
batch 128 of the built-in shapes, FGSM-RS at eps 2/255, alpha 2.5/255). Timed interleaved so machine
load hits both alike, fastest repeat of each (load only adds time; medians printed beside):

* one FGSM-RS training step (attack, forward, backward, Adam step);
* one monitor check (FGSM-RS + PGD-10 on the default 256 training images, in eval mode), the real
  :meth:`~callbacks.catastrophic_overfitting.CatastrophicOverfittingMonitor.measure`.

Overhead at period ``k`` = check / (k x step); the target is <= 5 % at the default ``k`` = 200.

Usage: ``OMP_NUM_THREADS=2 python benchmarks/bench_co_monitor.py [--repeats 5] [--every-n-steps 200]``
(about a minute on a busy 2-core CPU).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from callbacks.catastrophic_overfitting import CatastrophicOverfittingMonitor
from datamodules import ShapesDataModule
from lightning_modules import RobustFinetuneModule, ZooModel
from lightning_modules.robust.subsets import seeded_subset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--every-n-steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)

    data = ShapesDataModule(num_classes=10, num_train=1024, num_val=16, batch_size=args.batch, num_workers=0)
    data.setup("fit")
    loader = data.train_dataloader()
    module = RobustFinetuneModule(ZooModel(name="resnet10t", num_classes=10, input_size=32), channels_last=True, val_pgd_steps=0)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3, weight_decay=1e-4)
    monitor = CatastrophicOverfittingMonitor()  # the defaults: every 200 steps, 256 images, PGD-10 at eps/4
    monitor._subset = seeded_subset(loader, monitor.n_samples, monitor.seed)
    x, y = next(iter(loader))
    x = module.images((x, y))
    module.train()

    def train_step() -> None:
        x_adv = module.perturb(x, y).x_adv
        optimizer.zero_grad(set_to_none=True)
        module.compute_loss(module(x_adv), y).backward()
        optimizer.step()

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    train_step(), monitor.measure(module)  # warm-up
    steps, checks = [], []
    for _ in range(args.repeats):
        steps.append(timed(train_step))
        checks.append(timed(lambda: monitor.measure(module)))
    step, check = min(steps), min(checks)
    overhead = check / (args.every_n_steps * step)
    print(f"training step: {step * 1e3:.0f} ms (median {statistics.median(steps) * 1e3:.0f}), batch {args.batch}")
    print(f"monitor check: {check * 1e3:.0f} ms (median {statistics.median(checks) * 1e3:.0f}), {monitor.n_samples} images, PGD-{monitor.pgd_steps}")
    print(f"overhead at every_n_steps={args.every_n_steps}: {100 * overhead:.2f} % of training time (target <= 5 %)")


if __name__ == "__main__":
    main()

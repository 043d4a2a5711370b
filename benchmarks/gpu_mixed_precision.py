"""The GPU check of FGSM-RS under mixed precision: non-finite attack gradients and the step-time ratio to a clean step.

A few training steps of :class:`~lightning_modules.robust.module.RobustFinetuneModule` through a Lightning
``Trainer`` on a small timm ViT (``vit_tiny_patch16_224``, random init: nothing to download), once per
precision (default ``16-mixed`` and ``bf16-mixed``), each with FGSM-RS (eps 2/255, alpha 2.5/255, the
seed-000 step) and clean. For each precision it prints

* the number of samples whose attack gradient had inf/NaN entries (the module's ``train/attack_nonfinite``,
  summed over the steps; under ``16-mixed`` the attack loss is scaled by ``attack_loss_scale`` first);
* whether the training loss stayed finite;
* the median FGSM-RS step time, the median clean step time and their ratio (the first ``--warmup`` steps
  of each run are left out; CUDA is synchronised around each step).

Usage (on a machine with a GPU; about a minute): ``python benchmarks/gpu_mixed_precision.py
[--steps 30] [--batch 64] [--precisions 16-mixed bf16-mixed]``. On a CPU only ``bf16-mixed`` and
``32-true`` run (Lightning has no CPU ``16-mixed``): ``python benchmarks/gpu_mixed_precision.py --device cpu
--precisions bf16-mixed --steps 3 --warmup 1 --batch 4 --image-size 64`` is a smoke test of the script.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules import RobustFinetuneModule, ZooModel


class StepTimer(L.Callback):
    """Wall time of every training step (forward, attack, backward, optimiser), CUDA synchronised."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    @staticmethod
    def _sync(pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._sync(pl_module)
        self.times.append(time.perf_counter() - self._start)


def run(args: argparse.Namespace, precision: str, adversarial: bool) -> tuple[list[float], float, float]:
    """(step times, non-finite attack samples, final training loss) of one short fit."""
    L.seed_everything(0, verbose=False)
    model = ZooModel(args.model, num_classes=10, input_size=args.image_size, model_kwargs={"img_size": args.image_size})
    module = RobustFinetuneModule(
        model, adversarial=adversarial, eps="2/255", alpha="2.5/255", val_pgd_steps=0,
        optimizer=lambda p: torch.optim.Adam(p, lr=1e-4),
    )
    n = args.batch * args.steps
    data = TensorDataset(torch.rand(n, 3, args.image_size, args.image_size), torch.randint(0, 10, (n,)))
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator=args.device, devices=1, precision=precision, max_steps=args.steps, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, callbacks=[timer],
    )
    trainer.fit(module, DataLoader(data, batch_size=args.batch, shuffle=True))
    metrics = trainer.callback_metrics
    nonfinite = float(metrics["train/attack_nonfinite"]) if adversarial else 0.0
    return timer.times[args.warmup:], nonfinite, float(metrics["train/loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--precisions", nargs="+", default=["16-mixed", "bf16-mixed"])
    parser.add_argument("--model", default="vit_tiny_patch16_224")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; use --device cpu (bf16-mixed / 32-true) for a smoke run")
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    where = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    print(f"{args.model} at {args.image_size} px, batch {args.batch}, {args.steps} steps ({args.warmup} warm-up) on {where}")
    for precision in args.precisions:
        adv_times, nonfinite, adv_loss = run(args, precision, adversarial=True)
        clean_times, _, clean_loss = run(args, precision, adversarial=False)
        adv, clean = statistics.median(adv_times), statistics.median(clean_times)
        finite = math.isfinite(adv_loss) and math.isfinite(clean_loss)
        print(
            f"{precision:>11}: non-finite attack gradients {nonfinite:.0f} of {args.batch * args.steps} samples; "
            f"losses finite: {finite}; FGSM-RS step {adv * 1e3:.1f} ms, clean step {clean * 1e3:.1f} ms, "
            f"ratio {adv / clean:.2f}x"
        )


if __name__ == "__main__":
    main()

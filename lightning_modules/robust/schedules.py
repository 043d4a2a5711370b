"""The seed-000 learning-rate schedule: one warm-up epoch, then halving every epoch (docs/recipes.md section 1).

With N iterations per epoch, epoch k (from 0) and t = i / N inside it:

* epoch 0: ``lr = warmup_start + (peak - warmup_start) * t`` (8e-5 -> 2e-4 by default);
* epoch k >= 1: ``lr = peak * 2**-(k-1) * (1 - t/2)`` (2e-4 -> 1e-4 -> 5e-5 -> ..., linear inside).

:class:`WarmupHalvingLR` sets this value every optimiser step. ``neuroalign plot-schedule`` draws it
(the seed's Fig. 2). Other schedules (cosine, multistep) are plain torch schedulers chosen in the config.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from neuroalign.core.errors import ConfigError
from neuroalign.core.figures import save_figure
from neuroalign.core.output_paths import output_dir, writing

__all__ = ["warmup_halving_lr", "WarmupHalvingLR", "plot_schedule"]


def warmup_halving_lr(step: int, iterations_per_epoch: int, warmup_start: float = 8e-5, peak: float = 2e-4) -> float:
    """Learning rate after ``step`` optimiser steps (the formula of docs/recipes.md section 1).

    Args:
        step: global iteration index from 0.
        iterations_per_epoch: N, optimiser steps per epoch.
        warmup_start: learning rate at the first iteration.
        peak: learning rate reached at the end of epoch 0 (start of epoch 1).
    """
    epoch, i = divmod(step, iterations_per_epoch)
    t = i / iterations_per_epoch
    if epoch == 0:
        return warmup_start + (peak - warmup_start) * t
    return peak * 2.0 ** -(epoch - 1) * (1.0 - t / 2.0)


class WarmupHalvingLR(LRScheduler):
    """Per-iteration warm-up then per-epoch halving with linear decay inside each epoch.

    Call :meth:`step` after every optimiser step (Lightning: ``interval: "step"``, which
    :class:`~lightning_modules.robust.module.RobustFinetuneModule` selects automatically). Every
    parameter group gets the same value. The state (iteration count, N, warm-up start, peak) is saved
    by ``state_dict``, so a run resumed mid-epoch continues on the same curve.

    Args:
        optimizer: the wrapped optimiser.
        iterations_per_epoch: N, optimiser steps per epoch. May be ``None`` when the scheduler is
            built by LightningCLI before the data is known (an ``LRSchedulerCallable`` only receives the
            optimiser): ``RobustFinetuneModule`` then fills it from the trainer
            (``ceil(num_training_batches / accumulate_grad_batches)``) before the first step; elsewhere
            set ``scheduler.iterations_per_epoch`` yourself. The value at iteration 0 (``warmup_start``)
            does not depend on N.
        warmup_start: learning rate at the first iteration (8e-5 in the seed).
        peak: learning rate at the end of the warm-up epoch (2e-4 in the seed).
        last_epoch: index of the last iteration (-1 to start fresh), as in torch schedulers.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        iterations_per_epoch: int | None = None,
        warmup_start: float = 8e-5,
        peak: float = 2e-4,
        last_epoch: int = -1,
    ) -> None:
        if iterations_per_epoch is not None and iterations_per_epoch < 1:
            raise ConfigError(
                f"iterations_per_epoch {iterations_per_epoch!r} must be >= 1 (`scheduler.init_args.iterations_per_epoch`)"
            )
        for key, value in (("warmup_start", warmup_start), ("peak", peak)):
            if not (value >= 0.0 and math.isfinite(value)):
                raise ConfigError(f"{key} {value!r} must be a finite learning rate >= 0 (`scheduler.init_args.{key}`)")
        self.iterations_per_epoch = iterations_per_epoch
        self.warmup_start = float(warmup_start)
        self.peak = float(peak)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> float:
        """The schedule's value at iteration ``step`` (requires ``iterations_per_epoch`` unless step is 0)."""
        if self.iterations_per_epoch is None:
            if step == 0:
                return self.warmup_start
            raise ConfigError(
                "WarmupHalvingLR.iterations_per_epoch is unset (`scheduler.init_args.iterations_per_epoch`); "
                "set it, or let RobustFinetuneModule fill it from the trainer"
            )
        return warmup_halving_lr(step, self.iterations_per_epoch, self.warmup_start, self.peak)

    def get_lr(self) -> list[float]:  # noqa: D102 (torch API)
        value = self.lr_at(self.last_epoch)
        return [value for _ in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()


def plot_schedule(
    iterations_per_epoch: int = 20019,
    epochs: int = 6,
    warmup_start: float = 8e-5,
    peak: float = 2e-4,
    output: str = "lr_schedule.png",
) -> str:
    """Write the learning-rate schedule plot (seed 000, Fig. 2) as a PNG and its values as a CSV.

    Args:
        iterations_per_epoch: optimiser steps per epoch (ImageNet at batch 64: 20019).
        epochs: number of epochs drawn.
        warmup_start: learning rate at the first iteration.
        peak: learning rate at the end of the warm-up epoch.
        output: PNG path; the CSV (columns ``iteration, epoch, lr``) goes next to it with suffix ``.csv``.

    Returns:
        One line per file written, ``wrote <path>`` (the PNG, then the CSV); ``neuroalign plot-schedule``
        prints it. An unwritable ``output`` is a one-line error naming the path and ``--output``.
    """
    if iterations_per_epoch < 1:
        raise ConfigError(f"iterations_per_epoch {iterations_per_epoch!r} must be >= 1 (`--iterations_per_epoch`)")
    if epochs < 1:
        raise ConfigError(f"epochs {epochs!r} must be >= 1 (`--epochs`)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    total = iterations_per_epoch * epochs
    stride = max(1, total // 5000)  # at most ~5000 points, plus every epoch boundary
    boundaries = {k * iterations_per_epoch + d for k in range(epochs) for d in (0, iterations_per_epoch - 1)}
    steps = sorted(set(range(0, total, stride)) | boundaries)
    lrs = [warmup_halving_lr(s, iterations_per_epoch, warmup_start, peak) for s in steps]

    png = Path(output)
    table = png.with_suffix(".csv")
    with writing(png, "--output"):
        output_dir(png.parent, "--output")
        with open(table, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["iteration", "epoch", "lr"])
            writer.writerows([s, s / iterations_per_epoch, lr] for s, lr in zip(steps, lrs))

        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([s / iterations_per_epoch for s in steps], lrs, lw=1.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        ax.set_title(f"Warm-up / halving schedule ({iterations_per_epoch} iterations per epoch)")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        ax.grid(alpha=0.3)
        save_figure(fig, png, dpi=150)
    return f"wrote {png}\nwrote {table}"

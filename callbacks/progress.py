"""``NeuroAlignProgressBar``: Lightning's tqdm bars on a terminal, a few plain lines in a log.

``neuroalign fit`` adds it when the trainer has no progress bar of its own and
``trainer.enable_progress_bar`` is not false. On a terminal it is Lightning's
:class:`~lightning.pytorch.callbacks.TQDMProgressBar`. Where standard output is not a terminal (CI,
``neuroalign fit ... > log 2>&1``) the bars are off and it prints one line per training epoch with
the progress-bar metrics (``train/loss``, ``val/acc``, ``val/robust_acc``, ...) and the epoch's
seconds, plus one line every ``every_n_steps`` steps inside an epoch when set -- the evolution sets
it through its ``progress_every_n_steps`` attribute, so its log shows the best score of every unit
every few generations.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import TQDMProgressBar

from neuroalign.core.progress import is_terminal

__all__ = ["NeuroAlignProgressBar"]


class NeuroAlignProgressBar(TQDMProgressBar):
    """tqdm bars on a terminal; one line per epoch (and every ``every_n_steps`` steps) elsewhere.

    Args:
        refresh_rate: tqdm refresh rate in batches (terminal only).
        leave: keep finished epoch bars on screen (terminal only).
        every_n_steps: off a terminal, also print a line every this many training steps; default
            the LightningModule's ``progress_every_n_steps`` attribute, else only per epoch.
        terminal: force the terminal (``True``) or line (``False``) mode; default: standard output decides.
    """

    def __init__(self, refresh_rate: int = 1, leave: bool = False, every_n_steps: int | None = None, terminal: bool | None = None) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave)
        self.every_n_steps = every_n_steps
        self.terminal = terminal
        self._epoch_start = time.perf_counter()

    @property
    def line_mode(self) -> bool:
        """Whether plain lines are printed instead of bars."""
        return not (is_terminal(sys.stdout) if self.terminal is None else self.terminal)  # Lightning's bars go to stdout

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self.line_mode:
            self.disable()

    def _line(self, trainer: Trainer, pl_module: LightningModule, head: str) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        parts = [f"{k}={_fmt(v)}" for k, v in metrics.items()]
        print(" ".join([head, *parts]), flush=True)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        super().on_train_epoch_start(trainer, pl_module)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        every = self.every_n_steps or getattr(pl_module, "progress_every_n_steps", None)
        if self.line_mode and every and (batch_idx + 1) % every == 0:
            total = self.total_train_batches
            of = f"/{int(total)}" if isinstance(total, (int, float)) and math.isfinite(total) else ""
            self._line(trainer, pl_module, f"step {batch_idx + 1}{of} [{time.perf_counter() - self._epoch_start:.0f} s]")

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.line_mode:
            epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
            self._line(trainer, pl_module, f"epoch {trainer.current_epoch + 1}{epochs} [{time.perf_counter() - self._epoch_start:.0f} s]")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if self.line_mode and trainer.state.fn == "validate":
            self._line(trainer, pl_module, "validate")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_test_end(trainer, pl_module)
        if self.line_mode:
            self._line(trainer, pl_module, "test")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

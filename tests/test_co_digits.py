"""Catastrophic overfitting for real, on sklearn's digits, through RobustFinetuneModule and a Trainer.

A two-layer MLP trained with FGSM-RS at eps 0.25 (alpha 1.25 eps, Adam lr 3e-4, batch 128) first gains
PGD accuracy, then loses it within a few dozen steps while its FGSM accuracy keeps rising: catastrophic
overfitting. The plain digits do not collapse this quickly at small-test sizes (plain FGSM-RS at such
eps is either never robust or stays robust), so the images carry a class-dependent pattern of
L-infinity norm beta = 0.22 < eps, the documented way to induce catastrophic overfitting of FGSM with
discriminative non-robust features (Ortiz-Jimenez et al. 2023,
:func:`digits_data.with_class_patterns`). On the same data N-FGSM (de Jorge et al. 2022) keeps its
PGD accuracy. The assertions are qualitative, with margins, so that another CPU's float trajectory
passes too (seeds 0-2 on one CPU, monitor subset of 512: best PGD accuracy 0.16-0.22 at steps 80-100,
first detection at steps 140-200, PGD accuracy 0.02-0.05 at step 400 with FGSM accuracy 0.88; N-FGSM
0.31-0.32 at step 300, no detection).
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from callbacks import CatastrophicOverfittingMonitor
from lightning_modules.robust.module import RobustFinetuneModule
from lightning_modules.robust.strategies import NFGSM, PerturbStrategy
from digits_data import digits, mlp, with_class_patterns

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # two threads: 3-5x slower here

EPS, BETA, EVERY, SEED = 0.25, 0.22, 20, 0


class MeasureAfterEvent(L.Callback):
    """Runs after the monitor: the monitor's own measurement at the step of each event (after its action)."""

    def __init__(self, monitor: CatastrophicOverfittingMonitor) -> None:
        self.monitor = monitor
        self.after: dict[int, tuple[float, float]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.monitor.events and self.monitor.events[-1].step == trainer.global_step:
            self.after[trainer.global_step] = self.monitor.measure(pl_module)


def train(
    perturb: PerturbStrategy | None, action: str, steps: int
) -> tuple[CatastrophicOverfittingMonitor, MeasureAfterEvent]:
    """``steps`` optimiser steps on the patterned digits (seed ``SEED``) under the monitor with ``action``."""
    x, y = digits()
    x = with_class_patterns(x, y, BETA)
    module = RobustFinetuneModule(
        mlp(width=256, seed=SEED), perturb=perturb, eps=EPS, alpha=1.25 * EPS, val_pgd_steps=0,
        optimizer=lambda p: torch.optim.Adam(p, lr=3e-4),
    )
    monitor = CatastrophicOverfittingMonitor(
        every_n_steps=EVERY, n_samples=512, pgd_steps=10, fgsm_tolerance=0.1, action=action, alpha_factor=0.5
    )
    after = MeasureAfterEvent(monitor)
    L.seed_everything(SEED)
    trainer = L.Trainer(
        max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, callbacks=[monitor, after],
    )
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True))
    return monitor, after


@pytest.fixture(scope="module")
def fgsm_rs_run(one_thread) -> CatastrophicOverfittingMonitor:
    return train(None, "warn", 400)[0]


def test_fgsm_rs_collapses_and_the_monitor_detects_it_in_time(fgsm_rs_run):
    history = fgsm_rs_run.history
    pgd, fgsm = [h["pgd_acc"] for h in history], [h["fgsm_acc"] for h in history]
    best = max(pgd)
    assert best >= 0.12  # it became robust first ...
    assert pgd[-1] <= 0.07 and pgd[-1] <= 0.4 * best  # ... then lost it ...
    assert fgsm[-1] >= 0.75 and fgsm[-1] >= fgsm[pgd.index(best)]  # ... while FGSM accuracy rose
    events = fgsm_rs_run.events
    assert events, "the collapse was not detected"
    first = events[0].step
    best_step = history[pgd.index(best)]["step"]
    collapsed = next(int(h["step"]) for h in history if h["pgd_acc"] <= 0.05 and h["step"] > best_step)
    assert first <= collapsed  # declared no later than PGD accuracy reached ~0
    assert first <= 260  # a bounded number of steps into the run
    assert events[0].pgd_acc < 0.5 * events[0].best_pgd_acc


def test_rollback_restores_the_pre_collapse_pgd_accuracy_and_lowers_alpha(fgsm_rs_run):
    first = fgsm_rs_run.events[0]
    monitor, after = train(None, "rollback", first.step)  # the same trajectory up to the detection
    event = monitor.events[0]
    assert (event.step, event.action) == (first.step, "rollback")
    assert event.alpha == pytest.approx(0.5 * 1.25 * EPS)
    _, pgd_after = after.after[event.step]
    assert pgd_after >= 0.9 * event.best_pgd_acc  # the best-PGD weights are back
    assert pgd_after >= event.pgd_acc + 0.05


def test_n_fgsm_at_the_same_eps_keeps_its_pgd_accuracy(fgsm_rs_run):
    monitor, _ = train(NFGSM(), "warn", 300)
    pgd = [h["pgd_acc"] for h in monitor.history]
    assert not monitor.events
    assert pgd[-1] >= 0.15 and max(pgd[-3:]) >= 2 * fgsm_rs_run.history[-1]["pgd_acc"] + 0.05

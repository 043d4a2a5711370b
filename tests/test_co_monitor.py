"""CatastrophicOverfittingMonitor on sklearn's digits: logged keys at their steps, no effect on training,
the detection rule, what warn / stop / rollback / max_rollbacks do; and the shapes demo config, shortened."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from callbacks import CatastrophicOverfittingMonitor
from lightning_modules.robust.module import RobustFinetuneModule
from neuroalign.cli import main
from neuroalign.core.errors import ConfigError
from digits_data import digits, mlp

EPS = 16 / 255


def module(seed: int = 0) -> RobustFinetuneModule:
    return RobustFinetuneModule(
        mlp(width=64, seed=seed), eps=EPS, alpha=1.25 * EPS, val_pgd_steps=0, optimizer=lambda p: torch.optim.Adam(p, lr=1e-2)
    )


def fit(pl_module, tmp_path, callbacks, steps: int = 20) -> tuple[L.Trainer, pd.DataFrame]:
    x, y = digits()
    L.seed_everything(0)
    trainer = L.Trainer(
        max_steps=steps, logger=CSVLogger(tmp_path, name="run"), enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, log_every_n_steps=7, callbacks=callbacks, limit_val_batches=0,
    )
    trainer.fit(pl_module, DataLoader(TensorDataset(x[:640], y[:640]), batch_size=64, shuffle=True))
    return trainer, pd.read_csv(f"{trainer.logger.log_dir}/metrics.csv")


def test_logs_fgsm_pgd_and_gap_every_n_steps_without_changing_training(tmp_path):
    plain = module()
    fit(plain, tmp_path / "plain", [])
    watched = module()
    monitor = CatastrophicOverfittingMonitor(every_n_steps=5, n_samples=64, pgd_steps=3, plot=False)
    trainer, metrics = fit(watched, tmp_path / "watched", [monitor])
    assert not (Path(trainer.log_dir) / "co_monitor.png").exists()  # plot=False

    rows = metrics.dropna(subset=["train/pgd_acc"])
    assert list(rows["step"]) == [5, 10, 15, 20]  # every 5 optimiser steps, whatever log_every_n_steps is
    assert rows["train/fgsm_acc"].between(0, 1).all() and rows["train/pgd_acc"].between(0, 1).all()
    assert (rows["train/co_gap"] - (rows["train/fgsm_acc"] - rows["train/pgd_acc"])).abs().max() < 1e-6
    assert rows["train/fgsm_acc"].iloc[-1] > 0.3  # the net learns: the measurement is not constant
    assert monitor._subset[0].shape == (64, 1, 8, 8)
    # the subset, the attacks and eval mode do not touch the training run's random state or weights
    for a, b in zip(plain.parameters(), watched.parameters()):
        torch.testing.assert_close(a, b)


class Scripted(CatastrophicOverfittingMonitor):
    """The real monitor with a scripted measurement (fgsm_acc, pgd_acc) per check."""

    def __init__(self, script, **kwargs) -> None:
        super().__init__(every_n_steps=5, n_samples=8, **kwargs)
        self.script = list(script)

    def measure(self, pl_module):
        return self.script.pop(0)


class Weights(L.Callback):
    """Keeps a copy of the weights and Adam's step count at every 5th step (runs before the monitor)."""

    def __init__(self) -> None:
        self.at: dict[int, tuple[list[torch.Tensor], float]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        state = trainer.optimizers[0].state_dict()["state"]
        self.at[trainer.global_step] = ([p.detach().clone() for p in pl_module.parameters()], float(state[0]["step"]))


COLLAPSE = [(0.5, 0.40), (0.6, 0.45), (0.7, 0.10), (0.7, 0.40)]  # PGD < 0.5 x best at step 15 while FGSM rose


def test_the_rule_pgd_below_a_fraction_of_its_best_while_fgsm_does_not_fall():
    monitor = CatastrophicOverfittingMonitor()
    monitor.best_pgd_acc, monitor.fgsm_at_best = 0.45, 0.6
    assert monitor.collapsed(0.7, 0.10)
    assert not monitor.collapsed(0.7, 0.30)  # PGD above half its best
    assert not monitor.collapsed(0.3, 0.10)  # FGSM fell too: the net got worse, not overfitted to FGSM
    monitor.best_pgd_acc = 0.01
    assert not monitor.collapsed(0.7, 0.0)  # never robust: nothing to lose
    with pytest.raises(ConfigError, match="action"):
        CatastrophicOverfittingMonitor(action="explode")


def test_rollback_restores_the_best_pgd_weights_and_optimiser_and_lowers_alpha(tmp_path, caplog):
    pl_module = module()
    weights, monitor = Weights(), Scripted(COLLAPSE, action="rollback", alpha_factor=0.5)
    with caplog.at_level("WARNING"):
        trainer, metrics = fit(pl_module, tmp_path, [weights, monitor])

    assert [(e.step, e.action) for e in monitor.events] == [(15, "rollback")]
    assert "catastrophic overfitting at step 15" in caplog.text
    assert pl_module.alpha == pytest.approx(0.5 * 1.25 * EPS)
    # at step 15 the weights went back to those of step 10 (the best-PGD check) ...
    good, good_steps = weights.at[10]
    collapsed, _ = weights.at[15]
    assert any(not torch.equal(a, b) for a, b in zip(good, collapsed))
    restored = trainer.optimizers[0].state_dict()["state"][0]["step"]
    assert float(restored) == good_steps + 5  # Adam's state went back to step 10, then 5 more steps ran
    events = metrics.dropna(subset=["train/co_event"])
    assert list(events["step"]) == [15]
    assert metrics.dropna(subset=["train/attack_alpha"])["train/attack_alpha"].iloc[0] == pytest.approx(0.5 * 1.25 * EPS)
    assert trainer.global_step == 20  # training went on

    state = monitor.state_dict()
    fresh = CatastrophicOverfittingMonitor()
    fresh.load_state_dict(state)
    assert fresh.events == monitor.events and fresh.best_pgd_acc == monitor.best_pgd_acc == 0.45
    assert fresh._restored_alpha == pytest.approx(0.5 * 1.25 * EPS)


SLIDE = [(0.5, 0.40), (0.6, 0.45), (0.6, 0.30), (0.7, 0.10)]  # PGD slides over two checks: best at 10, detected at 20


@pytest.mark.parametrize("script", [COLLAPSE[:3], SLIDE], ids=["collapse", "slide"])
def test_rollback_weights_are_the_best_pgd_weights_of_step_10(tmp_path, script):
    pl_module = module()
    snapshots: dict[int, list[torch.Tensor]] = {}

    class AfterMonitor(L.Callback):
        def on_train_batch_end(self, trainer, module_, outputs, batch, batch_idx):
            snapshots[trainer.global_step] = [p.detach().clone() for p in module_.parameters()]

    weights = Weights()
    monitor = Scripted(script, action="rollback")
    last = 5 * len(script)
    fit(pl_module, tmp_path, [weights, monitor, AfterMonitor()], steps=last)
    assert [e.step for e in monitor.events] == [last]
    for a, b in zip(weights.at[10][0], snapshots[last]):
        torch.testing.assert_close(a, b)
    if last > 15:  # not the last check before the detection (step 15, PGD 0.30 >= half the best)
        assert any(not torch.equal(a, b) for a, b in zip(weights.at[15][0], snapshots[last]))


@pytest.mark.parametrize("action, last_step", [("warn", 20), ("stop", 15)])
def test_warn_goes_on_and_stop_stops_at_the_detection(tmp_path, action, last_step):
    monitor = Scripted(COLLAPSE, action=action)
    trainer, _ = fit(module(), tmp_path, [monitor])
    assert [(e.step, e.action) for e in monitor.events] == [(15, action)]
    assert trainer.global_step == last_step


def test_after_max_rollbacks_a_detection_restores_the_best_state_and_stops(tmp_path):
    # best at step 10; collapses at 15 and 25 are rolled back (alpha halved twice), the one at 35 stops
    script = [(0.5, 0.40), (0.6, 0.45), (0.7, 0.10), (0.6, 0.40), (0.7, 0.05), (0.6, 0.30), (0.7, 0.02), (0.7, 0.40)]
    pl_module, weights = module(), Weights()
    monitor = Scripted(script, action="rollback", max_rollbacks=2)
    trainer, metrics = fit(pl_module, tmp_path, [weights, monitor], steps=40)
    assert [(e.step, e.action) for e in monitor.events] == [(15, "rollback"), (25, "rollback"), (35, "rollback_stop")]
    assert trainer.global_step == 35  # stopped at the third detection
    assert pl_module.alpha == pytest.approx(0.25 * 1.25 * EPS)  # lowered twice, not a third time
    for a, b in zip(weights.at[10][0], pl_module.parameters()):  # the final weights are the best check's
        torch.testing.assert_close(a, b)
    assert list(metrics.dropna(subset=["train/attack_alpha"])["step"]) == [15, 25]
    fresh = CatastrophicOverfittingMonitor(action="rollback", max_rollbacks=2)
    fresh.load_state_dict(monitor.state_dict())
    assert fresh.rollbacks == 2  # a resumed run keeps the count ...
    assert fresh.history == monitor.history and len(fresh.history) == 7  # ... and every check, for the figure
    assert (Path(trainer.log_dir) / "co_monitor.png").stat().st_size > 10_000  # drawn at the end of training
    with pytest.raises(ConfigError, match="max_rollbacks"):
        CatastrophicOverfittingMonitor(max_rollbacks=-1)


def test_the_shapes_demo_config_trains_the_mlp_on_patterned_shapes_under_the_monitor(tmp_path, monkeypatch):
    """configs/robust/quickstart_co_demo.yaml end to end, shortened to 120 steps (the collapse: see its header)."""
    config = Path(__file__).resolve().parents[1] / "configs" / "robust" / "quickstart_co_demo.yaml"
    monkeypatch.chdir(tmp_path)  # the config writes runs/ relative to the working directory
    small = ["--trainer.max_steps", "120", "--model.init_args.val_robust_samples", "32"]
    assert main(["fit", "-c", str(config), *small]) == 0
    run = tmp_path / "runs" / "co_demo" / "version_0"
    metrics = pd.read_csv(run / "metrics.csv")
    rows = metrics.dropna(subset=["train/pgd_acc"])
    assert list(rows["step"]) == [60, 120]
    assert rows["train/co_gap"].notna().all()
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state["model.net.fc1.weight"].shape == (512, 3 * 16 * 16)  # the zoo's MLP on 16 px RGB
    assert (run / "co_monitor.png").is_file()

"""RobustFinetuneModule: logged keys, train-mode FGSM, schedule wiring, subclassing, checkpoints, errors."""

from __future__ import annotations

import math

import lightning as L
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_modules.robust.module as rf
from neuroalign.core.errors import ConfigError
from lightning_modules.robust.module import RobustFinetuneModule
from lightning_modules.robust.schedules import WarmupHalvingLR, warmup_halving_lr

NUM_CLASSES, SIDE = 4, 8


class TinyNet(nn.Module):
    """A [0,1]-input classifier with a timm-style ``reset_classifier``; records its train mode per call."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIDE * SIDE, width), nn.BatchNorm1d(width), nn.ReLU())
        self.head = nn.Linear(width, num_classes)
        self.num_classes = num_classes
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return self.head(self.features(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.head.in_features, num_classes)
        self.num_classes = num_classes


def loaders(n: int = 48, batch: int = 16) -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 3, SIDE, SIDE, generator=g), torch.randint(0, NUM_CLASSES, (n,), generator=g)
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=batch, shuffle=True), DataLoader(data, batch_size=batch)


def fit(module: L.LightningModule, tmp_path, epochs: int = 2, **trainer_kwargs) -> tuple[L.Trainer, pd.DataFrame]:
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=CSVLogger(tmp_path, name="run"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        **trainer_kwargs,
    )
    train, val = loaders()
    trainer.fit(module, train, val)
    return trainer, pd.read_csv(f"{trainer.logger.log_dir}/metrics.csv")


def test_fit_logs_the_documented_keys_every_epoch_and_the_schedule(tmp_path):
    module = RobustFinetuneModule(TinyNet(), scheduler=WarmupHalvingLR, val_pgd_steps=2, val_robust_samples=20)
    trainer, metrics = fit(module, tmp_path, precision="bf16-mixed")  # default inference_mode=True

    epoch_rows = metrics.dropna(subset=["val/acc"])
    assert list(epoch_rows["epoch"]) == [0, 1]
    for key in ("val/loss", "val/acc", "val/acc_top5", "val/robust_acc"):
        assert epoch_rows[key].notna().all(), key
        assert epoch_rows[key].between(0, 10).all()
    train_rows = metrics.dropna(subset=["train/loss"])
    assert list(train_rows["epoch"]) == [0, 1]
    assert (metrics.dropna(subset=["train/attack_nonfinite"])["train/attack_nonfinite"] == 0).all()

    # the scheduler got N from the trainer and set the formula's value at every step
    sched = trainer.lr_scheduler_configs[0]
    assert sched.interval == "step" and sched.scheduler.iterations_per_epoch == 3
    lr_rows = metrics.dropna(subset=["train/lr"])
    assert len(lr_rows) == 6
    for step, lr in zip(range(6), lr_rows["train/lr"]):
        assert lr == pytest.approx(warmup_halving_lr(step, 3), rel=1e-6)  # logged as float32


def test_fgsm_runs_in_train_mode_for_both_passes_without_parameter_grads(tmp_path):
    net = TinyNet()
    module = RobustFinetuneModule(net, val_pgd_steps=0)
    x, y = torch.rand(8, 3, SIDE, SIDE), torch.randint(0, NUM_CLASSES, (8,))
    net.train()
    result = module.perturb(x, y)
    x_adv = result.x_adv
    assert net.modes == [True] and result.nonfinite == 0 and result.extra_loss is None
    assert all(p.grad is None for p in net.parameters())
    assert (x_adv - x).abs().max() <= 2 / 255 + 1e-6

    net.modes.clear()
    fit(module, tmp_path, epochs=1, limit_val_batches=0)
    assert net.modes == [True] * 6  # 3 batches x (attack pass + training pass)


def test_clean_finetuning_never_attacks(tmp_path, monkeypatch):
    module = RobustFinetuneModule(TinyNet(), adversarial=False, val_pgd_steps=0)
    monkeypatch.setattr(module, "perturb", lambda *a: pytest.fail("attacked with adversarial=False"))
    _, metrics = fit(module, tmp_path, epochs=1)
    assert "train/attack_nonfinite" not in metrics and "val/robust_acc" not in metrics
    assert metrics["val/acc"].notna().any()


def test_robust_accuracy_uses_a_fixed_subset_and_the_test_settings(tmp_path, monkeypatch):
    calls = []

    def spy(model, x, y, eps, alpha, steps, norm, restarts=1, loss_fn=None):
        calls.append((x.shape[0], eps, alpha, steps, restarts, model.training))
        return x

    monkeypatch.setattr(rf, "pgd", spy)
    module = RobustFinetuneModule(TinyNet(), val_robust_samples=20, test_pgd_steps=3, test_pgd_restarts=2)
    trainer, _ = fit(module, tmp_path, epochs=1, num_sanity_val_steps=0)
    assert [c[0] for c in calls] == [16, 4]  # first 20 validation samples
    assert calls[0][1:] == (2 / 255, 0.5 / 255, 10, 1, False)
    calls.clear()
    result = trainer.test(module, loaders()[1], verbose=False)[0]
    assert [c[0] for c in calls] == [16, 16, 16]
    assert calls[0][1:] == (2 / 255, 1 / 255, 3, 2, False)
    assert result["test/robust_acc"] == pytest.approx(result["test/acc"])  # the spy does not perturb


class MarginModule(RobustFinetuneModule):
    """A subclass that builds its own network and trains with a multi-class hinge loss."""

    def __init__(self, width: int = 8, **kwargs) -> None:
        super().__init__(model=TinyNet(width=width), **kwargs)
        self.loss_calls = 0

    def compute_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.loss_calls += 1
        return F.multi_margin_loss(logits.float(), y)


def test_subclass_changes_loss_and_model_and_reloads_from_checkpoint(tmp_path):
    module = MarginModule(width=5, eps="1/255", val_pgd_steps=0)
    trainer, metrics = fit(module, tmp_path, epochs=1)
    assert module.loss_calls >= 3 + 3  # 3 training + 3 validation batches
    assert module.model.features[1].out_features == 5
    with torch.no_grad():
        x = torch.rand(4, 3, SIDE, SIDE)
        expected_loss = F.multi_margin_loss(module.eval()(x), torch.zeros(4, dtype=torch.long))
        assert expected_loss != F.cross_entropy(module(x), torch.zeros(4, dtype=torch.long))

    path = tmp_path / "margin.ckpt"
    trainer.save_checkpoint(path)
    loaded = MarginModule.load_from_checkpoint(path)
    assert type(loaded) is MarginModule and loaded.model.features[1].out_features == 5
    assert loaded.eps == pytest.approx(1 / 255)
    torch.testing.assert_close(loaded.eval()(x), module.eval()(x))


def test_num_classes_replaces_a_resettable_head_or_fails_clearly():
    module = RobustFinetuneModule(TinyNet(), num_classes=7)
    assert module(torch.rand(2, 3, SIDE, SIDE)).shape == (2, 7) and module.num_classes == 7
    plain = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIDE * SIDE, 4))
    assert RobustFinetuneModule(plain).num_classes == 4
    with pytest.raises(ConfigError, match="num_classes=7") as info:
        RobustFinetuneModule(plain, num_classes=7)
    assert "\n" not in str(info.value)


def test_checkpoint_of_another_architecture_is_a_one_line_error(tmp_path):
    module = RobustFinetuneModule(TinyNet(num_classes=4), val_pgd_steps=0)
    trainer, _ = fit(module, tmp_path, epochs=1, limit_val_batches=0)
    path = tmp_path / "a.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(ConfigError, match="checkpoint does not fit") as info:
        RobustFinetuneModule.load_from_checkpoint(path, model=TinyNet(num_classes=9))
    assert "\n" not in str(info.value) and "head.weight (4, 16) vs (9, 16)" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "needle"), [({"eps": -0.1}, "-0.1"), ({"alpha": "300/255"}, "1.176"), ({"eps": "x/255"}, "x/255")]
)
def test_bad_budget_names_the_value_and_key(kwargs, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        RobustFinetuneModule(TinyNet(), **kwargs)
    assert "model.init_args." in str(info.value)


def test_budgets_accept_fractions_and_floats():
    module = RobustFinetuneModule(TinyNet(), eps="4/255", alpha=0.02)
    assert module.eps == pytest.approx(4 / 255) and module.alpha == 0.02
    assert math.isclose(RobustFinetuneModule(TinyNet()).alpha, 2.5 / 255)


def test_default_optimizer_is_adam_of_the_seed_and_other_schedulers_step_per_epoch():
    module = RobustFinetuneModule(TinyNet())
    opt = module.configure_optimizers()
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 2e-4 and opt.defaults["weight_decay"] == 1e-4
    module = RobustFinetuneModule(
        TinyNet(),
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
        scheduler=lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [100, 150], 0.1),
    )
    config = module.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.SGD)
    assert config["lr_scheduler"]["interval"] == "epoch"


def test_cli_checkpoint_rebuilds_model_from_config(tmp_path):
    """Under ``neuroalign fit`` the checkpoint holds the model config: load_from_checkpoint needs nothing else."""
    from neuroalign.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"""
seed_everything: 0
trainer:
  max_epochs: 1
  limit_train_batches: 2
  limit_val_batches: 1
  log_every_n_steps: 1
  num_sanity_val_steps: 0
  enable_progress_bar: false
  default_root_dir: {tmp_path}
  logger:
    class_path: lightning.pytorch.loggers.CSVLogger
    init_args: {{save_dir: {tmp_path}, name: cli}}
model:
  class_path: lightning_modules.robust.module.RobustFinetuneModule
  init_args:
    model:
      class_path: lightning_modules.zoo.ZooModel
      init_args:
        name: cifar_vit
        num_classes: 3
        model_kwargs: {{img_size: 16, patch_size: 8, embed_dim: 16, depth: 1, num_heads: 2, mlp_dim: 16}}
    optimizer:
      class_path: torch.optim.Adam
      init_args: {{lr: 2.0e-4, weight_decay: 1.0e-4}}
    scheduler:
      class_path: lightning_modules.robust.schedules.WarmupHalvingLR
    val_pgd_steps: 1
    val_robust_samples: 4
data:
  class_path: datamodules.ShapesDataModule
  init_args: {{num_train: 16, num_val: 8, num_classes: 3, batch_size: 8, num_workers: 0}}
"""
    )
    assert main(["fit", "-c", str(config)]) == 0
    ckpt = next(tmp_path.rglob("*.ckpt"))
    loaded = RobustFinetuneModule.load_from_checkpoint(ckpt)
    assert loaded.model.num_classes == 3 and loaded.model.name == "cifar_vit"
    metrics = pd.read_csv(next(tmp_path.rglob("metrics.csv")))
    assert {"train/loss", "train/lr", "val/acc", "val/robust_acc"} <= set(metrics.columns)


@pytest.mark.parametrize("stage", ["fit", "test"])
def test_class_count_differing_from_the_data_is_one_line_at_setup(tmp_path, capsys, stage):
    import yaml

    from neuroalign.cli import main

    tiny = {"name": "cifar_vit", "num_classes": 5, "model_kwargs": {"depth": 1, "embed_dim": 16, "num_heads": 2, "mlp_dim": 16, "img_size": 16}}
    config = {
        "model": {"class_path": "lightning_modules.RobustFinetuneModule",
                  "init_args": {"model": {"class_path": "lightning_modules.ZooModel", "init_args": tiny}, "adversarial": False}},
        "data": {"class_path": "datamodules.ShapesDataModule",
                 "init_args": {"data_dir": None, "num_classes": 10, "num_train": 16, "num_val": 8, "batch_size": 8, "num_workers": 0}},
        "trainer": {"max_epochs": 1, "default_root_dir": str(tmp_path), "enable_progress_bar": False, "logger": False, "enable_checkpointing": False},
    }
    path = tmp_path / "mismatch.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main([stage, "-c", str(path)]) == 2  # an 83-line IndexError in the loss before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroalign: error: the model outputs 5 classes but the data has 10")
    assert "`model.init_args.model.init_args.num_classes`" in err[0] and "`data.init_args.num_classes`" in err[0]


def test_check_num_classes_skips_data_without_a_class_count():
    rf.check_num_classes(4, None)
    rf.check_num_classes(4, object())
    with pytest.raises(ConfigError, match="outputs 4 classes but the data has 3"):
        rf.check_num_classes(4, type("D", (), {"num_classes": 3})())

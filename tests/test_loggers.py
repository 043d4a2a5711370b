"""Loggers: W&B works offline (WANDB_MODE=offline) and receives the logged keys."""

from __future__ import annotations

from pathlib import Path

import torch
import wandb
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from torch.utils.data import DataLoader, TensorDataset


class _Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.layer(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/acc", (self.layer(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_wandb_offline_run_directory_has_the_logged_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    wandb.finish()  # a run an earlier test left open (a disabled one included) would be reused, not this one
    data = TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    logger = WandbLogger(project="neuroalign-test", save_dir=str(tmp_path), offline=True)
    trainer = Trainer(max_epochs=2, logger=logger, log_every_n_steps=1, enable_progress_bar=False, enable_checkpointing=False)
    trainer.fit(_Tiny(), DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    run_dir = Path(logger.experiment.dir).parent
    assert run_dir.name.startswith("offline-run-") and run_dir.is_relative_to(tmp_path), run_dir
    wandb.finish()  # flush the record log
    # wandb >= 0.19 keeps offline history only in the binary record log (protobuf records, keys as raw
    # strings); `wandb sync` uploads it later. The logged keys must be in it.
    records = next(run_dir.glob("run-*.wandb")).read_bytes()
    for key in (b"train/loss", b"val/acc", b"epoch"):
        assert key in records, key
    assert b"never/logged" not in records

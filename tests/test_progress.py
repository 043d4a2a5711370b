"""Progress: a bar on a terminal, one plain line per epoch (or every N steps) in a log, no carriage returns."""

from __future__ import annotations

import io

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from callbacks.progress import NeuroAlignProgressBar
from neuroalign.core import progress as progress_module


class _Tiny(L.LightningModule):
    def __init__(self, every: int | None = None) -> None:
        super().__init__()
        self.net = nn.Linear(4, 2)
        if every:
            self.progress_every_n_steps = every

    def training_step(self, batch, batch_idx):
        loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", (self.net(batch[0]).argmax(1) == batch[1]).float().mean(), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader():
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(40, 4, generator=g), torch.randint(0, 2, (40,), generator=g)), batch_size=4)


def _fit(tmp_path, capsys, module, bar):
    trainer = L.Trainer(max_epochs=3, callbacks=[bar], logger=False, enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, _loader(), _loader())
    return capsys.readouterr().out


def test_log_mode_prints_one_line_per_epoch_with_the_metrics(tmp_path, capsys):
    err = _fit(tmp_path, capsys, _Tiny(), NeuroAlignProgressBar(terminal=False))
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all("train/loss=" in line and "val/acc=" in line for line in lines)
    assert "\r" not in err and "v_num" not in err


def test_log_mode_prints_every_n_steps_the_module_asks_for(tmp_path, capsys):
    err = _fit(tmp_path, capsys, _Tiny(every=5), NeuroAlignProgressBar(terminal=False))
    assert sum(line.startswith("step ") for line in err.splitlines()) == 3 * 2  # 10 batches an epoch
    assert "step 5/10" in err


def test_terminal_mode_draws_tqdm_bars(tmp_path, capsys):
    err = _fit(tmp_path, capsys, _Tiny(), NeuroAlignProgressBar(terminal=True))
    assert "\r" in err and not any(line.startswith("epoch 1/3") for line in err.splitlines())


def test_progress_helper_is_silent_off_a_terminal(monkeypatch):
    items = [1, 2, 3]
    assert progress_module.progress(items, desc="x") is items
    fake = io.StringIO()
    fake.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(progress_module.sys, "stderr", fake)
    assert list(progress_module.progress(items, desc="x")) == items

"""BrainScoreCallback in a plain Trainer with a tiny LightningModule on a tiny synthetic benchmark."""

from __future__ import annotations

import json

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from callbacks import BrainScoreCallback
from callbacks.synthetic import make_synthetic_benchmark, reference_network
from lightning_modules.errors import ConfigError

KEYS = [
    *(f"{r}{s}" for r in ("V1", "V2", "V4", "IT", "behavior") for s in ("", "_raw", "_ceiling")),
    "average",
    "rho_hierarchy",
]
LAYERS = {"V1": "blocks.0", "V2": "blocks.1", "V4": "blocks.2", "IT": "blocks.3"}


class TinySystem(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = reference_network(seed=3, image_size=16, n_classes=4)
        self.model.train()
        self.model.blocks[0].requires_grad_(False)  # a frozen part must stay frozen
        self.seen_modes: list[bool] = []

    def training_step(self, batch, _):
        x, y = batch
        self.seen_modes.append(self.model.training)
        return nn.functional.cross_entropy(self.model(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val/loss", nn.functional.cross_entropy(self.model(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.01)


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench") / "synthetic"
    make_synthetic_benchmark(root, n_stimuli=60, n_neuroids=12, n_fitting=36, n_objects=4, trials_per_image=60, image_size=16)
    return str(root)


def _loader():
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.rand(8, 3, 16, 16, generator=g), torch.randint(0, 4, (8,), generator=g)), batch_size=4)


def test_callback_logs_all_keys_every_epoch_and_writes_json(tmp_path, tiny_bench):
    cb = BrainScoreCallback(
        benchmarks=[f"synthetic:{tiny_bench}"], region_layer_map=LAYERS, behavioral_readout_layer="blocks.3", batch_size=32
    )
    system = TinySystem()
    logger = CSVLogger(tmp_path, name="run")
    trainer = Trainer(
        max_epochs=2, logger=logger, callbacks=[cb], enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=1, default_root_dir=tmp_path,
    )
    trainer.fit(system, _loader(), _loader())
    for key in KEYS:
        assert f"brainscore/{key}" in trainer.callback_metrics, key
        assert torch.isfinite(trainer.callback_metrics[f"brainscore/{key}"])
    folder = tmp_path / "run" / "version_0" / "brainscore"
    files = sorted(p.name for p in folder.glob("epoch_*.json"))
    assert files == ["epoch_0.json", "epoch_1.json"]  # no file for the sanity check
    data = json.loads((folder / "epoch_1.json").read_text())
    assert set(KEYS) <= set(data["scores"]) and not data["failures"]
    assert "step" in data["model_identifier"] and str(data["global_step"]) in data["model_identifier"]
    assert len(data["benchmarks"]) == 5
    # logged through the trainer's logger
    metrics_csv = (tmp_path / "run" / "version_0" / "metrics.csv").read_text()
    assert "brainscore/average" in metrics_csv and "brainscore/rho_hierarchy" in metrics_csv
    # mode and grads left as found: training steps after scoring ran in train mode, frozen stays frozen
    assert all(system.seen_modes)
    assert not any(p.requires_grad for p in system.model.blocks[0].parameters())
    assert all(p.requires_grad for p in system.model.head.parameters())
    assert set(cb.state_dict()["history"]) == {0, 1}


def test_failure_is_reported_and_training_continues(tmp_path, tiny_bench):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "benchmark.yaml").write_text("name: bad\nkind: neural\nregion: V1\nvisual_degrees: 8\n")
    cb = BrainScoreCallback(benchmarks=[f"synthetic:{tiny_bench}#V4"], region_layer_map={"V4": "blocks.2"}, every_n_epochs=2)
    cb2 = BrainScoreCallback(benchmarks=[f"synthetic:{tiny_bench}#IT"], region_layer_map={"IT": "blocks.3"})
    cb2._benchmarks = None
    system = TinySystem()
    # the IT callback's benchmark breaks after loading: scoring fails, training goes on
    cb2.benchmarks()[0].score_features = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))
    trainer = Trainer(max_epochs=2, logger=CSVLogger(tmp_path, name="r"), callbacks=[cb, cb2], enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(system, _loader(), _loader())
    assert trainer.current_epoch == 2
    assert set(cb.history) == {1}  # every_n_epochs=2: only epoch index 1
    data = json.loads((tmp_path / "r" / "version_0" / "brainscore" / "epoch_0.json").read_text())
    assert "boom" in json.dumps(data["failures"]) and "IT" not in data["scores"]
    with pytest.raises(ConfigError, match="region"):
        BrainScoreCallback(benchmarks=["synthetic"], region_layer_map={"V3": "blocks.0"})
    with pytest.raises(ConfigError, match="ceiling_formula"):
        BrainScoreCallback(benchmarks=["synthetic"], region_layer_map={}, ceiling_formula="r")


def test_state_dict_round_trip():
    cb = BrainScoreCallback(benchmarks=["synthetic"], region_layer_map={"V1": "blocks.0"})
    cb.history = {0: {"V1": 0.5}}
    other = BrainScoreCallback(benchmarks=["synthetic"], region_layer_map={"V1": "blocks.0"})
    other.load_state_dict(cb.state_dict())
    assert other.history == {0: {"V1": 0.5}}

"""BrainScoreCallback in a plain Trainer with a tiny LightningModule on a tiny synthetic benchmark."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from callbacks import BrainScoreCallback
from callbacks.brainscore.benchmarks.synthetic import make_synthetic_benchmark, reference_network
from neuroalign.cli import main
from neuroalign.core.errors import ConfigError

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
    # fail_on_error: false (explicitly) -- a benchmark failing every epoch is only warned
    cb2 = BrainScoreCallback(benchmarks=[f"synthetic:{tiny_bench}#IT"], region_layer_map={"IT": "blocks.3"}, fail_on_error=False)
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


def _trainer(tmp_path, callbacks, epochs=2, **kwargs):
    kwargs = {"num_sanity_val_steps": 0, **kwargs}
    return Trainer(max_epochs=epochs, logger=CSVLogger(tmp_path, name="r"), callbacks=callbacks, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, **kwargs)


def _break(cb, trainer, epochs=None):
    """Make every benchmark of ``cb`` raise while scoring (at the given epochs of ``trainer``, or always)."""
    for bench in cb.benchmarks():
        def broken(*args, _original=bench.score_features, **kw):
            if epochs is None or trainer.current_epoch in epochs:
                raise RuntimeError("boom")
            return _original(*args, **kw)

        bench.score_features = broken


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"region_layer_map": {"V4": "blocks.9"}}, r"BrainScoreCallback region_layer_map\.V4: unknown layer 'blocks\.9'; nearest valid names: blocks\."),
        ({"benchmarks": ["{bench}#behavior"], "region_layer_map": {}, "behavioral_readout_layer": "blockz.3"},
         r"BrainScoreCallback behavioral_readout_layer: unknown layer 'blockz\.3'; nearest valid names: .*blocks\.3"),
        ({"benchmarks": ["{bench}#V4,IT"], "region_layer_map": {"V4": "blocks.2"}}, r"synthetic-IT scores IT but `region_layer_map` has no IT"),
        ({"benchmarks": ["{bench}#behavior"], "region_layer_map": {}}, r"synthetic-behavior needs `behavioral_readout_layer`"),
        ({"benchmarks": ["MajajHong2015public.IT-plss"], "region_layer_map": {"IT": "blocks.3"}}, r"unknown brainscore-vision benchmark"),
        ({"benchmarks": ["{bench}#V3"]}, r"unknown region 'V3'"),
    ],
    ids=["layer", "readout-layer", "region-not-mapped", "no-readout-layer", "benchmark", "region"],
)
def test_bad_layer_benchmark_or_region_stops_before_any_training(tmp_path, tiny_bench, kwargs, match):
    args = {"benchmarks": ["{bench}#V4"], "region_layer_map": {"V4": "blocks.2"}, **kwargs}
    args["benchmarks"] = [b.format(bench=f"synthetic:{tiny_bench}") for b in args["benchmarks"]]
    system = TinySystem()
    trainer = _trainer(tmp_path, [BrainScoreCallback(**args)], num_sanity_val_steps=1)
    with pytest.raises(ConfigError, match=match) as info:
        trainer.fit(system, _loader(), _loader())
    assert "\n" not in str(info.value)
    assert system.seen_modes == [] and trainer.global_step == 0  # found at setup: nothing trained


def test_wrong_layer_through_the_cli_is_one_line_before_training(tmp_path, tiny_bench, capsys):
    tiny = {"name": "cifar_vit", "num_classes": 4, "model_kwargs": {"depth": 1, "embed_dim": 16, "num_heads": 2, "mlp_dim": 16, "img_size": 16}}
    bs = {"class_path": "callbacks.BrainScoreCallback", "init_args": {"benchmarks": [f"synthetic:{tiny_bench}#V4"], "region_layer_map": {"V4": "blocks.1"}}}
    config = {
        "model": {"class_path": "lightning_modules.RobustFinetuneModule", "init_args": {"model": {"class_path": "lightning_modules.ZooModel", "init_args": tiny}, "adversarial": False}},
        "data": {"class_path": "datamodules.ShapesDataModule", "init_args": {"data_dir": None, "num_classes": 4, "num_train": 16, "num_val": 8, "batch_size": 8, "num_workers": 0}},
        "trainer": {"max_epochs": 1, "default_root_dir": str(tmp_path), "enable_progress_bar": False, "logger": False, "enable_checkpointing": False, "callbacks": [bs]},
    }
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("neuroalign: error: BrainScoreCallback region_layer_map.V4: unknown layer 'blocks.1'")
    assert "blocks.0" in err[0]  # the nearest names


def test_scoring_failing_every_time_fails_the_run_at_the_end_with_a_summary(tmp_path, tiny_bench):
    cb = BrainScoreCallback(benchmarks=[f"synthetic:{tiny_bench}#V4,IT"], region_layer_map={"V4": "blocks.2", "IT": "blocks.3"})
    trainer = _trainer(tmp_path, [cb])
    _break(cb, trainer)
    with pytest.raises(ConfigError) as info:
        trainer.fit(TinySystem(), _loader(), _loader())
    message = str(info.value)
    assert trainer.current_epoch == 2 and set(cb.history) == {0, 1} and "\n" not in message  # trained, scored, then failed
    assert "Brain-Score failures in 2 of 2 scored epoch(s)" in message
    assert "local:synthetic-V4 failed at epoch(s) 0, 1 (last: RuntimeError: boom)" in message and "local:synthetic-IT" in message
    assert "never scored" in message and "`fail_on_error: false`" in message


def test_explicit_false_warns_at_every_epoch_and_ends_normally(tmp_path, tiny_bench, caplog):
    cb = BrainScoreCallback(benchmarks=[f"synthetic:{tiny_bench}#V4"], region_layer_map={"V4": "blocks.2"}, fail_on_error=False)
    trainer = _trainer(tmp_path, [cb])
    _break(cb, trainer)
    trainer.fit(TinySystem(), _loader(), _loader())
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert sum("local:synthetic-V4 failed: boom" in w for w in warnings) == 2  # one per epoch
    assert any(w.startswith("Brain-Score failures in 2 of 2 scored epoch(s): local:synthetic-V4 failed at epoch(s) 0, 1") for w in warnings)


def test_a_failure_in_some_epochs_only_is_summarised_without_failing(tmp_path, tiny_bench, caplog):
    cb = BrainScoreCallback(benchmarks=[f"synthetic:{tiny_bench}#V4"], region_layer_map={"V4": "blocks.2"})
    trainer = _trainer(tmp_path, [cb])
    _break(cb, trainer, epochs={0})
    trainer.fit(TinySystem(), _loader(), _loader())
    assert cb.history[0] == {} and "V4" in cb.history[1]
    assert any("Brain-Score failures in 1 of 2 scored epoch(s)" in r.getMessage() for r in caplog.records)


def test_fail_on_error_true_stops_at_the_first_failure_with_one_line(tmp_path, tiny_bench):
    cb = BrainScoreCallback(benchmarks=[f"synthetic:{tiny_bench}#V4"], region_layer_map={"V4": "blocks.2"}, fail_on_error=True)
    trainer = _trainer(tmp_path, [cb])
    _break(cb, trainer)
    with pytest.raises(ConfigError, match=r"at epoch 0: RuntimeError: boom .*`fail_on_error: true`"):
        trainer.fit(TinySystem(), _loader(), _loader())
    assert cb.history == {}


def test_wandb_table_accumulates_every_scored_epoch(tmp_path, tiny_bench, monkeypatch):
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    tables = []
    monkeypatch.setattr(WandbLogger, "log_table", lambda self, key, columns=None, data=None, **kw: tables.append((key, columns, data)))
    cb = BrainScoreCallback(benchmarks=[f"synthetic:{tiny_bench}#V1"], region_layer_map={"V1": "blocks.0"})
    trainer = Trainer(max_epochs=2, logger=WandbLogger(save_dir=str(tmp_path), offline=True), callbacks=[cb], enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(TinySystem(), _loader(), _loader())
    assert [key for key, _, _ in tables] == ["brainscore/table"] * 2
    key, columns, rows = tables[-1]
    assert columns[:2] == ["epoch", "step"] and {"V1", "V4", "IT", "average"} <= set(columns)
    assert [row[0] for row in rows] == [0, 1] and [row[1] for row in rows] == [2, 4]  # every epoch so far, with its step
    assert [len(data) for _, _, data in tables] == [1, 2]
    v1 = columns.index("V1")
    assert all(isinstance(row[v1], float) for row in rows) and all(row[columns.index("IT")] is None for row in rows)
    assert cb.state_dict()["table_rows"] == rows  # restored on resume


def test_validate_whose_scoring_fails_is_a_one_line_error(tmp_path, tiny_bench):
    cb = BrainScoreCallback(benchmarks=[f"synthetic:{tiny_bench}#V4"], region_layer_map={"V4": "blocks.2"})
    trainer = _trainer(tmp_path, [cb])
    _break(cb, trainer)
    with pytest.raises(ConfigError, match=r"Brain-Score failures in 1 of 1 scored epoch\(s\).*never scored"):
        trainer.validate(TinySystem(), _loader())

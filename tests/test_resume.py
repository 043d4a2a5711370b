"""Checkpoints a run can trust and resumes that honour or refuse changes.

``latest:<folder>`` names the newest run of a config; ``--ckpt_path last`` finds the newest complete
checkpoint; a changed network is refused in one line; more generations continue an evolution; Ctrl+C
prints the command that resumes the run.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch
import yaml

from neuroalign.core.checkpoints import describe_checkpoint, latest_checkpoint, newest_checkpoint
from neuroalign.cli import main
from neuroalign.core.errors import MissingFileError
from neuroalign.resume import resume_differences

ROOT = Path(__file__).resolve().parents[1]
TINY = {"name": "cifar_vit", "num_classes": 4, "model_kwargs": {"depth": 1, "embed_dim": 16, "num_heads": 2, "mlp_dim": 16, "img_size": 16}}


def _fit_config(tmp_path: Path, **trainer) -> Path:
    """A tiny RobustFinetuneModule run: 4 training batches an epoch, checkpoints in its version folder."""
    config = {
        "model": {"class_path": "lightning_modules.RobustFinetuneModule", "init_args": {"model": {"class_path": "lightning_modules.ZooModel", "init_args": TINY}, "adversarial": False, "val_pgd_steps": 0}},
        "data": {"class_path": "datamodules.ShapesDataModule", "init_args": {"data_dir": None, "num_classes": 4, "num_train": 32, "num_val": 8, "batch_size": 8, "num_workers": 0}},
        "trainer": {
            "max_epochs": 1, "default_root_dir": str(tmp_path), "enable_progress_bar": False, "enable_model_summary": False,
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(tmp_path), "name": "run"}},
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"filename": "epoch{epoch}", "auto_insert_metric_name": False, "save_last": True}}],
            **trainer,
        },
    }
    path = tmp_path / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _save(path: Path, state_dict: dict, step: int, epoch: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state_dict, "global_step": step, "epoch": epoch}, path)
    return path


# ------------------------------------------------------------------------- latest / last
def test_latest_is_the_highest_version_with_a_complete_checkpoint(tmp_path):
    run = tmp_path / "quickstart"
    _save(run / "version_0" / "checkpoints" / "last.ckpt", {}, 4)
    _save(run / "version_1" / "checkpoints" / "epoch0.ckpt", {}, 93)  # killed before last.ckpt was written
    cut = _save(run / "version_2" / "checkpoints" / "last.ckpt", {"w": torch.zeros(1000)}, 7)
    cut.write_bytes(cut.read_bytes()[:-200])  # truncated: no zip directory
    (run / "version_3").mkdir()  # a run that wrote no checkpoint
    assert latest_checkpoint(run, "checkpoint") == run / "version_1" / "checkpoints" / "epoch0.ckpt"
    _save(run / "version_10" / "checkpoints" / "last.ckpt", {}, 5)  # versions compare as numbers
    assert latest_checkpoint(run, "checkpoint") == run / "version_10" / "checkpoints" / "last.ckpt"
    assert newest_checkpoint([run]) == run / "version_10" / "checkpoints" / "last.ckpt"
    with pytest.raises(MissingFileError, match=r"complete checkpoint of a run under .*elsewhere.*`checkpoint`"):
        latest_checkpoint(tmp_path / "elsewhere", "checkpoint")
    line = describe_checkpoint(run / "version_10" / "checkpoints" / "last.ckpt", {"global_step": 5, "epoch": 0})
    assert "version_10" in line and "global step 5, epoch 0, written 20" in line


def test_retrain_then_evolution_uses_the_new_weights_and_says_so(tmp_path, monkeypatch, caplog):
    """Two quickstart trainings (version_0, then a re-train in version_1): the README's evolution config
    evolves the re-trained network and prints which checkpoint it loaded."""
    from lightning_modules.zoo import ZooModel

    monkeypatch.chdir(tmp_path)  # the configs use paths relative to the working directory, like the README
    nets = {}
    for version, (seed, step) in enumerate([(1, 4), (2, 93)]):
        torch.manual_seed(seed)
        nets[version] = ZooModel("resnet10t", num_classes=10, input_size=32)  # the architecture of configs/quickstart.yaml
        _save(tmp_path / "runs" / "quickstart" / f"version_{version}" / "checkpoints" / "last.ckpt", {f"model.{k}": v for k, v in nets[version].state_dict().items()}, step, epoch=4)
    config = ROOT / "configs" / "evolution" / "quickstart.yaml"
    with caplog.at_level("INFO"):
        small = ["--model.init_args.n_generations", "1", "--model.init_args.generator.init_args.image_size", "8", "--model.init_args.probe_images", "8"]
        assert main(["fit", "-c", str(config), *small, "--trainer.enable_progress_bar", "false"]) == 0  # a small CMA-ES state
    new = tmp_path / "runs" / "quickstart" / "version_1" / "checkpoints" / "last.ckpt"
    said = [r.getMessage() for r in caplog.records if "loaded the network weights of" in r.getMessage()]
    assert len(said) == 1, said
    assert "runs/quickstart/version_1/checkpoints/last.ckpt (global step 93, epoch 4, written 20" in said[0]
    saved = torch.load(tmp_path / "runs" / "evolution" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    source = saved["evolution"]["source_checkpoint"]
    assert source["path"] == str(new.resolve()) and source["global_step"] == 93
    expected = float(sum(v.double().sum() for v in nets[1].state_dict().values() if v.is_floating_point()))
    assert source["fingerprint"] == pytest.approx(expected, rel=1e-9)


def test_ckpt_path_last_finds_the_newest_complete_checkpoint_after_a_kill(tmp_path, caplog):
    config = _fit_config(tmp_path)
    assert main(["fit", "-c", str(config)]) == 0
    folder = tmp_path / "run" / "version_0" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch0.ckpt", "last.ckpt"]
    (folder / "last.ckpt").unlink()  # SIGKILL after epoch0.ckpt, before last.ckpt
    (folder / "epoch1.ckpt").write_bytes((folder / "epoch0.ckpt").read_bytes()[:1000])  # and one cut short
    with caplog.at_level("INFO"):
        assert main(["fit", "-c", str(config), "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 0
    assert any(f"resuming {folder / 'epoch0.ckpt'} (global step 4, epoch 0" in r.getMessage() for r in caplog.records)
    resumed = torch.load(tmp_path / "run" / "version_1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 8  # continued from epoch 0


# ------------------------------------------------------------------------- changed settings
def test_resnet18_config_resumed_from_a_resnet34_checkpoint_is_refused(tmp_path, capsys):
    from neuroalign.lightning_cli import NeuroAlignCLI

    config = _fit_config(tmp_path)
    r34 = ["--model.init_args.model.init_args.name", "resnet34", "--model.init_args.model.init_args.input_size", "32", "--model.init_args.model.init_args.model_kwargs", "{}"]
    cli = NeuroAlignCLI(args=["-c", str(config), *r34, "--model.init_args.optimizer", "torch.optim.SGD", "--model.init_args.optimizer.lr", "0.1"], run=False)
    ckpt = _save(tmp_path / "r34.ckpt", {}, 4)
    torch.save({**torch.load(ckpt, weights_only=True), "hyper_parameters": dict(cli.model.hparams)}, ckpt)
    r18 = ["--model.init_args.model.init_args.name", "resnet18", *r34[2:], "--model.init_args.val_pgd_steps", "3"]  # val_pgd_steps may change
    assert main(["fit", "-c", str(config), *r18, "--ckpt_path", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"neuroalign: error: --ckpt_path {ckpt} was written with other settings than the config: ")
    assert "model.init_args.model.init_args.name: config resnet18, checkpoint resnet34" in err[0]
    assert "model.init_args.optimizer.class_path: config torch.optim.Adam, checkpoint torch.optim.SGD" not in err[0]  # no optimizer configured: null
    assert "model.init_args.optimizer: config null" in err[0]
    assert "val_pgd_steps" not in err[0] and "start a new run without --ckpt_path" in err[0]
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_resume_differences_name_every_key_and_skip_resumable_ones():
    configured = {"class_path": "M", "init_args": {"model": {"class_path": "Z", "init_args": {"name": "resnet18", "num_classes": 10}}, "lr": 0.1, "steps": 5, "new": 1}}
    hparams = {"_class_path": "M", "_instantiator": "x", "model": {"class_path": "Z", "init_args": {"name": "resnet34", "num_classes": 10}}, "lr": 0.2, "steps": 3}
    assert resume_differences(configured, hparams, resumable=("steps",)) == [
        "model.init_args.model.init_args.name: config resnet18, checkpoint resnet34",
        "model.init_args.lr: config 0.1, checkpoint 0.2",
    ]
    assert resume_differences(configured, {**hparams, "_class_path": "N"}) == ["model.class_path: config M, checkpoint N"]


# ------------------------------------------------------------------------- evolution
def _evolution_config(tmp_path: Path, checkpoint: dict) -> Path:
    config = {
        "seed_everything": 0,
        "model": {
            "class_path": "lightning_modules.EvolutionModule",
            "init_args": {
                "model": {"class_path": "lightning_modules.ZooModel", "init_args": TINY},
                "units": [{"layer": "head", "channel": 0, "name": "zero"}],
                "generator": {"class_path": "lightning_modules.evolution.PixelGenerator", "init_args": {"image_size": 8}},
                "n_generations": 3,
                "snapshot_every": 2,
            },
        },
        "trainer": {
            "max_epochs": 1, "accelerator": "cpu", "default_root_dir": str(tmp_path), "enable_progress_bar": False, "enable_model_summary": False,
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(tmp_path), "name": "evo"}},
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": checkpoint}],
        },
    }
    path = tmp_path / "evolution.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("checkpoint", [{"save_last": True}, {"every_n_train_steps": 3, "save_last": True, "save_top_k": 0}], ids=["epoch-end", "every-n-steps"])
def test_evolution_resumed_with_more_generations_adds_them(tmp_path, capsys, checkpoint):
    config = _evolution_config(tmp_path, checkpoint)
    assert main(["fit", "-c", str(config)]) == 0
    first = torch.load(tmp_path / "evo" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["evolution"]["generation"] == 3
    assert main(["fit", "-c", str(config), "--model.init_args.n_generations", "5", "--ckpt_path", "last"]) == 0
    resumed = torch.load(tmp_path / "evo" / "version_1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["evolution"]["generation"] == 5 and resumed["global_step"] == 5
    rows = (tmp_path / "evo" / "version_1" / "evolution" / "scores.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"]  # the whole history, 2 new generations
    capsys.readouterr()
    assert main(["fit", "-c", str(config), "--model.init_args.n_generations", "2", "--ckpt_path", "last"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "n_generations 2 is fewer than the 5 generations the checkpoint has done" in err[0]


def test_evolution_resume_refuses_changed_units(tmp_path, capsys):
    config = _evolution_config(tmp_path, {"save_last": True})
    assert main(["fit", "-c", str(config)]) == 0
    capsys.readouterr()
    other = ["--model.init_args.units", "[{layer: head, channel: 1, name: one}]", "--model.init_args.seed", "3"]
    assert main(["fit", "-c", str(config), *other, "--ckpt_path", "last"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.init_args.units: config [" in err[0] and "model.init_args.seed: config 3, checkpoint 0" in err[0]


def test_evolution_resume_refuses_a_changed_generator_optimizer_or_target_model(tmp_path, capsys):
    config = _evolution_config(tmp_path, {"save_last": True})
    assert main(["fit", "-c", str(config)]) == 0
    changes = {
        "model.init_args.generator.init_args.image_size": ["--model.init_args.generator.init_args.image_size", "6"],
        "model.init_args.optimizer": ["--model.init_args.optimizer", "{class_path: lightning_modules.evolution.CholeskyCMAES, init_args: {init_sigma: 0.5}}"],
        "model.init_args.model.init_args.num_classes": ["--model.init_args.model.init_args.num_classes", "3"],
    }
    for key, args in changes.items():
        capsys.readouterr()
        assert main(["fit", "-c", str(config), *args, "--ckpt_path", "last"]) == 2, key
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and key in err[0], (key, err)


# ------------------------------------------------------------------------- interruptions
def test_sigint_mid_epoch_prints_the_resume_command_and_it_works(tmp_path, monkeypatch, capsys):
    from lightning_modules.robust.module import RobustFinetuneModule

    config = _fit_config(tmp_path, max_epochs=2)
    step = RobustFinetuneModule.training_step

    def interrupted(self, batch, batch_idx):
        if self.current_epoch == 1 and batch_idx == 1:
            raise KeyboardInterrupt  # what SIGINT raises in the main thread
        return step(self, batch, batch_idx)

    monkeypatch.setattr(RobustFinetuneModule, "training_step", interrupted)
    with pytest.raises(SystemExit) as info:
        main(["fit", "-c", str(config)])
    assert info.value.code == 130
    last = tmp_path / "run" / "version_0" / "checkpoints" / "last.ckpt"
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"neuroalign: interrupted; resume with: neuroalign fit -c {config} --ckpt_path {last}"
    monkeypatch.setattr(RobustFinetuneModule, "training_step", step)
    assert main(shlex.split(err[-1].split("resume with: ", 1)[1])[1:]) == 0
    resumed = torch.load(tmp_path / "run" / "version_1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 8
